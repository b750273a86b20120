//! The live peer endpoints: this host's own VM events for a peer to follow (a JSON event
//! per line), its graphs, and a VM console for a peer's dashboard (an HTTP upgrade
//! carrying the console's bytes), behind the cluster secret like the rest of the link.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use ferromega_api::mesh::{PeerConsoleQuery, PeerGraphsQuery, PEER_CONSOLE_PROTOCOL};
use ferromega_domain::console::ConsoleKind;
use ferromega_domain::graphs::Range;
use futures_util::StreamExt;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{admit, PeerState};
use crate::error::ApiError;

/// How often a quiet events stream carries an empty line, so the follower can tell a
/// quiet peer from a dead one.
pub const KEEPALIVE: Duration = Duration::from_secs(5);

/// `GET /api/v1/mesh/peer/events`: this host's own VM events, a JSON object per line.
pub(super) async fn events(
    State(s): State<PeerState>,
    headers: HeaderMap,
) -> Result<Response, (StatusCode, ApiError)> {
    admit(&s, &headers)?;
    let events = Box::pin(s.cp.peer_events());
    let mut tick = tokio::time::interval(KEEPALIVE);
    tick.reset();
    let lines = futures_util::stream::unfold((events, tick), |(mut events, mut tick)| async move {
        let line = tokio::select! {
            e = events.next() => {
                let mut json = serde_json::to_vec(&e?).unwrap_or_default();
                json.push(b'\n');
                Bytes::from(json)
            }
            _ = tick.tick() => Bytes::from_static(b"\n"),
        };
        Some((Ok::<_, Infallible>(line), (events, tick)))
    });
    Ok((
        [(header::CONTENT_TYPE, "application/x-ndjson")],
        Body::from_stream(crate::live::until_stopped(&s.cp, lines)),
    )
        .into_response())
}

/// `POST /api/v1/mesh/peer/graphs`: this host's graphs of one of its VMs or of itself.
pub(super) async fn graphs(
    State(s): State<PeerState>,
    headers: HeaderMap,
    axum::Json(q): axum::Json<PeerGraphsQuery>,
) -> Result<Response, (StatusCode, ApiError)> {
    admit(&s, &headers)?;
    let host = s.cp.host().to_string();
    let fail = |e: ferromega_domain::DomainError| {
        (crate::error::status_for(&e), ApiError::domain(&host, &e))
    };
    let range = Range::parse(&q.range).map_err(fail)?;
    let g =
        s.cp.graphs(&q.namespace, q.vm.as_deref(), range)
            .map_err(fail)?;
    Ok(axum::Json(g).into_response())
}

/// `GET /api/v1/mesh/peer/console?namespace=…&vm=…` with `Upgrade: ferromega-console`:
/// after `101`, the connection carries the console's bytes; a viewer's input goes to the
/// VM's kb recording, as on the dashboard's own console.
pub(super) async fn console(
    State(s): State<PeerState>,
    headers: HeaderMap,
    Query(q): Query<PeerConsoleQuery>,
    req: Request,
) -> Result<Response, (StatusCode, ApiError)> {
    admit(&s, &headers)?;
    let host = s.cp.host().to_string();
    let fail = |e: ferromega_domain::DomainError| {
        (crate::error::status_for(&e), ApiError::domain(&host, &e))
    };
    let target = s.cp.console_target(&q.namespace, &q.vm).map_err(fail)?;
    let socket = tokio::net::UnixStream::connect(&target.socket)
        .await
        .map_err(|e| {
            fail(ferromega_domain::DomainError::Host(format!(
                "cannot reach the console of vm {}: {e}",
                target.name
            )))
        })?;
    let mut tap =
        (target.kind == ConsoleKind::Vnc).then(|| s.cp.vnc_tap(&target.namespace, &target.name));
    let upgrade = hyper::upgrade::on(req);
    tokio::spawn(async move {
        match upgrade.await {
            Ok(up) => {
                let feed = |b: &[u8]| {
                    if let Some(t) = tap.as_mut() {
                        t.feed(b);
                    }
                };
                splice(TokioIo::new(up), socket, feed).await;
            }
            Err(e) => tracing::debug!("peer console of {} not upgraded: {e}", target.name),
        }
    });
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, "upgrade"),
            (header::UPGRADE, PEER_CONSOLE_PROTOCOL),
        ],
    )
        .into_response())
}

/// Copies bytes between a peer's connection and a console until either side closes;
/// what the peer sends is shown to `tap` first.
async fn splice<P, C>(peer: P, console: C, mut tap: impl FnMut(&[u8]))
where
    P: AsyncRead + AsyncWrite,
    C: AsyncRead + AsyncWrite,
{
    let (mut pr, mut pw) = tokio::io::split(peer);
    let (mut cr, mut cw) = tokio::io::split(console);
    let down = async {
        let _ = tokio::io::copy(&mut cr, &mut pw).await;
        let _ = pw.shutdown().await;
    };
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n @ 1..) = pr.read(&mut buf).await {
            tap(&buf[..n]);
            if cw.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = cw.shutdown().await;
    };
    tokio::select! {
        () = down => {}
        () = up => {}
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    #[tokio::test]
    async fn splice_carries_both_ways_and_taps_the_peer_side() {
        let (peer, mut far_peer) = tokio::io::duplex(1024);
        let (console, mut far_console) = tokio::io::duplex(1024);
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let task = tokio::spawn(splice(peer, console, move |b: &[u8]| {
            s.lock().unwrap().extend_from_slice(b)
        }));
        far_console.write_all(b"RFB 003.008\n").await.unwrap();
        let mut got = [0u8; 12];
        far_peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"RFB 003.008\n");
        far_peer.write_all(b"keys").await.unwrap();
        let mut got = [0u8; 4];
        far_console.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"keys");
        assert_eq!(seen.lock().unwrap().as_slice(), b"keys");
        // The console closing ends the splice and the peer sees the end.
        drop(far_console);
        task.await.unwrap();
        let mut rest = Vec::new();
        far_peer.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }
}
