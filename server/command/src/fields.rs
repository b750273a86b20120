//! The `vm config` field table: one row per field drives parsing, printing, help and the API.
//!
//! This is what minimega's vmconfiger generated in Go. The command handlers
//! `vm config <field>` and `clear vm config <field>` are derived from it (see
//! `handlers.rs`); the domain's `VmConfig` reads and writes fields by these names.

/// What kind of value a field holds, which decides its pattern and parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// A free string.
    Str,
    /// A path, resolved against the files directory when relative.
    Path,
    /// An unsigned integer (Go's uint64).
    Uint,
    /// A signed integer (Go's int64).
    Int,
    /// `true` or `false`.
    Bool,
    /// A list of strings, replaced as a whole.
    List,
    /// A list of paths, each resolved against the files directory.
    PathList,
    /// A string → string map set one key at a time (`tags`, `volume`).
    Map,
    /// Network interface specs (`vm config net`).
    Net,
    /// QEMU command-line overrides (`vm config qemu-override`).
    Override,
}

/// Which VM types a field applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    /// Both KVM and containers.
    Base,
    /// KVM only.
    Kvm,
    /// Containers only.
    Container,
}

/// One `vm config` field.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The CLI word (`memory`, `qemu-append`, `net`).
    pub name: &'static str,
    /// The key `clear vm config <key>` uses (`networks` for `net`).
    pub clear_key: &'static str,
    /// Value kind.
    pub kind: FieldKind,
    /// Which VM types it applies to.
    pub section: Section,
    /// The default value as printed (`2048`, `true`, `[/init]`, ``).
    pub default: &'static str,
    /// One-line help.
    pub help: &'static str,
}

const fn f(
    name: &'static str,
    clear_key: &'static str,
    kind: FieldKind,
    section: Section,
    default: &'static str,
    help: &'static str,
) -> Field {
    Field {
        name,
        clear_key,
        kind,
        section,
        default,
        help,
    }
}

use FieldKind::*;
use Section::*;

/// Every `vm config` field of minimega 2.4, in help order.
pub const FIELDS: &[Field] = &[
    f(
        "append",
        "append",
        List,
        Kvm,
        "",
        "kernel command line arguments for -kernel",
    ),
    f(
        "backchannel",
        "backchannel",
        Bool,
        Base,
        "true",
        "enable the cc backchannel (virtio-serial port or unix socket)",
    ),
    f(
        "cdrom",
        "cdrom",
        Path,
        Kvm,
        "",
        "path to an ISO attached as a CD-ROM",
    ),
    f(
        "coschedule",
        "coschedule",
        Int,
        Base,
        "-1",
        "maximum number of other VMs on the same host (-1 is unlimited)",
    ),
    f("cpu", "cpu", Str, Kvm, "host", "QEMU CPU model (-cpu)"),
    f(
        "disk",
        "disk",
        PathList,
        Kvm,
        "",
        "disk images attached to the VM, replacing the list",
    ),
    f(
        "fifos",
        "fifos",
        Uint,
        Container,
        "0",
        "number of named pipes to create in the container",
    ),
    f(
        "filesystem",
        "filesystem",
        Path,
        Container,
        "",
        "root filesystem of a container",
    ),
    f(
        "hostname",
        "hostname",
        Str,
        Container,
        "",
        "container hostname (defaults to the VM name)",
    ),
    f(
        "init",
        "init",
        List,
        Container,
        "/init",
        "program and arguments run as the container's PID 1",
    ),
    f("initrd", "initrd", Path, Kvm, "", "initrd for -kernel"),
    f(
        "kernel",
        "kernel",
        Path,
        Kvm,
        "",
        "kernel image booted directly by QEMU",
    ),
    f(
        "memory",
        "memory",
        Uint,
        Base,
        "2048",
        "memory in megabytes",
    ),
    f(
        "migrate",
        "migrate",
        Path,
        Kvm,
        "",
        "saved VM state to resume from",
    ),
    f(
        "net",
        "networks",
        Net,
        Base,
        "",
        "network interfaces as [bridge,]vlan[,mac][,driver] specs",
    ),
    f(
        "preinit",
        "preinit",
        Str,
        Container,
        "",
        "program run by the container shim before init",
    ),
    f(
        "qemu",
        "qemu",
        Path,
        Kvm,
        "",
        "QEMU binary (default kvm or qemu-system-x86_64 from PATH)",
    ),
    f(
        "qemu-append",
        "qemu-append",
        List,
        Kvm,
        "",
        "arguments appended verbatim to the QEMU command line",
    ),
    f(
        "qemu-override",
        "qemu-override",
        Override,
        Kvm,
        "",
        "textual substitutions applied to the QEMU command line",
    ),
    f(
        "schedule",
        "schedule",
        Str,
        Base,
        "",
        "host the scheduler must place the VM on",
    ),
    f(
        "serial-ports",
        "serial-ports",
        Uint,
        Kvm,
        "0",
        "number of ISA serial ports",
    ),
    f(
        "snapshot",
        "snapshot",
        Bool,
        Base,
        "true",
        "discard disk (or container filesystem) writes when the VM exits",
    ),
    f(
        "tags",
        "tags",
        Map,
        Base,
        "",
        "tags applied to the VM at launch",
    ),
    f(
        "uuid",
        "uuid",
        Str,
        Base,
        "",
        "UUID of the VM (random when empty)",
    ),
    f("vcpus", "vcpus", Uint, Base, "1", "number of virtual CPUs"),
    f(
        "virtio-ports",
        "virtio-ports",
        Uint,
        Kvm,
        "0",
        "number of extra virtio-serial ports",
    ),
    f(
        "volume",
        "volume",
        Map,
        Container,
        "",
        "host directories mounted into a container",
    ),
];

/// The field called `name` (the CLI word), if any.
pub fn field(name: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.name == name)
}

/// The field whose clear key is `key` (`networks` → `net`), if any.
pub fn field_by_clear_key(key: &str) -> Option<&'static Field> {
    FIELDS.iter().find(|f| f.clear_key == key)
}
