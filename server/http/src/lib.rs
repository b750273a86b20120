//! ferromega-http: the axum router — one endpoint per operation, the command and suggest
//! endpoints, the generated OpenAPI document — and minimega's unix-socket protocol.

pub mod auth;
pub mod error;
mod files;
pub mod live;
pub mod mesh;
mod routes;
pub mod socket;
pub mod spec;
pub mod tls;

use axum::Router;
use ferromega_domain::ControlPlane;

/// The whole HTTP surface of a server driving `cp`.
pub fn router(cp: ControlPlane) -> Router {
    routes::router()
        .merge(files::router())
        .merge(live::router(cp.clone()))
        .with_state(cp)
}
