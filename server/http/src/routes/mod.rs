//! The route table: operations from the handler table, plus command, suggest and the spec.

pub(crate) mod command;
pub(crate) mod operations;

use axum::routing::{get, post};
use axum::Router;
use ferromega_domain::ControlPlane;

pub(crate) fn router() -> Router<ControlPlane> {
    let mut r = Router::new()
        .route("/api/v1/namespaces/{ns}/command", post(command::command))
        .route("/api/v1/suggest", get(command::suggest))
        .route("/openapi.json", get(command::openapi));
    for (name, route) in operations::routes() {
        r = r.route(&route.path, operations::method_router(name, &route));
    }
    r
}
