//! The peer endpoints: a handshake/heartbeat, forwarded commands, file parts, VM events and
//! consoles ([`live`]), guarded by the
//! shared cluster secret (`serve --cluster-secret-file`).
//!
//! They sit outside the token guard of `--auth` (peers present the cluster secret, not
//! a user's token) and outside the public OpenAPI document: they are the mesh's
//! transport, not operations of the language. A request without the secret gets 401;
//! a server without a secret refuses every peer (403).

mod live;

use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use ferromega_api::mesh::{
    PeerFileRequest, PeerHello, PeerRequest, PEER_CONSOLE_PATH, PEER_EVENTS_PATH, PEER_FILE_PATH,
    PEER_GRAPHS_PATH, PEER_HELLO_PATH, PEER_RUN_PATH,
};
use ferromega_api::Response;
use ferromega_domain::{ControlPlane, DomainError};

use crate::auth::hash_token;
use crate::error::ApiError;

#[derive(Clone)]
struct PeerState {
    cp: ControlPlane,
    /// SHA-256 of the cluster secret; `None` refuses every peer.
    secret: Option<Arc<[u8; 32]>>,
}

fn refuse(cp: &ControlPlane, status: StatusCode, msg: &str) -> (StatusCode, ApiError) {
    (
        status,
        ApiError::domain(cp.host(), &DomainError::invalid(msg)),
    )
}

/// Lets the request in when it carries `Authorization: Bearer <cluster secret>`.
fn admit(s: &PeerState, headers: &HeaderMap) -> Result<(), (StatusCode, ApiError)> {
    let Some(secret) = &s.secret else {
        return Err(refuse(
            &s.cp,
            StatusCode::FORBIDDEN,
            "mesh disabled: this host has no cluster secret",
        ));
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match presented {
        // Digests of a 256-bit secret: comparing them leaks nothing useful.
        Some(p) if hash_token(p) == **secret => Ok(()),
        _ => Err(refuse(
            &s.cp,
            StatusCode::UNAUTHORIZED,
            "peer refused: wrong or missing cluster secret",
        )),
    }
}

async fn hello(
    State(s): State<PeerState>,
    headers: HeaderMap,
    Json(h): Json<PeerHello>,
) -> Result<Json<PeerHello>, (StatusCode, ApiError)> {
    admit(&s, &headers)?;
    s.cp.mesh_hello_received(&h)
        .map(Json)
        .map_err(|e| refuse(&s.cp, StatusCode::CONFLICT, &e))
}

async fn run(
    State(s): State<PeerState>,
    headers: HeaderMap,
    Json(req): Json<PeerRequest>,
) -> Result<Json<Vec<Response>>, (StatusCode, ApiError)> {
    admit(&s, &headers)?;
    Ok(Json(s.cp.peer_run(req).await))
}

/// A file question: the matching files as JSON, or a part's bytes.
async fn file(
    State(s): State<PeerState>,
    headers: HeaderMap,
    Json(req): Json<PeerFileRequest>,
) -> Result<axum::response::Response, (StatusCode, ApiError)> {
    use axum::response::IntoResponse;
    admit(&s, &headers)?;
    let host = s.cp.host().to_string();
    let fail = |e: DomainError| (crate::error::status_for(&e), ApiError::domain(&host, &e));
    if req.offset.is_none() {
        let files = s.cp.peer_file_info(&req).await.map_err(fail)?;
        return Ok(Json(files).into_response());
    }
    let bytes = s.cp.peer_file_part(&req).await.map_err(fail)?;
    Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
}

/// Every path of the peer link.
const PEER_PATHS: [&str; 6] = [
    PEER_HELLO_PATH,
    PEER_RUN_PATH,
    PEER_FILE_PATH,
    PEER_EVENTS_PATH,
    PEER_CONSOLE_PATH,
    PEER_GRAPHS_PATH,
];

/// `app` with the peer endpoints beside it: requests to the peer paths go to
/// [`peer_router`], everything else to `app` untouched (its guard and fallback included:
/// merging routers would replace a guarded fallback with an unguarded one).
pub fn beside(app: Router, cp: ControlPlane, secret: Option<&str>) -> Router {
    // As services, not routers: axum refuses routers in `route_service`.
    let peers = peer_router(cp, secret).into_service::<axum::body::Body>();
    PEER_PATHS
        .into_iter()
        .fold(Router::new(), |r, path| {
            r.route_service(path, peers.clone())
        })
        .fallback_service(app.into_service::<axum::body::Body>())
}

/// The peer endpoints of a server driving `cp`, admitting peers that present `secret`.
pub fn peer_router(cp: ControlPlane, secret: Option<&str>) -> Router {
    let state = PeerState {
        cp,
        secret: secret.map(|s| Arc::new(hash_token(s))),
    };
    Router::new()
        .route(PEER_HELLO_PATH, post(hello))
        .route(PEER_RUN_PATH, post(run))
        .route(PEER_FILE_PATH, post(file))
        .route(PEER_EVENTS_PATH, get(live::events))
        .route(PEER_CONSOLE_PATH, get(live::console))
        .route(PEER_GRAPHS_PATH, post(live::graphs))
        .with_state(state)
}
