//! `GET /api/v1/namespaces/{ns}/graphs`: a VM's (or the host's) figures over time, from
//! the domain's ring buffers, column-wise as the dashboard's charts draw them — asked of
//! the mesh peer that runs the VM (or of `?host=`) when it is not this host.

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ferromega_domain::graphs::Range;
use serde::Deserialize;

use super::Live;
use crate::error::ApiError;

/// Query of the graphs endpoint.
#[derive(Debug, Deserialize)]
pub(crate) struct GraphsQuery {
    /// The VM; the host's figures when absent.
    vm: Option<String>,
    /// `10m` (default) or `24h`.
    range: Option<String>,
    /// The mesh host whose figures (or VM) to show; this host when absent.
    host: Option<String>,
}

/// `GET /api/v1/namespaces/{ns}/graphs?vm=&range=`.
pub(crate) async fn graphs(
    State(live): State<Live>,
    Path(ns): Path<String>,
    Query(q): Query<GraphsQuery>,
) -> Response {
    let host = live.cp.host().to_string();
    let range = match Range::parse(q.range.as_deref().unwrap_or("10m")) {
        Ok(r) => r,
        Err(e) => return ApiError::domain(&host, &e).into_response(),
    };
    let vm = q.vm.as_deref().filter(|v| !v.is_empty());
    let on = q.host.as_deref().filter(|h| !h.is_empty());
    match live.cp.graphs_anywhere(&ns, vm, on, range).await {
        Ok(g) => Json(g).into_response(),
        Err(e) => ApiError::domain(&host, &e).into_response(),
    }
}
