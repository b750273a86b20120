//! Spec sync: the committed `openapi/openapi.json` is what the code generates, its
//! operations are exactly the command handlers (plus `command`, `suggest` and the live
//! endpoints `events`, `console`, `console_ws`, `graphs`, and the files directory's
//! `file_download` and `file_upload`, and `pipe_read`), and each
//! sits at the route the handler table gives it.

use std::collections::BTreeSet;

use ferromega_command::handlers::operations;
use ferromega_command::routes::{route_of, Verb};
use ferromega_tests::workspace_root;
use serde_json::Value;

/// Operations of the spec that are not command handlers.
const LIVE_AND_COMMAND: [&str; 9] = [
    "command",
    "suggest",
    "events",
    "console",
    "console_ws",
    "graphs",
    "file_download",
    "file_upload",
    "pipe_read",
];

const REGENERATE: &str = "cargo run -p ferromega-daemon -- openapi > openapi/openapi.json";

fn committed() -> Value {
    let path = workspace_root().join("openapi/openapi.json");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}; run `{REGENERATE}`", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{} is not JSON: {e}; run `{REGENERATE}`", path.display()))
}

/// (method, path, operationId) of every operation in a spec.
fn spec_operations(spec: &Value) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let paths = spec["paths"].as_object().expect("the spec has paths");
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for (method, op) in item {
            if let Some(id) = op.get("operationId").and_then(Value::as_str) {
                out.push((method.clone(), path.clone(), id.to_string()));
            }
        }
    }
    out
}

/// Paths (JSON pointers) where two documents differ, for a readable failure.
fn differences(a: &Value, b: &Value, at: &str, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let here = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                match (x.get(k), y.get(k)) {
                    (Some(v), Some(w)) => differences(v, w, &here, out),
                    (Some(_), None) => out.push(format!("{here}: only in the committed file")),
                    (None, Some(_)) => out.push(format!("{here}: only in the generated spec")),
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (v, w)) in x.iter().zip(y).enumerate() {
                differences(v, w, &format!("{at}/{i}"), out);
            }
        }
        _ if a != b => out.push(format!("{at}: differs")),
        _ => {}
    }
}

#[test]
fn openapi_json_is_up_to_date() {
    let committed = committed();
    let generated = ferromega_http::spec::openapi_json();
    if committed != generated {
        let mut diffs = Vec::new();
        differences(&committed, &generated, "", &mut diffs);
        diffs.truncate(20);
        panic!(
            "openapi/openapi.json is stale; regenerate it with `{REGENERATE}`.\n\
             First differences:\n  {}",
            diffs.join("\n  ")
        );
    }
}

#[test]
fn openapi_operations_are_the_handlers_plus_command_and_suggest() {
    let in_spec: BTreeSet<String> = spec_operations(&committed())
        .into_iter()
        .map(|(_, _, id)| id)
        .collect();
    let mut handlers: BTreeSet<String> = operations().map(|(_, h)| h.name.clone()).collect();
    // Endpoints that are not command handlers: the command line, completion, and the
    // live endpoints (events WebSocket, console ticket, console WebSocket).
    for extra in LIVE_AND_COMMAND {
        handlers.insert(extra.to_string());
    }
    let missing_in_spec: Vec<&String> = handlers.difference(&in_spec).collect();
    let missing_handlers: Vec<&String> = in_spec.difference(&handlers).collect();
    assert!(
        missing_in_spec.is_empty() && missing_handlers.is_empty(),
        "handlers without an operation in openapi/openapi.json: {missing_in_spec:?}\n\
         operations in openapi/openapi.json without a handler: {missing_handlers:?}\n\
         (regenerate the spec with `{REGENERATE}`)"
    );
}

#[test]
fn operation_ids_are_unique_in_the_spec() {
    let ops = spec_operations(&committed());
    let mut seen = BTreeSet::new();
    for (_, _, id) in &ops {
        assert!(seen.insert(id.clone()), "operationId {id} appears twice");
    }
}

#[test]
fn every_operation_sits_at_its_route() {
    let ops = spec_operations(&committed());
    let mut wrong = Vec::new();
    for (_, spec) in operations() {
        let route = route_of(spec);
        let method = match route.verb {
            Verb::Post => "post",
            Verb::Delete => "delete",
        };
        let found: Vec<&(String, String, String)> =
            ops.iter().filter(|(_, _, id)| *id == spec.name).collect();
        let at = (method.to_string(), route.path.clone());
        if found.len() != 1 || (found[0].0.clone(), found[0].1.clone()) != at {
            wrong.push(format!(
                "{}: route says {} {}, spec has {:?}",
                spec.name,
                method.to_uppercase(),
                route.path,
                found
                    .iter()
                    .map(|(m, p, _)| format!("{} {p}", m.to_uppercase()))
                    .collect::<Vec<_>>()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn command_suggest_and_live_endpoints_sit_at_their_paths() {
    let ops = spec_operations(&committed());
    let find = |id: &str| {
        ops.iter()
            .find(|(_, _, i)| i == id)
            .map(|(m, p, _)| (m.as_str(), p.as_str()))
    };
    assert_eq!(
        find("command"),
        Some(("post", "/api/v1/namespaces/{ns}/command"))
    );
    assert_eq!(find("suggest"), Some(("get", "/api/v1/suggest")));
    assert_eq!(find("events"), Some(("get", "/api/v1/events")));
    assert_eq!(
        find("console"),
        Some(("post", "/api/v1/namespaces/{ns}/vms/{name}/console"))
    );
    assert_eq!(find("console_ws"), Some(("get", "/api/v1/console/ws")));
}

#[test]
fn namespaced_operations_declare_the_ns_parameter() {
    let spec = committed();
    for (_, h) in operations() {
        let route = route_of(h);
        let method = if route.verb == Verb::Delete {
            "delete"
        } else {
            "post"
        };
        let params = spec["paths"][&route.path][method]["parameters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let has_ns = params
            .iter()
            .any(|p| p["name"] == "ns" && p["in"] == "path" && p["required"] == true);
        assert_eq!(
            has_ns, !route.global,
            "{}: ns path parameter present={has_ns}, route global={}",
            h.name, route.global
        );
    }
}

#[tokio::test]
async fn the_server_serves_the_committed_spec() {
    let app = ferromega_tests::TestApp::spawn().await;
    let served = app.client.openapi().await.expect("GET /openapi.json");
    assert!(
        served == committed(),
        "/openapi.json differs from openapi/openapi.json; regenerate it with `{REGENERATE}`"
    );
}
