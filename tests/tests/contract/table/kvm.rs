//! Contract rows of the operations that need a KVM runtime (devices, QMP, screenshots,
//! disks) and of the host figures. The test app has no KVM runtime, so these check the
//! honest answer of such a host: `no kvm runtime on this host`, a 500.

use ferromega_tests::args;

use super::{case, err, strs, Case, Expect};

const NO_KVM: &str = "no kvm runtime on this host";

fn check_host(o: &crate::Outcome) -> Result<(), String> {
    let r = o.as_ref().map_err(|e| format!("{e:?}"))?;
    let [t] = r.as_slice() else {
        return Err(format!("want one response, got {r:?}"));
    };
    let header = strs(&[
        "cpus",
        "load",
        "memused",
        "memtotal",
        "rx",
        "tx",
        "vms",
        "vmlimit",
        "cpucommit",
        "memcommit",
        "netcommit",
        "uptime",
    ]);
    if t.header != header || t.tabular.len() != 1 {
        return Err(format!("header {:?}, rows {:?}", t.header, t.tabular));
    }
    let row = &t.tabular[0];
    let cpus: u32 = row[0].parse().map_err(|_| format!("cpus {:?}", row[0]))?;
    if cpus == 0 || row[6] != "0" || row[7] != "-1" {
        return Err(format!("row {row:?}: want cpus > 0, vms 0, vmlimit -1"));
    }
    Ok(())
}

/// The rows.
pub(super) fn kvm_cases() -> Vec<Case> {
    let launched = &["vm launch kvm foo"][..];
    vec![
        case("host", Expect::Custom(check_host)),
        case(
            "vm_top",
            Expect::Shape(
                strs(&[
                    "name", "virt", "res", "shr", "cpu", "vcpu", "time", "procs", "rx", "tx",
                ]),
                0,
            ),
        )
        .args(args().s("duration", "0")),
        case(
            "vm_hotplug",
            Expect::Shape(strs(&["name", "id", "file", "version"]), 0),
        ),
        case("vm_hotplug_add", err(500, NO_KVM))
            .files(&[("usb.img", "x")])
            .setup(launched)
            .args(
                args()
                    .b("add")
                    .s("vm", "foo")
                    .s("filename", "@FILES@/usb.img"),
            ),
        case("vm_hotplug_remove", err(500, NO_KVM))
            .setup(launched)
            .args(args().b("remove").s("vm", "foo").s("disk", "all")),
        case("vm_migrate", err(500, NO_KVM))
            .setup(launched)
            .args(args().s("vm", "foo").s("filename", "state.bin")),
        case("vm_qmp", err(500, NO_KVM)).setup(launched).args(
            args()
                .s("vm", "foo")
                .s("qmp", "{\"execute\":\"query-status\"}"),
        ),
        case("vm_screenshot", err(409, "vm not running: 0"))
            .setup(launched)
            .args(args().s("vm", "foo")),
        case("vm_cdrom_eject", err(500, NO_KVM))
            .setup(launched)
            .args(args().b("eject").s("vm", "foo")),
        case("vm_cdrom_change", err(500, NO_KVM))
            .files(&[("cd.iso", "x")])
            .setup(launched)
            .args(
                args()
                    .b("change")
                    .s("vm", "foo")
                    .s("path", "@FILES@/cd.iso"),
            ),
        case("disk_create", err(500, NO_KVM)).args(
            args()
                .b("create")
                .b("qcow2")
                .s("image", "d.qcow2")
                .s("size", "1M"),
        ),
        case("disk_snapshot", err(500, NO_KVM))
            .files(&[("base.qcow2", "x")])
            .args(
                args()
                    .b("snapshot")
                    .s("image", "base.qcow2")
                    .s("dst", "snap.qcow2"),
            ),
        case("disk_info", err(500, NO_KVM))
            .files(&[("base.qcow2", "x")])
            .args(args().b("info").s("image", "base.qcow2")),
    ]
}
