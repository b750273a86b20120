//! The per-namespace `vm config`: its fields, reading and writing them by FIELDS, printing it.
//!
//! `VmConfig` is minimega's Base + KVM + Container configs in one struct. The
//! command layer's [`FIELDS`](ferromega_command::fields::FIELDS) table names each
//! field and its kind; [`VmConfig::apply`] maps a field row to its member through
//! one `match` (the `slots!` macro) and reads or writes it as minimega's generated
//! handlers do, error texts included.

use std::collections::BTreeMap;
use std::path::Path;

use ferromega_api::Args;
use ferromega_command::fields::{Field, FieldKind};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::netspec::{self, NetConfig, NetspecError};
use crate::vlans::Vlans;

/// Errors of `vm config`; the texts are minimega's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    /// A number that does not parse (Go's `strconv` text).
    #[error("strconv.{func}: parsing {}: invalid syntax", go_quote(.input))]
    InvalidSyntax {
        /// `ParseUint` or `ParseInt`.
        func: &'static str,
        /// The text given.
        input: String,
    },
    /// A number that does not fit 64 bits (Go's `strconv` text).
    #[error("strconv.{func}: parsing {}: value out of range", go_quote(.input))]
    OutOfRange {
        /// `ParseUint` or `ParseInt`.
        func: &'static str,
        /// The text given.
        input: String,
    },
    /// A bad netspec; the NIC list has been cleared.
    #[error(transparent)]
    Netspec(#[from] NetspecError),
    /// A field row that names no member of `VmConfig` (or has the wrong kind).
    #[error("unknown vm config field: {0}")]
    UnknownField(String),
}

/// A namespace's current VM configuration (Base + KVM + Container sections).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VmConfig {
    // Base.
    /// Memory in megabytes.
    pub memory: u64,
    /// Virtual CPUs.
    pub vcpus: u64,
    /// NICs.
    pub networks: Vec<NetConfig>,
    /// Discard disk/filesystem writes.
    pub snapshot: bool,
    /// Preset UUID, empty for a random one.
    pub uuid: String,
    /// Host the scheduler must use.
    pub schedule: String,
    /// Maximum number of other VMs on the same host, -1 unlimited.
    pub coschedule: i64,
    /// cc backchannel enabled.
    pub backchannel: bool,
    /// Tags applied at launch.
    pub tags: BTreeMap<String, String>,
    // KVM.
    /// QEMU binary (resolved path), empty for `kvm` from PATH.
    pub qemu: String,
    /// Kernel image (resolved path).
    pub kernel: String,
    /// Initrd (resolved path).
    pub initrd: String,
    /// CD-ROM ISO (resolved path).
    pub cdrom: String,
    /// Migration image (resolved path).
    pub migrate: String,
    /// QEMU `-cpu` model.
    pub cpu: String,
    /// ISA serial ports.
    pub serial_ports: u64,
    /// Extra virtio-serial ports.
    pub virtio_ports: u64,
    /// Kernel command line words.
    pub append: Vec<String>,
    /// Disk images (resolved paths).
    pub disk: Vec<String>,
    /// Arguments appended to the QEMU command line.
    pub qemu_append: Vec<String>,
    /// (match, replacement) substitutions over the joined QEMU command line.
    pub qemu_override: Vec<(String, String)>,
    // Container.
    /// Root filesystem (resolved path).
    pub filesystem: String,
    /// Hostname, empty for the VM name.
    pub hostname: String,
    /// PID 1 program and arguments.
    pub init: Vec<String>,
    /// Program run by the shim before init.
    pub preinit: String,
    /// Named pipes to create.
    pub fifos: u64,
    /// Mounts: container path → host path (resolved).
    pub volumes: BTreeMap<String, String>,
}

impl Default for VmConfig {
    fn default() -> Self {
        VmConfig {
            memory: 2048,
            vcpus: 1,
            networks: Vec::new(),
            snapshot: true,
            uuid: String::new(),
            schedule: String::new(),
            coschedule: -1,
            backchannel: true,
            tags: BTreeMap::new(),
            qemu: String::new(),
            kernel: String::new(),
            initrd: String::new(),
            cdrom: String::new(),
            migrate: String::new(),
            cpu: "host".to_string(),
            serial_ports: 0,
            virtio_ports: 0,
            append: Vec::new(),
            disk: Vec::new(),
            qemu_append: Vec::new(),
            qemu_override: Vec::new(),
            filesystem: String::new(),
            hostname: String::new(),
            init: vec!["/init".to_string()],
            preinit: String::new(),
            fifos: 0,
            volumes: BTreeMap::new(),
        }
    }
}

/// What `apply` needs besides the config: where relative paths point, the
/// active namespace and the VLAN allocator.
pub struct ConfigCtx<'a> {
    /// The files directory (`<base>/files`) relative paths are joined to.
    pub files_dir: &'a Path,
    /// The active namespace (VLAN aliases are allocated in it).
    pub namespace: &'a str,
    /// The global VLAN allocator.
    pub vlans: &'a mut Vlans,
}

/// A shared view of one member of `VmConfig`.
enum SlotRef<'a> {
    Str(&'a String),
    Uint(&'a u64),
    Int(&'a i64),
    Bool(&'a bool),
    List(&'a Vec<String>),
    Map(&'a BTreeMap<String, String>),
    Net(&'a Vec<NetConfig>),
    Override(&'a Vec<(String, String)>),
}

/// A mutable view of one member of `VmConfig`.
enum SlotMut<'a> {
    Str(&'a mut String),
    Uint(&'a mut u64),
    Int(&'a mut i64),
    Bool(&'a mut bool),
    List(&'a mut Vec<String>),
    Map(&'a mut BTreeMap<String, String>),
    Net(&'a mut Vec<NetConfig>),
    Override(&'a mut Vec<(String, String)>),
}

/// The one mapping from a field name (FIELDS' CLI word) to its member.
macro_rules! slots {
    ($cfg:expr, $name:expr, $slot:ident, $($r:tt)+) => {
        match $name {
            "append" => Some($slot::List($($r)+ $cfg.append)),
            "backchannel" => Some($slot::Bool($($r)+ $cfg.backchannel)),
            "cdrom" => Some($slot::Str($($r)+ $cfg.cdrom)),
            "coschedule" => Some($slot::Int($($r)+ $cfg.coschedule)),
            "cpu" => Some($slot::Str($($r)+ $cfg.cpu)),
            "disk" => Some($slot::List($($r)+ $cfg.disk)),
            "fifos" => Some($slot::Uint($($r)+ $cfg.fifos)),
            "filesystem" => Some($slot::Str($($r)+ $cfg.filesystem)),
            "hostname" => Some($slot::Str($($r)+ $cfg.hostname)),
            "init" => Some($slot::List($($r)+ $cfg.init)),
            "initrd" => Some($slot::Str($($r)+ $cfg.initrd)),
            "kernel" => Some($slot::Str($($r)+ $cfg.kernel)),
            "memory" => Some($slot::Uint($($r)+ $cfg.memory)),
            "migrate" => Some($slot::Str($($r)+ $cfg.migrate)),
            "net" => Some($slot::Net($($r)+ $cfg.networks)),
            "preinit" => Some($slot::Str($($r)+ $cfg.preinit)),
            "qemu" => Some($slot::Str($($r)+ $cfg.qemu)),
            "qemu-append" => Some($slot::List($($r)+ $cfg.qemu_append)),
            "qemu-override" => Some($slot::Override($($r)+ $cfg.qemu_override)),
            "schedule" => Some($slot::Str($($r)+ $cfg.schedule)),
            "serial-ports" => Some($slot::Uint($($r)+ $cfg.serial_ports)),
            "snapshot" => Some($slot::Bool($($r)+ $cfg.snapshot)),
            "tags" => Some($slot::Map($($r)+ $cfg.tags)),
            "uuid" => Some($slot::Str($($r)+ $cfg.uuid)),
            "vcpus" => Some($slot::Uint($($r)+ $cfg.vcpus)),
            "virtio-ports" => Some($slot::Uint($($r)+ $cfg.virtio_ports)),
            "volume" => Some($slot::Map($($r)+ $cfg.volumes)),
            _ => None,
        }
    };
}

impl VmConfig {
    fn slot(&self, name: &str) -> Option<SlotRef<'_>> {
        slots!(self, name, SlotRef, &)
    }

    fn slot_mut(&mut self, name: &str) -> Option<SlotMut<'_>> {
        slots!(self, name, SlotMut, &mut)
    }

    /// `vm config <field> …`: prints the field when no value is given
    /// (`Ok(Some(text))`), else sets it (`Ok(None)`).
    ///
    /// `qemu-override` prints only the override table: the `Before overrides:` /
    /// `After overrides:` command lines need the QEMU argv builder and are added
    /// by the caller that owns it.
    pub fn apply(
        &mut self,
        field: &Field,
        args: &Args,
        ctx: &mut ConfigCtx,
    ) -> Result<Option<String>, ConfigError> {
        let unknown = || ConfigError::UnknownField(field.name.to_string());
        let ns = ctx.namespace;
        let get = |cfg: &Self, vlans: &Vlans| cfg.get(field, ns, vlans);
        let slot = self.slot_mut(field.name).ok_or_else(unknown)?;
        match (field.kind, slot) {
            (FieldKind::Str | FieldKind::Path, SlotMut::Str(s)) => match args.string("value") {
                None => get(self, ctx.vlans).map(Some),
                Some(v) if field.kind == FieldKind::Path => {
                    *s = resolve_path(ctx.files_dir, v);
                    Ok(None)
                }
                Some(v) => {
                    *s = v.to_string();
                    Ok(None)
                }
            },
            (FieldKind::Uint, SlotMut::Uint(n)) => match args.string("value") {
                None => get(self, ctx.vlans).map(Some),
                Some(v) => {
                    *n = parse_uint(v)?;
                    Ok(None)
                }
            },
            (FieldKind::Int, SlotMut::Int(n)) => match args.string("value") {
                None => get(self, ctx.vlans).map(Some),
                Some(v) => {
                    *n = parse_int(v)?;
                    Ok(None)
                }
            },
            (FieldKind::Bool, SlotMut::Bool(b)) => {
                if args.flag("true") || args.flag("false") {
                    *b = args.flag("true");
                    Ok(None)
                } else {
                    get(self, ctx.vlans).map(Some)
                }
            }
            (FieldKind::List | FieldKind::PathList, SlotMut::List(l)) => {
                let values = args.list("value");
                if values.is_empty() {
                    return get(self, ctx.vlans).map(Some);
                }
                *l = match field.kind {
                    FieldKind::PathList => values
                        .iter()
                        .map(|v| resolve_path(ctx.files_dir, v))
                        .collect(),
                    _ => values.to_vec(),
                };
                Ok(None)
            }
            (FieldKind::Net, SlotMut::Net(nics)) => {
                let specs = args.list("netspec");
                if specs.is_empty() {
                    return get(self, ctx.vlans).map(Some);
                }
                nics.clear();
                for spec in specs {
                    match netspec::parse(spec, ctx.namespace, ctx.vlans) {
                        Ok(nic) => nics.push(nic),
                        Err(e) => {
                            nics.clear();
                            return Err(e.into());
                        }
                    }
                }
                Ok(None)
            }
            (FieldKind::Map, SlotMut::Map(m)) => match (args.string("key"), args.string("value")) {
                (None, _) => get(self, ctx.vlans).map(Some),
                // minimega's quirk: the lookup uses the (empty) value as the key.
                (Some(_), None) => Ok(Some(m.get("").cloned().unwrap_or_default())),
                (Some(k), Some(v)) => {
                    // Only volume host paths are path-resolved (§2.2).
                    let v = match field.name {
                        "volume" => resolve_path(ctx.files_dir, v),
                        _ => v.to_string(),
                    };
                    m.insert(k.to_string(), v);
                    Ok(None)
                }
            },
            (FieldKind::Override, SlotMut::Override(o)) => {
                match (args.string("match"), args.string("replacement")) {
                    (Some(m), Some(r)) => {
                        o.push((m.to_string(), r.to_string()));
                        Ok(None)
                    }
                    _ => get(self, ctx.vlans).map(Some),
                }
            }
            _ => Err(unknown()),
        }
    }

    /// The field as `vm config <field>` prints it.
    pub fn get(
        &self,
        field: &Field,
        namespace: &str,
        vlans: &Vlans,
    ) -> Result<String, ConfigError> {
        let slot = self
            .slot(field.name)
            .ok_or_else(|| ConfigError::UnknownField(field.name.to_string()))?;
        Ok(match slot {
            SlotRef::Str(s) => s.clone(),
            SlotRef::Uint(n) => n.to_string(),
            SlotRef::Int(n) => n.to_string(),
            SlotRef::Bool(b) => b.to_string(),
            // The generated handlers print nothing for an empty list.
            SlotRef::List(l) if l.is_empty() => String::new(),
            SlotRef::List(l) => go_list(l),
            SlotRef::Net(nics) => netspec::display_list(nics, namespace, vlans),
            SlotRef::Map(m) => m.iter().map(|(k, v)| format!("{k} -> {v}\n")).collect(),
            SlotRef::Override(o) => {
                let mut s = String::from("id\tmatch\treplacement\n");
                for (i, (m, r)) in o.iter().enumerate() {
                    s.push_str(&format!("{i}\t\"{m}\"\t\"{r}\"\n"));
                }
                s
            }
        })
    }

    /// `clear vm config <field>`: resets one field to its default.
    pub fn clear(&mut self, field: &Field) {
        let mut defaults = VmConfig::default();
        let (Some(mine), Some(default)) =
            (self.slot_mut(field.name), defaults.slot_mut(field.name))
        else {
            return;
        };
        match (mine, default) {
            (SlotMut::Str(a), SlotMut::Str(b)) => std::mem::swap(a, b),
            (SlotMut::Uint(a), SlotMut::Uint(b)) => std::mem::swap(a, b),
            (SlotMut::Int(a), SlotMut::Int(b)) => std::mem::swap(a, b),
            (SlotMut::Bool(a), SlotMut::Bool(b)) => std::mem::swap(a, b),
            (SlotMut::List(a), SlotMut::List(b)) => std::mem::swap(a, b),
            (SlotMut::Map(a), SlotMut::Map(b)) => std::mem::swap(a, b),
            (SlotMut::Net(a), SlotMut::Net(b)) => std::mem::swap(a, b),
            (SlotMut::Override(a), SlotMut::Override(b)) => std::mem::swap(a, b),
            _ => {}
        }
    }

    /// `clear vm config tag <key>`: removes one tag, or every tag for `all`.
    pub fn clear_tag(&mut self, key: &str) {
        if key == "all" {
            self.tags.clear();
        } else {
            self.tags.remove(key);
        }
    }

    /// The whole `vm config` printout: VM, KVM and Container blocks, each
    /// tab-aligned on its own and followed by a blank line.
    pub fn display(&self, namespace: &str, vlans: &Vlans) -> String {
        let vm = [
            ("Memory:", self.memory.to_string()),
            ("VCPUs:", self.vcpus.to_string()),
            (
                "Networks:",
                netspec::display_list(&self.networks, namespace, vlans),
            ),
            ("Snapshot:", self.snapshot.to_string()),
            ("UUID:", self.uuid.clone()),
            ("Schedule host:", self.schedule.clone()),
            ("Coschedule limit:", self.coschedule.to_string()),
            ("Backchannel:", self.backchannel.to_string()),
            ("Tags:", go_json(&self.tags)),
        ];
        let kvm = [
            ("Migrate Path:", self.migrate.clone()),
            ("Disk Paths:", go_list(&self.disk)),
            ("CDROM Path:", self.cdrom.clone()),
            ("Kernel Path:", self.kernel.clone()),
            ("Initrd Path:", self.initrd.clone()),
            ("Kernel Append:", go_list(&self.append)),
            ("QEMU Path:", self.qemu.clone()),
            ("QEMU Append:", go_list(&self.qemu_append)),
            ("SerialPorts:", self.serial_ports.to_string()),
            ("Virtio-SerialPorts:", self.virtio_ports.to_string()),
        ];
        let container = [
            ("Filesystem Path:", self.filesystem.clone()),
            ("Hostname:", self.hostname.clone()),
            ("Init:", go_list(&self.init)),
            ("Pre-init:", self.preinit.clone()),
            ("FIFOs:", self.fifos.to_string()),
        ];
        let mut out = String::from("VM configuration:\n");
        out.push_str(&align(&vm));
        out.push_str("\nKVM configuration:\n");
        out.push_str(&align(&kvm));
        out.push_str("\nContainer configuration:\n");
        out.push_str(&align(&container));
        out.push_str("Volumes:\n");
        for (k, v) in &self.volumes {
            out.push_str(&format!("    {k} -> {v}\n"));
        }
        out.push('\n');
        out
    }
}

/// Rows `key<TAB>value` as Go's tabwriter (min width 5, padding 1) prints them.
fn align(rows: &[(&str, String)]) -> String {
    let width = rows
        .iter()
        .map(|(k, _)| k.len() + 1)
        .chain([5])
        .max()
        .unwrap_or(5);
    rows.iter()
        .map(|(k, v)| format!("{k:<width$}{v}\n"))
        .collect()
}

/// A string slice as Go's `%v` prints it: `[a b c]`.
fn go_list(l: &[String]) -> String {
    format!("[{}]", l.join(" "))
}

/// A map as Go's `json.Marshal` prints it (sorted keys, HTML-escaped).
fn go_json(m: &BTreeMap<String, String>) -> String {
    let json = serde_json::to_string(m).unwrap_or_else(|_| "{}".to_string());
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
}

/// A string quoted as Go's `strconv.Quote` does, for error texts.
fn go_quote(s: &str) -> String {
    let mut q = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\r' => q.push_str("\\r"),
            '\t' => q.push_str("\\t"),
            '\u{7}' => q.push_str("\\a"),
            '\u{8}' => q.push_str("\\b"),
            '\u{c}' => q.push_str("\\f"),
            '\u{b}' => q.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                q.push_str(&format!("\\x{:02x}", c as u32))
            }
            c if c.is_control() => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

/// Go's `strconv.ParseUint(s, 10, 64)`.
fn parse_uint(s: &str) -> Result<u64, ConfigError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::InvalidSyntax {
            func: "ParseUint",
            input: s.to_string(),
        });
    }
    s.parse().map_err(|_| ConfigError::OutOfRange {
        func: "ParseUint",
        input: s.to_string(),
    })
}

/// Go's `strconv.ParseInt(s, 10, 64)`.
fn parse_int(s: &str) -> Result<i64, ConfigError> {
    let digits = s.strip_prefix(['+', '-']).unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ConfigError::InvalidSyntax {
            func: "ParseInt",
            input: s.to_string(),
        });
    }
    s.parse().map_err(|_| ConfigError::OutOfRange {
        func: "ParseInt",
        input: s.to_string(),
    })
}

/// minimega's path rule (§2.4): an absolute path is kept as given; a relative
/// one is joined to the files directory and cleaned lexically like Go's
/// `filepath.Join` (`./x` → `<files>/x`). A missing file only logs a warning.
pub fn resolve_path(files_dir: &Path, value: &str) -> String {
    if value.starts_with('/') {
        return value.to_string();
    }
    let joined = go_clean(&format!("{}/{}", files_dir.to_string_lossy(), value));
    if !Path::new(&joined).exists() {
        tracing::warn!("file does not exist: {joined}");
    }
    joined
}

/// Go's `path.Clean`: lexical `.`/`..`/`//` elimination.
fn go_clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => match parts.last() {
                Some(&last) if last != ".." => {
                    parts.pop();
                }
                _ if rooted => {}
                _ => parts.push(".."),
            },
            part => parts.push(part),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_string(),
        (false, false) => body,
    }
}

#[cfg(test)]
mod tests;
