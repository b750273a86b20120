//! host-qemu: a KVM VM's QEMU command line, built from its launch snapshot — pure, no I/O.
//!
//! The order is minimega 2.4's (reference §4.2), so `vm config qemu-override`
//! patterns written for minimega keep matching. What changed, and why:
//!
//! | minimega 2.4 | here | why |
//! | --- | --- | --- |
//! | `-balloon none` | dropped | removed from QEMU (minimega dropped it in 2.5) |
//! | chardevs `…,server,nowait` | `…,server=on,wait=off` | short-form booleans print deprecation warnings since QEMU 6 |
//! | `-qmp unix:<inst>/qmp,server` | `…,server=on,wait=off` | QEMU does not stop at startup until the server dials it; the server retries the dial |
//! | (the `kvm` wrapper enabled KVM) | `-accel kvm` or `-accel tcg,tb-size=32` before `-cpu` | we run `qemu-system-x86_64`; TCG where KVM cannot boot guests; `tb-size=32` cuts ~40 MiB per guest |
//! | `-cpu host` | `-cpu max` under TCG | `host` only exists with KVM |
//! | `-drive media=cdrom` (legacy, unnamed device) | `-drive if=none,id=ide0-cd0,media=cdrom[,file=…]` + `-device ide-cd,drive=ide0-cd0,id=ide0-cd0,bus=ide.1,unit=1` | the drive and the device are both named `ide0-cd0`, so QMP `eject`/`blockdev-change-medium` work with `device` or `id`; an explicit `ide-cd` also suppresses QEMU's default extra CD drive. `ide.1` unit 1 leaves ide.0 master/slave and ide.1 master to `-drive` disks: three IDE disks, as in 2.4 |
//! | `-netdev tap,id=T,script=no,ifname=T` | `…,downscript=no` | otherwise QEMU runs `/etc/qemu-ifdown` on exit, which would detach the tap that the server keeps for a relaunch |
//! | `mac=<mac>` always | only when a MAC is set | an empty `mac=` is rejected by QEMU |
//! | `-mem-info <path>` | `-mem-path <path>` | 2.4's typo: QEMU has no `-mem-info` |
//! | `-incoming "exec:cat <path>"` | the path shell-quoted when it has characters outside `[A-Za-z0-9/._+=:@%,-]` | QEMU runs `exec:` URIs with `/bin/sh -c` |
//! | values put in QEMU option strings verbatim | `,` doubled in `file=`, `path=` and `unix:` values | QEMU's option syntax splits on single commas |
//!
//! `-k en-us` is kept: QEMU 7.2 still accepts it with a unix-socket VNC display
//! and uses it for VNC clients that send keysyms rather than raw keycodes.

use std::path::Path;

use ferromega_domain::vm::registry::Vm;

/// PCI addresses on a bridge: address 0 is reserved, so devices take 1..=31.
const DEV_PER_BUS: u32 = 32;
/// Ports per virtio-serial controller (2.4's `DEV_PER_VIRTIO`).
const PORTS_PER_CONTROLLER: u64 = 30;
/// Stands in for an argument's own double quotes during the override round trip,
/// so that only the quotes the join adds group words (a private-use character).
const QUOTE_STANDIN: &str = "\u{E000}";
/// NIC model used when a NIC names none (minimega's default).
const DEFAULT_DRIVER: &str = "e1000";

/// The block-backend name and qdev id of the always-present CD drive; QMP
/// `eject` and `blockdev-change-medium` address it by this name.
pub const CDROM_ID: &str = "ide0-cd0";

/// The accelerator QEMU runs the guest with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    /// Hardware virtualisation (`-accel kvm`); the default on real hosts.
    Kvm,
    /// Software emulation (`-accel tcg,tb-size=32`), for hosts whose KVM cannot boot a guest.
    Tcg,
}

impl Accel {
    /// The value of QEMU's `-accel` option.
    fn option(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            // A 32 MiB translation cache instead of the default (up to 1 GiB)
            // keeps a TCG guest near 185 MiB resident.
            Accel::Tcg => "tcg,tb-size=32",
        }
    }
}

/// Everything the command line depends on besides the VM itself.
#[derive(Debug, Clone, Copy)]
pub struct ArgvInput<'a> {
    /// The VM: its id, uuid and launch-time config.
    pub vm: &'a Vm,
    /// `<base>/<id>`: where the QMP, VNC, serial and cc sockets and the pid file live.
    pub instance_dir: &'a Path,
    /// The accelerator.
    pub accel: Accel,
    /// `taps[i]` is the tap of NIC `i`; NICs past the end of the list are left out.
    pub taps: &'a [String],
    /// A hugetlbfs mount to back guest memory with (`optimize hugepages`).
    pub hugepages: Option<&'a Path>,
    /// Turn checksum offload off on virtio-net NICs (`csum=off,guest_csum=off`): Open
    /// vSwitch's userspace datapath forwards partial checksums unfixed, so TCP between
    /// guests fails with them on.
    pub nic_csum_off: bool,
}

/// The QEMU arguments (without the program name) that launch `input.vm` paused.
///
/// Apply [`apply_overrides`] with the VM's `qemu_override` list to get what is run.
pub fn build(input: &ArgvInput) -> Vec<String> {
    build_as(input, input.vm.id)
}

/// `vm config qemu-override`'s "Before overrides" and "After overrides" command
/// lines: built with VM id 0, an empty instance directory (so sockets appear as
/// bare `vnc`, `qmp`, `cc`) and empty tap names, as minimega prints them.
pub fn preview(vm: &Vm, accel: Accel) -> (Vec<String>, Vec<String>) {
    let taps = vec![String::new(); vm.config.networks.len()];
    let input = ArgvInput {
        vm,
        instance_dir: Path::new(""),
        accel,
        taps: &taps,
        hugepages: None,
        nic_csum_off: false,
    };
    let before = build_as(&input, 0);
    let after = apply_overrides(&before, &vm.config.qemu_override);
    (before, after)
}

/// Applies `vm config qemu-override` substitutions the way minimega does: the
/// argv is joined into one string (elements containing whitespace wrapped in
/// double quotes), every occurrence of each match is replaced, in order, and the
/// string is split back on whitespace, double quotes grouping words.
///
/// As in 2.4, runs of whitespace inside an argument collapse to one space.
/// Three deliberate differences, each where 2.4 produced a broken command line:
/// with no overrides the argv is returned unchanged; double quotes inside an
/// argument survive (2.4 re-split them, so `-append` with `"ip=1 gw=2"` became
/// two arguments and QEMU took the second for a disk image); an unterminated
/// quote keeps its words as one last argument instead of dropping them.
pub fn apply_overrides(argv: &[String], overrides: &[(String, String)]) -> Vec<String> {
    if overrides.is_empty() {
        return argv.to_vec();
    }
    let shielded: Vec<String> = argv.iter().map(|a| a.replace('"', QUOTE_STANDIN)).collect();
    let mut line = join_quoted(&shielded);
    for (pattern, replacement) in overrides {
        line = line.replace(pattern.as_str(), replacement);
    }
    split_quoted(&line)
        .into_iter()
        .map(|a| a.replace(QUOTE_STANDIN, "\""))
        .collect()
}

/// Joins words with single spaces, wrapping each word that contains whitespace
/// in double quotes (minimega's `unescapeString`, without its leading space).
/// This is also how `-append` turns the `append` list into one argument.
pub fn join_quoted(words: &[String]) -> String {
    let quoted: Vec<String> = words
        .iter()
        .map(|w| {
            if w.chars().any(char::is_whitespace) {
                format!("\"{w}\"")
            } else {
                w.clone()
            }
        })
        .collect();
    quoted.join(" ")
}

/// Splits on whitespace, grouping the words between double quotes into one
/// (minimega's `fieldsQuoteEscape`): a word containing a quote opens a group
/// unless it also ends with one; the next word containing a quote closes it.
/// Quote characters are removed.
fn split_quoted(line: &str) -> Vec<String> {
    let unquote = |w: &str| w.replace('"', "");
    let mut out = Vec::new();
    let mut group: Option<String> = None;
    for word in line.split_whitespace() {
        match group.take() {
            Some(mut g) => {
                g.push(' ');
                g.push_str(&unquote(word));
                if word.contains('"') {
                    out.push(g);
                } else {
                    group = Some(g);
                }
            }
            None if word.contains('"') => {
                if word.ends_with('"') {
                    out.push(unquote(word));
                } else {
                    group = Some(unquote(word));
                }
            }
            None => out.push(word.to_string()),
        }
    }
    out.extend(group);
    out
}

/// The argv under construction.
#[derive(Default)]
struct Argv(Vec<String>);

impl Argv {
    fn flag(&mut self, flag: &str) {
        self.0.push(flag.to_string());
    }

    fn opt(&mut self, flag: &str, value: impl Into<String>) {
        self.0.push(flag.to_string());
        self.0.push(value.into());
    }
}

/// Hands out PCI slots on `pci-bridge` buses, adding a bridge when one fills up
/// (2.4's `addBus`: a new bridge is emitted as soon as the last slot is taken).
struct Pci {
    bus: u32,
    addr: u32,
}

impl Pci {
    fn new(argv: &mut Argv) -> Self {
        let mut pci = Pci { bus: 0, addr: 0 };
        pci.add_bus(argv);
        pci
    }

    fn add_bus(&mut self, argv: &mut Argv) {
        self.bus += 1;
        self.addr = 1;
        let b = self.bus;
        argv.opt("-device", format!("pci-bridge,id=pci.{b},chassis_nr={b}"));
    }

    /// Emits `-device <device>,bus=pci.N,addr=0xA` in the next slot.
    fn place(&mut self, argv: &mut Argv, device: &str) {
        argv.opt(
            "-device",
            format!("{device},bus=pci.{},addr={:#x}", self.bus, self.addr),
        );
        self.addr += 1;
        if self.addr == DEV_PER_BUS {
            self.add_bus(argv);
        }
    }
}

/// Doubles commas so a value survives QEMU's `key=value,…` option syntax.
fn opt_escape(value: &str) -> String {
    value.replace(',', ",,")
}

/// `word` as one `/bin/sh` word: unchanged when it has only safe characters
/// (so ordinary paths read as in minimega), else single-quoted.
/// `word` quoted for /bin/sh only when it needs to be (QEMU runs `exec:` URIs through a shell).
pub fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "/._+=:@%,-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn build_as(input: &ArgvInput, id: u64) -> Vec<String> {
    let cfg = &input.vm.config;
    let path = |name: &str| input.instance_dir.join(name).to_string_lossy().into_owned();
    let mut a = Argv::default();

    // The VM id, as minimega does: `query-name` and `ps` show the id that
    // `vm info` lists. (`-name guest=<id>` is the same option spelled in full;
    // the short form keeps 2.4's override patterns such as "-name 0" working.)
    a.opt("-name", id.to_string());
    a.opt("-m", cfg.memory.to_string());
    a.flag("-nographic");
    a.opt("-vnc", format!("unix:{}", opt_escape(&path("vnc"))));
    a.opt("-smp", cfg.vcpus.to_string());
    a.opt(
        "-qmp",
        format!("unix:{},server=on,wait=off", opt_escape(&path("qmp"))),
    );
    a.opt("-vga", "std");
    a.opt("-rtc", "clock=vm,base=utc");
    // USB 1.1 bus `usb-bus.0` (hotplug 1.1 and the tablet), USB 2.0 bus `ehci.0`.
    a.flag("-usb");
    a.opt("-device", "usb-ehci,id=ehci");
    // Absolute pointer, so VNC mouse positions match the guest's.
    a.opt("-device", "usb-tablet,bus=usb-bus.0");

    for i in 0..cfg.serial_ports {
        let sock = opt_escape(&path(&format!("serial{i}")));
        a.opt(
            "-chardev",
            format!("socket,id=charserial{i},path={sock},server=on,wait=off"),
        );
        a.opt(
            "-device",
            format!("isa-serial,chardev=charserial{i},id=serial{i}"),
        );
    }

    a.opt("-pidfile", path("qemu.pid"));
    a.opt("-k", "en-us");
    a.opt("-accel", input.accel.option());
    if !cfg.cpu.is_empty() {
        let cpu = match (input.accel, cfg.cpu.as_str()) {
            (Accel::Tcg, "host") => "max",
            (_, cpu) => cpu,
        };
        a.opt("-cpu", cpu);
    }
    a.opt("-net", "none");
    // CPUs stopped until `vm start` (BUILDING).
    a.flag("-S");

    if !cfg.migrate.is_empty() {
        a.opt(
            "-incoming",
            format!("exec:cat {}", shell_word(&cfg.migrate)),
        );
    }

    // The CD drive comes first and always exists, so `vm cdrom` works on every VM.
    let mut cd = format!("if=none,id={CDROM_ID},media=cdrom");
    if !cfg.cdrom.is_empty() {
        cd.push_str(&format!(",file={}", opt_escape(&cfg.cdrom)));
    }
    a.opt("-drive", cd);
    a.opt(
        "-device",
        format!("ide-cd,drive={CDROM_ID},id={CDROM_ID},bus=ide.1,unit=1"),
    );
    if !cfg.cdrom.is_empty() {
        a.opt("-boot", "once=d");
    }

    for disk in &cfg.disk {
        a.opt("-drive", format!("file={},media=disk", opt_escape(disk)));
    }
    if cfg.snapshot {
        a.flag("-snapshot");
    }

    if !cfg.kernel.is_empty() {
        a.opt("-kernel", cfg.kernel.clone());
    }
    if !cfg.initrd.is_empty() {
        a.opt("-initrd", cfg.initrd.clone());
    }
    if !cfg.append.is_empty() {
        a.opt("-append", join_quoted(&cfg.append));
    }

    let mut pci = Pci::new(&mut a);
    for (nic, tap) in cfg.networks.iter().zip(input.taps) {
        a.opt(
            "-netdev",
            format!("tap,id={tap},script=no,ifname={tap},downscript=no"),
        );
        let driver = if nic.driver.is_empty() {
            DEFAULT_DRIVER
        } else {
            nic.driver.as_str()
        };
        let mut dev = format!("driver={driver},netdev={tap}");
        if !nic.mac.is_empty() {
            dev.push_str(&format!(",mac={}", nic.mac));
        }
        if input.nic_csum_off && driver.starts_with("virtio-net") {
            dev.push_str(",csum=off,guest_csum=off");
        }
        pci.place(&mut a, &dev);
    }

    // virtio-serial controllers are numbered in creation order; the backchannel's
    // comes first, so user ports then start on virtio-serial1.
    let mut controllers = 0u64;
    let mut add_controller = |a: &mut Argv| {
        let k = controllers;
        controllers += 1;
        pci.place(a, &format!("virtio-serial-pci,id=virtio-serial{k}"));
        k
    };

    if cfg.backchannel {
        let k = add_controller(&mut a);
        let sock = opt_escape(&path("cc"));
        a.opt(
            "-chardev",
            format!("socket,id=charvserialCC,path={sock},server=on,wait=off"),
        );
        a.opt(
            "-device",
            format!(
                "virtserialport,bus=virtio-serial{k}.0,chardev=charvserialCC,id=charvserialCC,name=cc"
            ),
        );
    }

    let mut controller = 0;
    for i in 0..cfg.virtio_ports {
        if i % PORTS_PER_CONTROLLER == 0 {
            controller = add_controller(&mut a);
        }
        let sock = opt_escape(&path(&format!("virtio-serial{i}")));
        a.opt(
            "-chardev",
            format!("socket,id=charvserial{i},path={sock},server=on,wait=off"),
        );
        a.opt(
            "-device",
            format!(
                "virtserialport,bus=virtio-serial{controller}.0,chardev=charvserial{i},id=charvserial{i},name=virtio-serial{i}"
            ),
        );
    }

    if let Some(hugepages) = input.hugepages {
        a.opt("-mem-path", hugepages.to_string_lossy().into_owned());
    }

    a.0.extend(cfg.qemu_append.iter().cloned());
    a.opt("-uuid", input.vm.uuid.clone());
    a.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &[&str]) -> Vec<String> {
        s.iter().map(|w| w.to_string()).collect()
    }

    #[test]
    fn join_quoted_wraps_words_with_whitespace() {
        assert_eq!(
            join_quoted(&words(&["console=ttyS0", "ip=1 gw=2", "quiet"])),
            r#"console=ttyS0 "ip=1 gw=2" quiet"#
        );
    }

    #[test]
    fn overrides_replace_every_match_in_order() {
        let argv = words(&["-m", "2048", "-vga", "std", "-append", "a b"]);
        let out = apply_overrides(
            &argv,
            &[
                ("2048".into(), "4096".into()),
                ("4096".into(), "512".into()),
                ("-vga std".into(), "-vga cirrus".into()),
            ],
        );
        assert_eq!(
            out,
            words(&["-m", "512", "-vga", "cirrus", "-append", "a b"])
        );
    }

    #[test]
    fn overrides_can_insert_and_remove_arguments() {
        let argv = words(&["-net", "none", "-S"]);
        let out = apply_overrides(&argv, &[("-net none".into(), "".into())]);
        assert_eq!(out, words(&["-S"]));
        let out = apply_overrides(&argv, &[("-S".into(), "-S -no-reboot".into())]);
        assert_eq!(out, words(&["-net", "none", "-S", "-no-reboot"]));
    }

    #[test]
    fn round_trip_collapses_whitespace_inside_arguments() {
        let argv = words(&["-append", "a   b"]);
        let out = apply_overrides(&argv, &[("x".into(), "y".into())]);
        assert_eq!(out, words(&["-append", "a b"]));
    }

    #[test]
    fn quotes_inside_an_argument_survive_the_round_trip() {
        let argv = words(&["-append", r#"console=ttyS0 "ip=1 gw=2""#, "-m", "1"]);
        let out = apply_overrides(&argv, &[("-m 1".into(), "-m 2".into())]);
        assert_eq!(
            out,
            words(&["-append", r#"console=ttyS0 "ip=1 gw=2""#, "-m", "2"])
        );
    }

    #[test]
    fn no_overrides_leaves_argv_untouched() {
        let argv = words(&["-append", r#"foo="a b" c"#]);
        assert_eq!(apply_overrides(&argv, &[]), argv);
    }

    #[test]
    fn split_quoted_follows_minimega() {
        assert_eq!(split_quoted(r#"a "b c" d"#), words(&["a", "b c", "d"]));
        assert_eq!(split_quoted(r#"a "b" c"#), words(&["a", "b", "c"]));
        // An unterminated group is kept rather than dropped.
        assert_eq!(split_quoted(r#"a "b c"#), words(&["a", "b c"]));
    }

    #[test]
    fn shell_word_quotes_only_unsafe_paths() {
        assert_eq!(shell_word("/tmp/files/mig.img"), "/tmp/files/mig.img");
        assert_eq!(shell_word("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_word("/tmp/it's;rm"), r"'/tmp/it'\''s;rm'");
    }

    #[test]
    fn opt_escape_doubles_commas() {
        assert_eq!(opt_escape("/a,b/c"), "/a,,b/c");
    }
}
