//! The command endpoint (a command line in, batches out), suggestions, and the spec.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::{Extension, Json};
use ferromega_api::{CommandReply, CommandRequest, SuggestReply};
use ferromega_domain::{ControlPlane, Session};
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::ApiError;

/// `POST /api/v1/namespaces/{ns}/command`: run a line of the command language in `ns`.
/// The reply says which namespace is active afterwards, so clients keep `namespace foo`.
/// Behind `serve --auth`, every operation of the line passes the caller's rules.
pub(crate) async fn command(
    State(cp): State<ControlPlane>,
    Path(ns): Path<String>,
    principal: Option<Extension<Arc<Principal>>>,
    body: axum::body::Bytes,
) -> Result<Json<CommandReply>, ApiError> {
    let req: CommandRequest = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(cp.host(), e.to_string()))?;
    let gate = principal.and_then(|Extension(p)| p.gate());
    let mut session = Session::in_namespace(&ns).gated(gate);
    let batches = cp.run_line(&mut session, &req.command).await;
    Ok(Json(CommandReply {
        batches,
        namespace: session.namespace,
    }))
}

/// Query of the suggest endpoint.
#[derive(Debug, Deserialize)]
pub(crate) struct SuggestQuery {
    line: String,
}

/// `GET /api/v1/suggest?line=…`: completions for a partial line.
pub(crate) async fn suggest(
    State(cp): State<ControlPlane>,
    Query(q): Query<SuggestQuery>,
) -> Json<SuggestReply> {
    Json(SuggestReply {
        suggestions: cp.suggest(&q.line),
    })
}

/// `GET /openapi.json`: the generated spec.
pub(crate) async fn openapi() -> Json<serde_json::Value> {
    Json(crate::spec::openapi_json())
}
