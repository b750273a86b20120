//! ferromega-web: the dashboard — askama pages and the embedded static files, served by
//! the same server as the API.
//!
//! The pages are shells: their scripts read the same JSON endpoints users script against
//! (`vm info`, `vm top`, `host` …), their buttons post to them, and the events WebSocket
//! keeps the VM tables live. Nothing here touches the control plane.

pub mod assets;
mod pages;

use axum::routing::get;
use axum::Router;

/// What the dashboard offers beyond its pages.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The command console page (`serve --console`); off, the page says so (404).
    pub console: bool,
}

/// The dashboard's routes with the default [`Options`] (no console).
pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    router_with(Options::default())
}

/// The dashboard's routes: `/`, `/namespaces`, `/ns/{ns}/…` pages and `/static/…`.
pub fn router_with<S: Clone + Send + Sync + 'static>(opts: Options) -> Router<S> {
    let console = opts.console;
    Router::new()
        .route("/", get(pages::home))
        .route("/namespaces", get(pages::namespaces))
        .route("/hosts", get(pages::home_hosts))
        .route("/api", get(pages::api))
        .route("/ns/{ns}", get(pages::ns_home))
        .route("/ns/{ns}/vms", get(pages::vms))
        .route("/ns/{ns}/vms/{name}", get(pages::vm))
        .route("/ns/{ns}/screenshots", get(pages::screenshots))
        .route("/ns/{ns}/hosts", get(pages::hosts))
        .route("/ns/{ns}/graphs", get(pages::graphs))
        .route("/ns/{ns}/vlans", get(pages::vlans))
        .route("/ns/{ns}/files", get(pages::files))
        .route("/files", get(pages::home_files))
        .route(
            "/ns/{ns}/console",
            get(move |ns| pages::console(ns, console)),
        )
        .route("/console", get(pages::home_console))
        .route("/static/{*path}", get(assets::serve))
}
