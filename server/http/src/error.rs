//! Errors to HTTP: the one function choosing a status for a `DomainError`, and the error body.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferromega_api::{ErrorBody, HostError};
use ferromega_domain::DomainError;

/// The HTTP status of a domain error — the only place that decides it.
pub fn status_for(e: &DomainError) -> StatusCode {
    match e {
        DomainError::Invalid(_) => StatusCode::BAD_REQUEST,
        DomainError::NotFound(_) => StatusCode::NOT_FOUND,
        DomainError::Conflict(_) => StatusCode::CONFLICT,
        DomainError::Host(_) => StatusCode::INTERNAL_SERVER_ERROR,
        DomainError::Forbidden(_) => StatusCode::FORBIDDEN,
    }
}

/// A failed request: status and the JSON error body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: ErrorBody,
}

impl ApiError {
    /// A domain error from `host`.
    pub fn domain(host: &str, e: &DomainError) -> Self {
        ApiError {
            status: status_for(e),
            body: ErrorBody {
                errors: vec![HostError {
                    error: e.to_string(),
                    host: host.into(),
                }],
            },
        }
    }

    /// A request the server could not read (bad JSON, unknown fields).
    pub fn bad_request(host: &str, msg: impl Into<String>) -> Self {
        ApiError::domain(host, &DomainError::Invalid(msg.into()))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}
