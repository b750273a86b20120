//! The live side of the API: the events WebSocket and VNC / terminal consoles (a ticket
//! over an ordinary request, then a WebSocket relaying the VM's console socket).
//!
//! Handlers only translate, as everywhere: the control plane says which socket a VM's
//! console is and whether it may be opened; [`tickets`] authorises the WebSocket;
//! [`relay`] and [`events`] move the bytes.

pub mod events;
mod graphs;
pub mod origin;
mod pipes;
pub mod relay;
pub mod spec;
pub mod tickets;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use ferromega_api::events::ConsoleTicket;
use ferromega_api::{ErrorBody, HostError};
use ferromega_domain::console::ConsoleKind;
use ferromega_domain::mesh::console::ConsoleAt;
use ferromega_domain::vnc::VncTap;
use ferromega_domain::{ControlPlane, DomainError};
use futures_util::StreamExt;
use serde::Deserialize;

use crate::auth::Principal;
use crate::error::ApiError;
use origin::origin_allowed;
use tickets::{Binding, Tickets, TICKET_TTL};

/// State of the live routes: the control plane and the outstanding console tickets.
#[derive(Clone)]
pub(crate) struct Live {
    cp: ControlPlane,
    tickets: Arc<Tickets>,
}

/// The live routes, over `cp`, with a ticket store of their own.
pub(crate) fn router<S>(cp: ControlPlane) -> Router<S> {
    let live = Live {
        cp,
        tickets: Arc::new(Tickets::new(TICKET_TTL)),
    };
    Router::new()
        .route("/api/v1/events", get(events_ws))
        .route(
            "/api/v1/namespaces/{ns}/vms/{name}/console",
            post(console_ticket),
        )
        .route("/api/v1/console/ws", get(console_ws))
        .route("/api/v1/namespaces/{ns}/graphs", get(graphs::graphs))
        .route(
            "/api/v1/namespaces/{ns}/pipes/{name}",
            get(pipes::pipe_read),
        )
        .with_state(live)
}

/// `stream` until the server stops: a streaming answer must end then, or the graceful
/// shutdown would wait for its reader forever.
pub(crate) fn until_stopped<S: futures_util::Stream>(
    cp: &ControlPlane,
    stream: S,
) -> impl futures_util::Stream<Item = S::Item> {
    let mut quit = cp.quit_signal();
    stream.take_until(Box::pin(async move {
        let _ = quit.wait_for(|q| *q).await;
    }))
}

/// A refusal that is not a domain error (a bad Origin or ticket), in the one error body.
fn refuse(status: StatusCode, host: &str, msg: impl Into<String>) -> Response {
    let body = ErrorBody {
        errors: vec![HostError {
            error: msg.into(),
            host: host.to_string(),
        }],
    };
    (status, Json(body)).into_response()
}

fn cross_origin(host: &str) -> Response {
    refuse(
        StatusCode::FORBIDDEN,
        host,
        "cross-origin websocket refused: the Origin is not this server",
    )
}

/// `GET /api/v1/events`: the events WebSocket.
/// Behind `serve --auth`, a reader sees only the namespaces its rules let it read.
async fn events_ws(
    State(live): State<Live>,
    principal: Option<Extension<Arc<Principal>>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers) {
        return cross_origin(live.cp.host());
    }
    ws.on_upgrade(move |socket| async move {
        let (snapshot, bus) = live.cp.subscribe();
        let (tx, rx) = socket.split();
        let visible = |ns: &str| principal.as_ref().is_none_or(|p| p.sees_namespace(ns));
        let ended = events::pump_visible(snapshot, bus, tx, rx, relay::PING_EVERY, &visible).await;
        tracing::debug!("events stream ended: {ended:?}");
    })
}

/// `POST /api/v1/namespaces/{ns}/vms/{name}/console`: a ticket for the VM's console —
/// on this host, or on the mesh peer running it (then the console travels the peer link).
async fn console_ticket(
    State(live): State<Live>,
    Path((ns, name)): Path<(String, String)>,
) -> Result<Json<ConsoleTicket>, Response> {
    let host = live.cp.host().to_string();
    let fail = |e: DomainError| ApiError::domain(&host, &e).into_response();
    let at = live.cp.console_anywhere(&ns, &name).map_err(fail)?;
    let (binding, kind) = match at {
        ConsoleAt::Here(t) => {
            let b = Binding {
                namespace: t.namespace,
                id: t.id,
                name: t.name,
                peer: None,
            };
            (b, t.kind)
        }
        ConsoleAt::Peer(p) => {
            let kind = p.kind;
            let b = Binding {
                namespace: p.namespace.clone(),
                id: p.id,
                name: p.name.clone(),
                peer: Some(p),
            };
            (b, kind)
        }
    };
    let (namespace, vm) = (binding.namespace.clone(), binding.name.clone());
    let ticket = live
        .tickets
        .issue(binding, Instant::now())
        .map_err(|e| refuse(StatusCode::SERVICE_UNAVAILABLE, &host, e.to_string()))?;
    Ok(Json(ConsoleTicket {
        url: format!("/api/v1/console/ws?ticket={ticket}"),
        ticket,
        kind: kind.as_str().to_string(),
        expires_in: live.tickets.ttl().as_secs(),
        namespace,
        name: vm,
    }))
}

/// Query of the console WebSocket.
#[derive(Debug, Deserialize)]
struct ConsoleQuery {
    ticket: String,
    /// When given with `vm`, the ticket must have been issued for this namespace.
    ns: Option<String>,
    /// When given, the ticket must have been issued for this VM (name or ID).
    vm: Option<String>,
}

/// `GET /api/v1/console/ws?ticket=…`: the console WebSocket of the ticket's VM.
async fn console_ws(
    State(live): State<Live>,
    headers: HeaderMap,
    Query(q): Query<ConsoleQuery>,
    ws: WebSocketUpgrade,
) -> Response {
    let host = live.cp.host().to_string();
    if !origin_allowed(&headers) {
        return cross_origin(&host);
    }
    let ns = q.ns.as_deref().unwrap_or("minimega");
    let want = q.vm.as_deref().map(|vm| (ns, vm));
    let binding = match live.tickets.redeem(&q.ticket, want, Instant::now()) {
        Ok(b) => b,
        Err(e) => return refuse(StatusCode::FORBIDDEN, &host, e.to_string()),
    };
    if let Some(peer) = binding.peer {
        // On another host: its console through the peer link (the VM's host checks it
        // is still that VM and running, and taps the input for its recordings).
        let io = match live.cp.open_peer_console(&peer).await {
            Ok(io) => io,
            Err(e) => return refuse(StatusCode::BAD_GATEWAY, &host, e.to_string()),
        };
        return upgrade_relay(ws, io, peer.name, None);
    }
    // The VM may have stopped, or been replaced, since the ticket was issued.
    let target = match live.cp.console_target_by_id(&binding.namespace, binding.id) {
        Ok(t) => t,
        Err(e) => return ApiError::domain(&host, &e).into_response(),
    };
    let stream = match tokio::net::UnixStream::connect(&target.socket).await {
        Ok(s) => s,
        Err(e) => {
            let msg = format!("cannot reach the console of vm {}: {e}", target.name);
            return refuse(StatusCode::BAD_GATEWAY, &host, msg);
        }
    };
    // A VNC viewer's input goes to the VM's kb recording, when one runs.
    let tap =
        (target.kind == ConsoleKind::Vnc).then(|| live.cp.vnc_tap(&target.namespace, &target.name));
    upgrade_relay(ws, stream, target.name, tap)
}

/// Answers the WebSocket upgrade and relays it to `io`, the viewer's input shown to `tap`.
fn upgrade_relay(
    ws: WebSocketUpgrade,
    io: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + 'static,
    name: String,
    mut tap: Option<VncTap>,
) -> Response {
    ws.protocols(["binary"])
        .on_upgrade(move |socket| async move {
            let (tx, rx) = socket.split();
            let feed = move |b: &[u8]| {
                if let Some(t) = tap.as_mut() {
                    t.feed(b);
                }
            };
            let r = relay::relay(tx, rx, io, relay::PING_EVERY, feed).await;
            tracing::debug!(
                "console of {name} closed: {:?}, {} bytes out, {} in",
                r.ended,
                r.to_viewer,
                r.to_console
            );
        })
}
