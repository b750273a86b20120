//! Contract rows of the mesh operations. The test app has no cluster secret, so the
//! mesh is off: it is this host alone, dialing is refused with the flag that turns it
//! on, and settings (degree, timeout) still read back. Several hosts are tested for
//! real in `mesh_host.rs`.

use ferromega_tests::{args, TEST_HOST};

use super::{case, err, table, text, Case, Expect};

const MESH_OFF: &str = "mesh disabled: start the server with --cluster-secret-file";

/// The rows.
pub(super) fn mesh_cases() -> Vec<Case> {
    vec![
        case("mesh_degree", Expect::Ok)
            .args(args().s("degree", "3"))
            .after(&[("mesh degree", "3")]),
        case("mesh_dial", err(400, MESH_OFF)).args(args().s("hostname", "10.9.9.9")),
        case("mesh_hangup", err(400, MESH_OFF)).args(args().s("hostname", "nobody")),
        case("mesh_list", text(TEST_HOST)),
        case("mesh_dot", Expect::Ok)
            .args(args().s("filename", "@FILES@/mesh.dot"))
            .after(&[(
                "shell cat $files/mesh.dot",
                "graph \"testhost\" {\nsize=\"8,11\";\n\
                 Legend [shape=plaintext, label=\"total=1\"];\n\
                 \"testhost\" [style=filled, color=red];\n}",
            )]),
        case(
            "mesh_status",
            table(
                &["size", "degree", "peers", "context", "port"],
                &[&["1", "0", "0", "", ""]],
            ),
        ),
        case("mesh_timeout", Expect::Ok)
            .args(args().s("timeout", "5"))
            .after(&[("mesh timeout", "5")]),
        case("mesh_send", err(400, "unknown host: `nobody`"))
            .args(args().s("clients", "nobody").subcommand("echo hi")),
    ]
}
