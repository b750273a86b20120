//! Contract rows of command and control (`cc …`, `clear cc`). The test app runs no VMs,
//! so no agent is connected: commands queue, and responses are files put in place.

use ferromega_tests::args;

use super::{case, strs, table, text, Case, Expect};

const COMMANDS: &[&str] = &[
    "id",
    "prefix",
    "command",
    "responses",
    "background",
    "sent",
    "received",
    "level",
    "filter",
];

/// The rows.
pub(super) fn cc_cases() -> Vec<Case> {
    vec![
        case("cc", table(&["clients"], &[&["0"]])),
        case(
            "cc_clients",
            Expect::Shape(strs(&["uuid", "hostname", "arch", "os", "ip", "mac"]), 0),
        ),
        case("cc_exec", Expect::Ok)
            .args(args().b("exec").l("command", &["hostname"]))
            .after_has(&[("cc commands", "[hostname]")]),
        case("cc_background", Expect::Ok)
            .args(args().b("background").l("command", &["sleep", "9"]))
            .after_has(&[("cc commands", "true")]),
        case("cc_commands", Expect::Shape(strs(COMMANDS), 1)).setup(&["cc exec hostname"]),
        case("cc_responses", text("1/u1/stdout:\nfoo"))
            .files(&[("miniccc_responses/1/u1/stdout", "foo\n")])
            .args(args().b("responses").s("id", "1")),
        case("cc_filter", Expect::Ok)
            .args(args().b("filter").l("filter", &["hostname=foo"]))
            .after_has(&[("cc filter", "foo")]),
        case("cc_prefix", Expect::Ok)
            .args(args().b("prefix").s("prefix", "p1"))
            .after(&[("cc prefix", "p1")]),
        case("cc_delete", Expect::Ok)
            .setup(&["cc exec hostname"])
            .args(args().b("delete").b("command").s("id", "all"))
            .after(&[("cc commands", "")]),
        case("clear_cc", Expect::Ok)
            .setup(&["cc prefix p1"])
            .after(&[("cc prefix", "")]),
    ]
}
