//! `GET /static/{*path}`: the embedded static files — ours from `web/static/`, and noVNC,
//! xterm.js and uPlot from `web/node_modules` (see `build.rs`), served as they are (ES
//! modules need no bundler).

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The contents of the embedded file at `path` (under `/static/`).
pub fn asset(path: &str) -> Option<&'static [u8]> {
    ASSETS.iter().find(|(p, _)| *p == path).map(|(_, b)| *b)
}

/// Every embedded path.
pub fn paths() -> impl Iterator<Item = &'static str> {
    ASSETS.iter().map(|(p, _)| *p)
}

/// The content type of a file by its extension; `.js`/`.mjs` must be JavaScript for
/// browsers to run them as modules.
fn content_type(path: &str) -> &'static str {
    match path.rsplit('.').next().unwrap_or_default() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

/// Serves one embedded file.
pub(crate) async fn serve(Path(path): Path<String>) -> Response {
    match asset(&path) {
        Some(bytes) => (
            [
                (header::CONTENT_TYPE, content_type(&path)),
                // Embedded in the binary: a new server may bring new files under the same
                // names, so browsers must ask again (cheap on loopback and a LAN).
                (header::CACHE_CONTROL, "no-cache"),
            ],
            bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, format!("no static file {path}\n")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_scripts_and_styles_are_embedded() {
        for p in ["app.css", "api.js", "vms.js", "vm.js", "graphs.js"] {
            assert!(asset(p).is_some(), "{p} not embedded");
        }
    }

    #[test]
    fn modules_are_served_as_javascript() {
        assert_eq!(
            content_type("novnc/core/rfb.js"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(
            content_type("xterm/xterm.mjs"),
            "text/javascript; charset=utf-8"
        );
        assert_eq!(content_type("app.css"), "text/css; charset=utf-8");
    }
}
