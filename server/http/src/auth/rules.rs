//! Per-path rules of the password file: who may reach which path prefix, read-only or
//! read-write, and what access a request needs.
//!
//! A request needs `ro` when it only reads: a GET or HEAD (pages, graphs, the events
//! WebSocket) or a POST to an operation that only reads (`vm info`, `vm top`, `vlans`,
//! `file list`, …: every API call is a POST with an `Args` body, so the method alone
//! cannot say). Everything else needs `rw`. A prefix matches whole path segments:
//! `/ns/foo` covers `/ns/foo` and `/ns/foo/vms`, never `/ns/foobar`; `/` covers all.
//!
//! The command endpoint (`/api/v1/namespaces/{ns}/command`) is open to anyone signed in,
//! but every operation a line runs — nested ones (`namespace bar (vm kill all)`, the
//! lines of a `read`) included — is checked as a request to that operation's own
//! endpoint ([`command_allowed`]): a command line may do no more than the caller's API
//! requests could. `namespace X` needs read access to X; builtins that change
//! server-wide state (`alias`, `unalias`, `env`, an output flag set for everyone) need a
//! rule covering the pseudo-path `/api/v1/command` at `rw`.

use std::collections::HashMap;
use std::sync::OnceLock;

use ferromega_api::Args;
use ferromega_command::handlers::{by_name, operations};
use ferromega_command::routes::{route_of, Verb};
use ferromega_command::Scope;

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
/// namespaces the principal may read), the console WebSocket (its ticket, issued
/// under the VM's namespace path, authorises it) and the command endpoint (each
/// operation of a line is checked by [`command_allowed`]).
pub fn open_to_signed_in(path: &str) -> bool {
    is_command_endpoint(path)
        || path == "/"
        || covers("/static", path)
        || path == "/login"
        || path == "/logout"
        || path == "/api/v1/events"
        || path == "/api/v1/console/ws"
}

/// Operations that only read, by name. `vm screenshot` reads unless given a file to
/// write (its `file` form writes the PNG to any path the server may write): the path
/// rule lets it through at `ro`, and the handler's gate ([`command_allowed`]) wants `rw`
/// for the `file` form.
fn is_read_operation(name: &str) -> bool {
    ["_info", "_top", "_list", "_status"]
        .iter()
        .any(|s| name.ends_with(s))
        || matches!(
            name,
            "vlans" | "host" | "version" | "help" | "vm_screenshot"
        )
}

/// Whether operation `name` writes with these `args` although its path is a read.
fn writes_anyway(name: &str, args: &Args) -> bool {
    name == "vm_screenshot" && args.string("filename").is_some()
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

/// Whether `path` is the command endpoint of a namespace.
pub fn is_command_endpoint(path: &str) -> bool {
    template(path).0 == "/api/v1/namespaces/{ns}/command"
}

/// The pseudo-path whose `rw` rule lets a command line change server-wide state.
pub const SERVER_STATE: &str = "/api/v1/command";

/// The access a `method` request to `path` needs.
pub fn needed(method: &str, path: &str) -> Access {
    let (tmpl, _) = template(path);
    match method {
        "GET" | "HEAD" => Access::Ro,
        "POST" if read_paths().contains_key(&tmpl) => Access::Ro,
        _ => Access::Rw,
    }
}

/// Whether `rules` let a `method` request reach `path`.
pub fn allows(rules: &[Rule], method: &str, path: &str) -> bool {
    let want = needed(method, path);
    rules
        .iter()
        .any(|r| r.access >= want && covers(&r.prefix, path))
}

/// Whether `rules` let a command line run operation `name` in namespace `ns` with
/// `args`: as a request to the operation's own endpoint would be (see the module doc).
pub fn command_allowed(rules: &[Rule], name: &str, ns: &str, args: &Args) -> Result<(), String> {
    let refuse = |what: String| Err(format!("forbidden: {what}"));
    if name == "namespace" && args.string("name").is_some() {
        return if sees_namespace(rules, ns) {
            Ok(())
        } else {
            refuse(format!("namespace {ns}"))
        };
    }
    let Some((_, spec)) = by_name(name) else {
        return refuse(format!("unknown operation {name}"));
    };
    if spec.scope == Scope::Builtin {
        return if rules
            .iter()
            .any(|r| r.access == Access::Rw && covers(&r.prefix, SERVER_STATE))
        {
            Ok(())
        } else {
            refuse(format!("{name} changes the server for everyone"))
        };
    }
    let route = route_of(spec);
    let method = match route.verb {
        Verb::Post => "POST",
        Verb::Delete => "DELETE",
    };
    let path = route.path_in(ns);
    let ok = if writes_anyway(name, args) {
        rules
            .iter()
            .any(|r| r.access == Access::Rw && covers(&r.prefix, &path))
    } else {
        allows(rules, method, &path)
    };
    if ok {
        Ok(())
    } else {
        refuse(format!("{method} {path}"))
    }
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
        assert_eq!(needed("GET", "/ns/foo/vms"), Access::Ro);
        let info = "/api/v1/namespaces/foo/vm/info";
        assert_eq!(needed("POST", info), Access::Ro);
        assert_eq!(needed("POST", "/api/v1/namespaces/foo/vm/top"), Access::Ro);
        assert_eq!(needed("POST", "/api/v1/namespaces/foo/vlans"), Access::Ro);
        assert_eq!(needed("POST", "/api/v1/file/list"), Access::Ro);
        assert_eq!(
            needed("POST", "/api/v1/namespaces/foo/vm/screenshot"),
            Access::Ro,
            "the path is a read; the gate wants rw for the file form"
        );
        assert_eq!(
            needed("POST", "/api/v1/namespaces/foo/vm/start"),
            Access::Rw
        );
        assert_eq!(
            needed("DELETE", "/api/v1/namespaces/foo/vm/config"),
            Access::Rw
        );
        assert_eq!(
            needed("POST", "/api/v1/namespaces/foo/vm/launch"),
            Access::Rw
        );
    }

    fn strings(kv: &[(&str, &str)]) -> Args {
        let mut a = Args::default();
        for (k, v) in kv {
            a.strings.insert(k.to_string(), v.to_string());
        }
        a
    }

    #[test]
    fn a_command_line_may_do_what_the_endpoints_allow() {
        let foo = [rule("/api/v1/namespaces/foo/", Access::Rw)];
        let none = Args::default();
        assert!(is_command_endpoint("/api/v1/namespaces/bar/command"));
        assert!(open_to_signed_in("/api/v1/namespaces/bar/command"));
        assert_eq!(command_allowed(&foo, "vm_info", "foo", &none), Ok(()));
        assert_eq!(command_allowed(&foo, "vm_kill", "foo", &none), Ok(()));
        let e = command_allowed(&foo, "vm_kill", "bar", &none).unwrap_err();
        assert_eq!(e, "forbidden: POST /api/v1/namespaces/bar/vm/kill");
        let enter = |ns: &str| strings(&[("name", ns)]);
        assert_eq!(
            command_allowed(&foo, "namespace", "foo", &enter("foo")),
            Ok(())
        );
        assert!(command_allowed(&foo, "namespace", "bar", &enter("bar")).is_err());
        assert!(
            command_allowed(&foo, "namespace", "foo", &none).is_err(),
            "the list is global"
        );
        assert!(command_allowed(&foo, "shell", "foo", &none).is_err());
        assert!(command_allowed(&foo, "alias", "foo", &none).is_err());
        let ro = [rule("/api/v1/namespaces/foo/", Access::Ro)];
        assert_eq!(command_allowed(&ro, "vm_info", "foo", &none), Ok(()));
        let shot = strings(&[("vm", "vm0")]);
        assert_eq!(command_allowed(&ro, "vm_screenshot", "foo", &shot), Ok(()));
        let to_file = strings(&[("vm", "vm0"), ("filename", "/etc/x")]);
        assert!(command_allowed(&ro, "vm_screenshot", "foo", &to_file).is_err());
        assert_eq!(
            command_allowed(&foo, "vm_screenshot", "foo", &to_file),
            Ok(())
        );
        assert!(command_allowed(&ro, "vm_start", "foo", &none).is_err());
        let admin = [rule("/", Access::Rw)];
        assert_eq!(command_allowed(&admin, "alias", "x", &none), Ok(()));
        assert_eq!(command_allowed(&admin, "shell", "x", &none), Ok(()));
        let state = [rule(SERVER_STATE, Access::Rw)];
        assert_eq!(command_allowed(&state, "env", "x", &none), Ok(()));
        assert!(command_allowed(&state, "vm_info", "x", &none).is_err());
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
