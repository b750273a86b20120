//! Per-path rules of the password file: who may reach which path prefix, read-only or
//! read-write, and what access a request needs.
//!
//! A request needs `ro` when it only reads: a GET or HEAD (pages, graphs, the events
//! WebSocket) or a POST to an operation that only reads (`vm info`, `vm top`, `vlans`,
//! `file list`, …: every API call is a POST with an `Args` body, so the method alone
//! cannot say). Everything else needs `rw`. A prefix matches whole path segments:
//! `/ns/foo` covers `/ns/foo` and `/ns/foo/vms`, never `/ns/foobar`; `/` covers all.
//!
//! The command endpoint (`/api/v1/namespaces/{ns}/command`) runs any command in any
//! namespace (`namespace bar vm kill all`), so it is checked as the global path
//! `/api/v1/command`: only a rule covering that (`/`, `/api`, `/api/v1/command`) opens it.

use std::collections::HashMap;
use std::sync::OnceLock;

use ferromega_command::handlers::operations;
use ferromega_command::routes::route_of;

/// What a rule grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Access {
    /// Reads: pages, GETs, operations that only read.
    Ro,
    /// Everything.
    Rw,
}

impl Access {
    /// `ro` or `rw`.
    pub fn parse(s: &str) -> Option<Access> {
        match s {
            "ro" => Some(Access::Ro),
            "rw" => Some(Access::Rw),
            _ => None,
        }
    }

    /// `ro` or `rw`.
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Ro => "ro",
            Access::Rw => "rw",
        }
    }
}

/// One `allow` line: `prefix` at `access`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Path prefix, starting with `/`.
    pub prefix: String,
    /// What it grants.
    pub access: Access,
}

/// Whether `prefix` covers `path`, at segment boundaries.
pub fn covers(prefix: &str, path: &str) -> bool {
    let p = prefix.trim_end_matches('/');
    p.is_empty()
        || path == p
        || path
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// Paths any signed-in principal may reach: the static assets (as in miniweb), the
/// login/logout forms, `/` (a redirect), the events WebSocket (filtered to the
/// namespaces the principal may read) and the console WebSocket (its ticket, issued
/// under the VM's namespace path, authorises it).
pub fn open_to_signed_in(path: &str) -> bool {
    path == "/"
        || covers("/static", path)
        || path == "/login"
        || path == "/logout"
        || path == "/api/v1/events"
        || path == "/api/v1/console/ws"
}

/// Operations that only read, by name. Not `vm screenshot`: its `file` form writes the
/// PNG to any path the server may write, so it needs `rw`.
fn is_read_operation(name: &str) -> bool {
    ["_info", "_top", "_list", "_status"]
        .iter()
        .any(|s| name.ends_with(s))
        || matches!(name, "vlans" | "host" | "version" | "help")
}

/// `POST` paths of operations that only read (`/api/v1/namespaces/{ns}/vm/info`, …).
fn read_paths() -> &'static HashMap<String, ()> {
    static PATHS: OnceLock<HashMap<String, ()>> = OnceLock::new();
    PATHS.get_or_init(|| {
        operations()
            .filter(|(_, spec)| is_read_operation(&spec.name))
            .map(|(_, spec)| (route_of(spec).path, ()))
            .collect()
    })
}

/// `path` with its namespace replaced by `{ns}`, and the namespace.
fn template(path: &str) -> (String, Option<&str>) {
    match path.strip_prefix("/api/v1/namespaces/") {
        Some(rest) => match rest.split_once('/') {
            Some((ns, tail)) => (format!("/api/v1/namespaces/{{ns}}/{tail}"), Some(ns)),
            None => (path.to_string(), Some(rest)),
        },
        None => (path.to_string(), None),
    }
}

/// The access a `method` request to `path` needs, and the path the rules are checked
/// against (the command endpoint's global stand-in, or `path` itself).
pub fn needed(method: &str, path: &str) -> (Access, String) {
    let (tmpl, _) = template(path);
    if tmpl == "/api/v1/namespaces/{ns}/command" {
        return (Access::Rw, "/api/v1/command".to_string());
    }
    let access = match method {
        "GET" | "HEAD" => Access::Ro,
        "POST" if read_paths().contains_key(&tmpl) => Access::Ro,
        _ => Access::Rw,
    };
    (access, path.to_string())
}

/// Whether `rules` let a `method` request reach `path`.
pub fn allows(rules: &[Rule], method: &str, path: &str) -> bool {
    let (want, checked) = needed(method, path);
    rules
        .iter()
        .any(|r| r.access >= want && covers(&r.prefix, &checked))
}

/// Whether `rules` let their holder read the VMs of namespace `ns` (what the events
/// stream shows of it).
pub fn sees_namespace(rules: &[Rule], ns: &str) -> bool {
    allows(rules, "POST", &format!("/api/v1/namespaces/{ns}/vm/info"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(prefix: &str, access: Access) -> Rule {
        Rule {
            prefix: prefix.into(),
            access,
        }
    }

    #[test]
    fn prefixes_match_whole_segments() {
        assert!(covers("/", "/anything/at/all"));
        assert!(covers("/ns/foo", "/ns/foo"));
        assert!(covers("/ns/foo/", "/ns/foo"));
        assert!(covers("/ns/foo/", "/ns/foo/vms"));
        assert!(!covers("/ns/foo", "/ns/foobar"));
        assert!(!covers("/ns/foo/", "/ns/foobar/vms"));
        assert!(!covers("/ns/foo/vms", "/ns/foo"));
    }

    #[test]
    fn reads_need_ro_and_actions_need_rw() {
        assert_eq!(needed("GET", "/ns/foo/vms").0, Access::Ro);
        let info = "/api/v1/namespaces/foo/vm/info";
        assert_eq!(needed("POST", info), (Access::Ro, info.to_string()));
        assert_eq!(
            needed("POST", "/api/v1/namespaces/foo/vm/top").0,
            Access::Ro
        );
        assert_eq!(needed("POST", "/api/v1/namespaces/foo/vlans").0, Access::Ro);
        assert_eq!(needed("POST", "/api/v1/file/list").0, Access::Ro);
        assert_eq!(
            needed("POST", "/api/v1/namespaces/foo/vm/screenshot").0,
            Access::Rw,
            "vm screenshot … file <path> writes"
        );
        assert_eq!(
            needed("POST", "/api/v1/namespaces/foo/vm/start").0,
            Access::Rw
        );
        assert_eq!(
            needed("DELETE", "/api/v1/namespaces/foo/vm/config").0,
            Access::Rw
        );
        assert_eq!(
            needed("POST", "/api/v1/namespaces/foo/vm/launch").0,
            Access::Rw
        );
    }

    #[test]
    fn the_command_endpoint_is_checked_as_a_global_path() {
        let foo = [rule("/api/v1/namespaces/foo/", Access::Rw)];
        assert!(!allows(&foo, "POST", "/api/v1/namespaces/foo/command"));
        let cmd = [rule("/api/v1/command", Access::Rw)];
        assert!(allows(&cmd, "POST", "/api/v1/namespaces/bar/command"));
        let ro_all = [rule("/", Access::Ro)];
        assert!(!allows(&ro_all, "POST", "/api/v1/namespaces/foo/command"));
        assert!(allows(
            &[rule("/", Access::Rw)],
            "POST",
            "/api/v1/namespaces/x/command"
        ));
    }

    #[test]
    fn a_user_of_one_namespace_reaches_only_it() {
        let rules = [
            rule("/api/v1/namespaces/foo/", Access::Rw),
            rule("/ns/foo/", Access::Ro),
        ];
        assert!(allows(&rules, "POST", "/api/v1/namespaces/foo/vm/kill"));
        assert!(allows(&rules, "GET", "/ns/foo/vms"));
        assert!(!allows(&rules, "POST", "/api/v1/namespaces/bar/vm/info"));
        assert!(!allows(&rules, "POST", "/api/v1/namespaces/foobar/vm/info"));
        assert!(!allows(&rules, "GET", "/ns/bar/vms"));
        assert!(!allows(&rules, "POST", "/api/v1/file/list"));
        assert!(sees_namespace(&rules, "foo"));
        assert!(!sees_namespace(&rules, "bar"));
    }

    #[test]
    fn read_only_rules_refuse_actions() {
        let rules = [rule("/api/v1/namespaces/foo/", Access::Ro)];
        assert!(allows(&rules, "POST", "/api/v1/namespaces/foo/vm/info"));
        assert!(!allows(&rules, "POST", "/api/v1/namespaces/foo/vm/start"));
        assert!(!allows(
            &rules,
            "POST",
            "/api/v1/namespaces/foo/vms/vm0/console"
        ));
        assert!(sees_namespace(&rules, "foo"));
        // A second, wider rule at rw wins for what it covers.
        let more = [
            rule("/api/v1/namespaces/foo/", Access::Ro),
            rule("/api/v1/namespaces/foo/vm/start", Access::Rw),
        ];
        assert!(allows(&more, "POST", "/api/v1/namespaces/foo/vm/start"));
        assert!(!allows(&more, "POST", "/api/v1/namespaces/foo/vm/kill"));
    }

    #[test]
    fn no_rules_reach_nothing_but_the_open_paths() {
        assert!(!allows(&[], "GET", "/ns/foo/vms"));
        assert!(open_to_signed_in("/static/app.css"));
        assert!(open_to_signed_in("/api/v1/events"));
        assert!(!open_to_signed_in("/api/v1/eventsx"));
        assert!(!open_to_signed_in("/statics"));
    }

    #[test]
    fn access_words_round_trip() {
        for a in [Access::Ro, Access::Rw] {
            assert_eq!(Access::parse(a.as_str()), Some(a));
        }
        assert_eq!(Access::parse("rx"), None);
    }
}
