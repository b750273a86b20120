//! Contract rows of the `vm config <field>` operations: a value to set and how
//! `vm config <field>` prints it back.

use ferromega_tests::{args, ArgsBuilder, TEST_HOST};

use super::{case, Case, Expect};

/// `vm config <field>`: a value to set and how `vm config <field>` prints it back.
pub(super) fn field_cases() -> Vec<Case> {
    let set = |op: &'static str, a: ArgsBuilder, line, want| {
        case(op, Expect::Ok).args(a).after(&[(line, want)])
    };
    let v = |value: &str| args().s("value", value);
    let l = |values: &[&str]| args().l("value", values);
    vec![
        set(
            "vm_config_append",
            l(&["console=ttyS0", "quiet"]),
            "vm config append",
            "[console=ttyS0 quiet]",
        ),
        set(
            "vm_config_backchannel",
            args().b("false"),
            "vm config backchannel",
            "false",
        ),
        set(
            "vm_config_cdrom",
            v("cd.iso"),
            "vm config cdrom",
            "@FILES@/cd.iso",
        ),
        set("vm_config_coschedule", v("3"), "vm config coschedule", "3"),
        set("vm_config_cpu", v("qemu64"), "vm config cpu", "qemu64"),
        set(
            "vm_config_disk",
            l(&["a.qcow2", "/images/b.qcow2"]),
            "vm config disk",
            "[@FILES@/a.qcow2 /images/b.qcow2]",
        ),
        set("vm_config_fifos", v("2"), "vm config fifos", "2"),
        set(
            "vm_config_filesystem",
            v("/srv/fs"),
            "vm config filesystem",
            "/srv/fs",
        ),
        set(
            "vm_config_hostname",
            v("web1"),
            "vm config hostname",
            "web1",
        ),
        set(
            "vm_config_init",
            l(&["/sbin/init", "--verbose"]),
            "vm config init",
            "[/sbin/init --verbose]",
        ),
        set(
            "vm_config_initrd",
            v("initrd.img"),
            "vm config initrd",
            "@FILES@/initrd.img",
        ),
        set(
            "vm_config_kernel",
            v("/boot/vmlinuz"),
            "vm config kernel",
            "/boot/vmlinuz",
        ),
        set("vm_config_memory", v("4096"), "vm config memory", "4096"),
        set(
            "vm_config_migrate",
            v("state.bin"),
            "vm config migrate",
            "@FILES@/state.bin",
        ),
        set(
            "vm_config_net",
            args().l("netspec", &["100", "br0,200,00:11:22:33:44:55"]),
            "vm config net",
            "[mega_bridge,100 br0,200,00:11:22:33:44:55]",
        ),
        set(
            "vm_config_preinit",
            v("/preinit"),
            "vm config preinit",
            "/preinit",
        ),
        // `qemu` is path-resolved too (reference §2.4).
        set(
            "vm_config_qemu",
            v("qemu-system-x86_64"),
            "vm config qemu",
            "@FILES@/qemu-system-x86_64",
        ),
        set(
            "vm_config_qemu_append",
            l(&["-nographic"]),
            "vm config qemu-append",
            "[-nographic]",
        ),
        case("vm_config_qemu_override", Expect::Ok)
            .args(args().s("match", "-m 2048").s("replacement", "-m 4096"))
            .after_has(&[("vm config qemu-override", "0\t\"-m 2048\"\t\"-m 4096\"")]),
        set(
            "vm_config_schedule",
            v(TEST_HOST),
            "vm config schedule",
            TEST_HOST,
        ),
        set(
            "vm_config_serial_ports",
            v("2"),
            "vm config serial-ports",
            "2",
        ),
        set(
            "vm_config_snapshot",
            args().b("false"),
            "vm config snapshot",
            "false",
        ),
        set(
            "vm_config_tags",
            args().s("key", "color").s("value", "red"),
            "vm config tags",
            "color -> red",
        ),
        set(
            "vm_config_uuid",
            v("0a0b0c0d-0000-4000-8000-000000000001"),
            "vm config uuid",
            "0a0b0c0d-0000-4000-8000-000000000001",
        ),
        set("vm_config_vcpus", v("4"), "vm config vcpus", "4"),
        set(
            "vm_config_virtio_ports",
            v("3"),
            "vm config virtio-ports",
            "3",
        ),
        set(
            "vm_config_volume",
            args().s("key", "/data").s("value", "/scratch"),
            "vm config volume",
            "/data -> /scratch",
        ),
    ]
}
