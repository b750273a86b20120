//! One endpoint per operation, routed as `ferromega_command::routes` says; each handler
//! only translates: body → `Args`, one `ControlPlane::invoke`, responses → JSON or text.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response as HttpResponse};
use axum::routing::{delete, post, MethodRouter};
use axum::{Extension, Json};
use ferromega_api::{Args, Response};
use ferromega_command::handlers::operations;
use ferromega_command::render;
use ferromega_command::routes::{route_of, Route, Verb};
use ferromega_domain::{ControlPlane, Gate, Session};
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::ApiError;

/// Every operation with its route.
pub(crate) fn routes() -> Vec<(&'static str, Route)> {
    operations()
        .map(|(_, spec)| (spec.name.as_str(), route_of(spec)))
        .collect()
}

/// Query parameters every operation takes: `.columns` and `.filter` in URL form.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct OpQuery {
    columns: Option<String>,
    filter: Option<String>,
}

fn wants_text(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/plain"))
}

async fn run(
    cp: ControlPlane,
    name: &'static str,
    ns: String,
    query: OpQuery,
    headers: HeaderMap,
    gate: Option<Gate>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let host = cp.host().to_string();
    let args: Args = if body.iter().all(u8::is_ascii_whitespace) {
        Args::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_request(&host, e.to_string()))?
    };
    // The endpoint's own path passed the auth rules; the gate covers what `namespace`,
    // `read` and `ns run` run inside.
    let mut session = Session::in_namespace(&ns).gated(gate);
    let mut resps: Vec<Response> = cp
        .invoke(&mut session, name, args)
        .await
        .map_err(|e| ApiError::domain(&host, &e))?;
    if let Some(f) = &query.filter {
        render::filter(&mut resps, f).map_err(|e| ApiError::bad_request(&host, e.to_string()))?;
    }
    if let Some(c) = &query.columns {
        render::columns(&mut resps, c).map_err(|e| ApiError::bad_request(&host, e.to_string()))?;
    }
    if wants_text(&headers) {
        let text = render::render(&resps, &cp.output_flags());
        return Ok(([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response());
    }
    Ok(Json(resps).into_response())
}

/// The axum method router of one operation.
pub(crate) fn method_router(name: &'static str, route: &Route) -> MethodRouter<ControlPlane> {
    let global = route.global;
    let handler = move |State(cp): State<ControlPlane>,
                        params: Option<Path<String>>,
                        Query(query): Query<OpQuery>,
                        principal: Option<Extension<Arc<Principal>>>,
                        headers: HeaderMap,
                        body: Bytes| async move {
        let ns = match (global, params) {
            (false, Some(Path(ns))) => ns,
            _ => "minimega".to_string(),
        };
        let gate = principal.and_then(|Extension(p)| p.gate());
        run(cp, name, ns, query, headers, gate, body).await
    };
    if route.verb == Verb::Delete {
        delete(handler)
    } else {
        post(handler)
    }
}
