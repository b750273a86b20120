//! `GET /api/v1/namespaces/{ns}/pipes/{name}`: reads a named pipe as a stream of lines
//! (`text/plain`, one message per line, until the client goes). Writing is the `pipe`
//! operation. `ferromega pipe NAME` uses both.

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::Live;
use crate::error::ApiError;

/// The pipe's messages, a line each, for as long as the client reads (or the server runs).
pub(crate) async fn pipe_read(
    State(live): State<Live>,
    Path((ns, name)): Path<(String, String)>,
) -> Response {
    let inbox = match live.cp.pipe_read(&ns, &name) {
        Ok(i) => i,
        Err(e) => return ApiError::domain(live.cp.host(), &e).into_response(),
    };
    let lines = futures_util::stream::unfold(inbox, |mut inbox| async move {
        let line = inbox.recv().await?;
        Some((Ok::<_, std::io::Error>(format!("{line}\n")), inbox))
    });
    (
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(super::until_stopped(&live.cp, lines)),
    )
        .into_response()
}
