//! Where each operation lives over HTTP, derived from its first pattern: the path's words
//! are the command's words, `clear …` is DELETE, everything else POST with an `Args` body.

use crate::pattern::{self, Item};
use crate::HandlerSpec;

/// Operations that act on the server rather than a namespace; their paths sit at
/// `/api/v1/<words>`.
pub const GLOBAL: &[&str] = &[
    "help",
    "history",
    "clear_history",
    "write",
    "echo",
    "version",
    "shell",
    "background",
    "check",
    "debug",
    "quit",
    "clear_all",
    "namespace",
    "file_list",
    "file_get",
    "file_delete",
    "file_status",
    "disk_create",
    "disk_snapshot",
    "disk_info",
    "bridge",
    "bridge_trunk",
    "bridge_notrunk",
    "bridge_tunnel",
    "bridge_notunnel",
    "dnsmasq",
    "dnsmasq_start",
    "dnsmasq_kill",
    "dnsmasq_configure",
    "mesh_degree",
    "mesh_dial",
    "mesh_hangup",
    "mesh_list",
    "mesh_dot",
    "mesh_status",
    "mesh_timeout",
    "mesh_send",
];

/// The HTTP method of an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    /// Acts, creates or reads with arguments.
    Post,
    /// Clears (`clear …` commands).
    Delete,
}

/// Where an operation lives over HTTP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// POST, or DELETE for `clear …`.
    pub verb: Verb,
    /// Path template (`/api/v1/namespaces/{ns}/vm/config/memory`).
    pub path: String,
    /// Whether the path is outside namespaces (no `{ns}`).
    pub global: bool,
}

impl Route {
    /// The concrete path for namespace `ns`.
    pub fn path_in(&self, ns: &str) -> String {
        self.path.replace("{ns}", ns)
    }
}

/// The route of one operation.
pub fn route_of(spec: &HandlerSpec) -> Route {
    let first = spec
        .patterns
        .first()
        .map(String::as_str)
        .unwrap_or_default();
    let mut words: Vec<String> = Vec::new();
    if let Ok(p) = pattern::parse(first) {
        for item in p.items {
            match item {
                Item::Literal(w) => words.push(w),
                Item::Choice {
                    options,
                    optional: false,
                } if options.len() == 1 => words.push(options[0].clone()),
                _ => break,
            }
        }
    }
    let verb = if words.first().map(String::as_str) == Some("clear") {
        words.remove(0);
        Verb::Delete
    } else {
        Verb::Post
    };
    let global = GLOBAL.contains(&spec.name.as_str());
    let tail = words.join("/");
    let path = if global {
        format!("/api/v1/{tail}")
    } else {
        format!("/api/v1/namespaces/{{ns}}/{tail}")
    };
    Route { verb, path, global }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::{by_name, operations};

    fn route(name: &str) -> Route {
        route_of(by_name(name).unwrap().1)
    }

    #[test]
    fn vm_config_memory_is_a_namespaced_post() {
        let r = route("vm_config_memory");
        assert_eq!(r.path, "/api/v1/namespaces/{ns}/vm/config/memory");
        assert_eq!(r.verb, Verb::Post);
    }

    #[test]
    fn clear_commands_are_deletes_of_the_same_words() {
        let r = route("clear_vm_config");
        assert_eq!(
            (r.verb, r.path.as_str()),
            (Verb::Delete, "/api/v1/namespaces/{ns}/vm/config")
        );
    }

    #[test]
    fn sub_command_keywords_become_path_words() {
        assert_eq!(
            route("vlans_range").path,
            "/api/v1/namespaces/{ns}/vlans/range"
        );
        assert_eq!(route("file_list").path, "/api/v1/file/list");
    }

    #[test]
    fn every_operation_has_a_distinct_method_and_path() {
        let mut seen = std::collections::BTreeSet::new();
        for (_, spec) in operations() {
            let r = route_of(spec);
            assert!(
                seen.insert((r.verb == Verb::Delete, r.path.clone())),
                "{}",
                spec.name
            );
        }
    }
}
