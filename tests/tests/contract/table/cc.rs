//! Contract rows of command and control (`cc …`, `clear cc`) and plumbing (`plumb`,
//! `pipe`). The test app runs no VMs,
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
        case("cc_send", Expect::Ok)
            .files(&[("x.txt", "abc")])
            .args(args().b("send").l("file", &["x.txt"]))
            .after_has(&[("cc commands", "[x.txt]")]),
        case("cc_recv", Expect::Ok)
            .args(args().b("recv").l("file", &["/etc/hostname"]))
            .after_has(&[("cc commands", "[/etc/hostname]")]),
        case(
            "cc_process_list",
            Expect::Shape(strs(&["name", "uuid", "pid", "command"]), 0),
        )
        .args(args().b("process").b("list").s("vm", "all")),
        case("cc_process_kill", Expect::Ok)
            .args(args().b("process").b("kill").s("pid", "all"))
            .after(&[(".columns id cc commands", "id\n1")]),
        case("cc_process_killall", Expect::Ok)
            .args(args().b("process").b("killall").s("name", "sleep"))
            .after(&[(".columns id cc commands", "id\n1")]),
        case("cc_log_level", Expect::Ok)
            .args(args().b("log").b("level").b("debug"))
            .after(&[(".columns level cc commands", "level\ndebug")]),
        case("cc_listen", Expect::Ok).args(args().b("listen").s("port", "39517")),
        case("cc_tunnel", Expect::Error(404, "no such client: u1".into())).args(
            args()
                .b("tunnel")
                .s("uuid", "u1")
                .s("src", "39518")
                .s("host", "127.0.0.1")
                .s("dst", "22"),
        ),
        case("cc_rtunnel", Expect::Ok).args(
            args()
                .b("rtunnel")
                .s("src", "8080")
                .s("host", "127.0.0.1")
                .s("dst", "80"),
        ),
        case("plumb", Expect::Ok)
            .args(args().s("src", "p1").l("dst", &["cat", "p2"]))
            .after(&[("plumb", "pipeline\np1 cat p2")]),
        case("clear_plumb", Expect::Ok)
            .setup(&["plumb p1 cat p2"])
            .after(&[("plumb", "")]),
        case("pipe", Expect::Ok)
            .args(args().s("pipe", "p1").s("data", "hello"))
            .after_has(&[("pipe", "hello")]),
        case("clear_pipe", Expect::Ok)
            .setup(&["pipe p1 hello"])
            .after(&[("pipe", "")]),
        case("clear_cc", Expect::Ok)
            .setup(&["cc prefix p1"])
            .after(&[("cc prefix", "")]),
    ]
}
