//! The pages: one askama template each, filled with the namespace (and VM) of the URL.
//! Names are checked with minimega's rule before they reach a template.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::Path;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

/// minimega's rule for VM and namespace names (`^[A-Za-z0-9_.-]+$`).
fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 256
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
}

fn bad_name(what: &str, name: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        format!("invalid {what} name {name:?}: names are letters, digits, `_`, `.` and `-`\n"),
    )
        .into_response()
}

/// `/`: the VMs of the default namespace, as miniweb's `/` → `/vms`.
pub(crate) async fn home() -> Redirect {
    Redirect::to("/ns/minimega/vms")
}

/// `/hosts`: the hosts page of the default namespace.
pub(crate) async fn home_hosts() -> Redirect {
    Redirect::to("/ns/minimega/hosts")
}

/// `/ns/{ns}`: its VMs.
pub(crate) async fn ns_home(Path(ns): Path<String>) -> Response {
    if !valid_name(&ns) {
        return bad_name("namespace", &ns);
    }
    Redirect::to(&format!("/ns/{ns}/vms")).into_response()
}

/// The namespaces page.
#[derive(Template, WebTemplate)]
#[template(path = "namespaces.html")]
pub(crate) struct NamespacesPage {
    ns: String,
    page: &'static str,
}

pub(crate) async fn namespaces() -> NamespacesPage {
    NamespacesPage {
        ns: "minimega".into(),
        page: "namespaces",
    }
}

/// The API page: the OpenAPI document, browsable offline.
#[derive(Template, WebTemplate)]
#[template(path = "api.html")]
pub(crate) struct ApiPage {
    ns: String,
    page: &'static str,
}

pub(crate) async fn api() -> ApiPage {
    ApiPage {
        ns: "minimega".into(),
        page: "api",
    }
}

/// The VMs of a namespace: the `vm info` and `vm top` tables, live.
#[derive(Template, WebTemplate)]
#[template(path = "vms.html")]
pub(crate) struct VmsPage {
    ns: String,
    page: &'static str,
}

pub(crate) async fn vms(Path(ns): Path<String>) -> Response {
    if !valid_name(&ns) {
        return bad_name("namespace", &ns);
    }
    VmsPage { ns, page: "vms" }.into_response()
}

/// One VM: details, screenshot, console.
#[derive(Template, WebTemplate)]
#[template(path = "vm.html")]
pub(crate) struct VmPage {
    ns: String,
    page: &'static str,
    name: String,
}

pub(crate) async fn vm(Path((ns, name)): Path<(String, String)>) -> Response {
    if !valid_name(&ns) {
        return bad_name("namespace", &ns);
    }
    if !valid_name(&name) {
        return bad_name("vm", &name);
    }
    VmPage {
        ns,
        page: "vms",
        name,
    }
    .into_response()
}

/// The screenshots grid of a namespace.
#[derive(Template, WebTemplate)]
#[template(path = "screenshots.html")]
pub(crate) struct ScreenshotsPage {
    ns: String,
    page: &'static str,
}

pub(crate) async fn screenshots(Path(ns): Path<String>) -> Response {
    if !valid_name(&ns) {
        return bad_name("namespace", &ns);
    }
    ScreenshotsPage {
        ns,
        page: "screenshots",
    }
    .into_response()
}

/// The hosts of a namespace.
#[derive(Template, WebTemplate)]
#[template(path = "hosts.html")]
pub(crate) struct HostsPage {
    ns: String,
    page: &'static str,
}

pub(crate) async fn hosts(Path(ns): Path<String>) -> Response {
    if !valid_name(&ns) {
        return bad_name("namespace", &ns);
    }
    HostsPage { ns, page: "hosts" }.into_response()
}

/// Query of the graphs page.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct GraphsQuery {
    vm: Option<String>,
}

/// CPU, memory and network over time of a VM or this host, drawn with uPlot.
#[derive(Template, WebTemplate)]
#[template(path = "graphs.html")]
pub(crate) struct GraphsPage {
    ns: String,
    page: &'static str,
    vm: String,
}

pub(crate) async fn graphs(
    Path(ns): Path<String>,
    axum::extract::Query(q): axum::extract::Query<GraphsQuery>,
) -> Response {
    if !valid_name(&ns) {
        return bad_name("namespace", &ns);
    }
    let vm = q.vm.unwrap_or_default();
    if !vm.is_empty() && !valid_name(&vm) {
        return bad_name("vm", &vm);
    }
    GraphsPage {
        ns,
        page: "graphs",
        vm,
    }
    .into_response()
}

/// The VLANs of a namespace: its aliases and range, with forms to add and set them.
#[derive(Template, WebTemplate)]
#[template(path = "vlans.html")]
pub(crate) struct VlansPage {
    ns: String,
    page: &'static str,
}

pub(crate) async fn vlans(Path(ns): Path<String>) -> Response {
    if !valid_name(&ns) {
        return bad_name("namespace", &ns);
    }
    VlansPage { ns, page: "vlans" }.into_response()
}

/// The files directory: browse (`?path=`), download, upload, delete.
#[derive(Template, WebTemplate)]
#[template(path = "files.html")]
pub(crate) struct FilesPage {
    ns: String,
    page: &'static str,
}

pub(crate) async fn files(Path(ns): Path<String>) -> Response {
    if !valid_name(&ns) {
        return bad_name("namespace", &ns);
    }
    FilesPage { ns, page: "files" }.into_response()
}

/// `/files`: the files page, from the default namespace's navigation.
pub(crate) async fn home_files() -> Redirect {
    Redirect::to("/ns/minimega/files")
}

/// The command console, or a page saying it is off.
#[derive(Template, WebTemplate)]
#[template(path = "console.html")]
pub(crate) struct ConsolePage {
    ns: String,
    page: &'static str,
    enabled: bool,
}

pub(crate) async fn console(Path(ns): Path<String>, enabled: bool) -> Response {
    if !valid_name(&ns) {
        return bad_name("namespace", &ns);
    }
    let page = ConsolePage {
        ns,
        page: "console",
        enabled,
    };
    if enabled {
        page.into_response()
    } else {
        (StatusCode::NOT_FOUND, page).into_response()
    }
}

/// `/console`: the console of the default namespace.
pub(crate) async fn home_console() -> Redirect {
    Redirect::to("/ns/minimega/console")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_minimegas_rule() {
        assert!(valid_name("vm-1.a_b"));
        assert!(!valid_name(""));
        assert!(!valid_name("a b"));
        assert!(!valid_name("<script>"));
        assert!(!valid_name("a/b"));
    }

    #[tokio::test]
    async fn the_console_is_off_unless_asked_for() {
        let off = console(Path("minimega".into()), false).await;
        assert_eq!(off.status(), StatusCode::NOT_FOUND);
        let on = console(Path("minimega".into()), true).await;
        assert_eq!(on.status(), StatusCode::OK);
        let bad = console(Path("a b".into()), true).await;
        assert_eq!(bad.status(), StatusCode::BAD_REQUEST);
        let html = ConsolePage {
            ns: "foo".into(),
            page: "console",
            enabled: true,
        }
        .render()
        .unwrap_or_default();
        assert!(
            html.contains("/static/console.js") && html.contains("foo$"),
            "{html}"
        );
    }

    #[test]
    fn pages_escape_what_they_show() {
        let page = VmPage {
            ns: "minimega".into(),
            page: "vms",
            name: "vm0".into(),
        };
        let html = page.render().unwrap_or_default();
        assert!(html.contains(r#"data-name="vm0""#), "{html}");
        assert!(html.contains("/static/vm.js"));
    }
}
