//! Contract rows of `vnc`: kb recording needs only a KVM VM to exist (no connection is
//! made), so it runs here; playback, fb recording and injection need the VM's VNC socket,
//! which a host without a KVM runtime has not got — they give that error. The real
//! connections are tested against QEMU in `tests/tests/vnc.rs`.

use ferromega_tests::args;

use super::{case, err, strs, Case, Expect};

/// The rows.
pub(super) fn vnc_cases() -> Vec<Case> {
    let launched = &["vm launch kvm foo"][..];
    let recording = &["vm launch kvm foo", "vnc record kb foo k.kb"][..];
    let not_running = "vm foo is not running (ERROR)";
    vec![
        case(
            "vnc",
            Expect::Shape(strs(&["name", "type", "time", "filename"]), 1),
        )
        .setup(recording),
        case("vnc_record", Expect::Ok)
            .setup(launched)
            .args(
                args()
                    .b("record")
                    .b("kb")
                    .s("vm", "foo")
                    .s("filename", "rec/k.kb"),
            )
            .after(&[(
                ".columns name,type,filename vnc",
                "name | type      | filename\nfoo  | record kb | @FILES@/rec/k.kb",
            )])
            .after_has(&[("shell ls $files/rec", "k.kb")]),
        case("vnc_stop", Expect::Ok)
            .setup(recording)
            .args(args().b("stop").b("kb").s("vm", "foo"))
            .after(&[("vnc", "")]),
        case("vnc_play", err(409, not_running))
            .files(&[("p.kb", "1000:KeyEvent,true,a\n")])
            .setup(launched)
            .args(args().b("play").s("vm", "foo").s("filename", "p.kb")),
        case("vnc_pause", err(404, "kb playback foo not found"))
            .setup(launched)
            .args(args().b("pause").s("vm", "foo")),
        case("vnc_continue", err(404, "kb playback foo not found"))
            .setup(launched)
            .args(args().b("continue").s("vm", "foo")),
        case("vnc_step", err(404, "kb playback foo not found"))
            .setup(launched)
            .args(args().b("step").s("vm", "foo")),
        case("vnc_getstep", err(404, "kb playback foo not found"))
            .setup(launched)
            .args(args().b("getstep").s("vm", "foo")),
        case("vnc_inject", err(400, "invalid event specified"))
            .setup(launched)
            .args(
                args()
                    .b("inject")
                    .s("vm", "foo")
                    .s("cmd", "KeyEvent,maybe,a"),
            ),
        case("clear_vnc", Expect::Ok)
            .setup(recording)
            .after(&[("vnc", "")]),
    ]
}
