//! The VM registry: launched VMs, their states and the `vm info` columns.
//!
//! ```text
//!                vm launch
//!                   │
//!                   ▼
//!  ┌──────────► BUILDING ──vm start──► RUNNING ◄──vm start── PAUSED
//!  │               │                    │   └────vm stop──────►┘
//!  │               │ vm kill            │ vm kill / process exits
//!  │               ▼                    ▼
//!  │             QUIT ◄───────────────────
//!  │               │
//!  │   vm start <name> (relaunch)
//!  └───────────────┘
//!  any launch/start/stop failure ──► ERROR (restartable by name; vm flush removes it)
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use super::config::VmConfig;
use crate::vlans::Vlans;

/// The state of a VM (minimega's bit values, used in `Data`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmState {
    /// Created; the process is paused until `vm start`.
    Building,
    /// Running.
    Running,
    /// Paused by `vm stop`.
    Paused,
    /// Exited cleanly or killed.
    Quit,
    /// Failed; the `error` tag says why.
    Error,
}

impl VmState {
    /// minimega's upper-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            VmState::Building => "BUILDING",
            VmState::Running => "RUNNING",
            VmState::Paused => "PAUSED",
            VmState::Quit => "QUIT",
            VmState::Error => "ERROR",
        }
    }

    /// Whether `vm kill` applies (BUILDING, RUNNING, PAUSED).
    pub fn killable(self) -> bool {
        matches!(self, VmState::Building | VmState::Running | VmState::Paused)
    }
}

/// The type of a VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VmType {
    /// A QEMU/KVM virtual machine.
    Kvm,
    /// A Linux container.
    Container,
}

impl VmType {
    /// minimega's lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            VmType::Kvm => "kvm",
            VmType::Container => "container",
        }
    }
}

/// One launched VM: identity, state and the config snapshot it was launched with.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Vm {
    /// Per-host ID, never reused.
    pub id: u64,
    /// Name, unique in the namespace.
    pub name: String,
    /// Namespace that owns it.
    pub namespace: String,
    /// Host that runs it.
    pub host: String,
    /// Current state.
    pub state: VmState,
    /// KVM or container.
    #[serde(rename = "type")]
    pub vm_type: VmType,
    /// UUID.
    pub uuid: String,
    /// Config copied at launch (later `vm config` changes never affect it).
    pub config: VmConfig,
    /// Tags (`vm tag`; a failed launch adds `error`).
    pub tags: BTreeMap<String, String>,
    /// When it was first launched, in milliseconds since the Unix epoch.
    pub launched_ms: u64,
    /// Which launch of this VM the current process belongs to; exits of older
    /// processes are ignored.
    #[serde(skip)]
    pub generation: u64,
    /// PID of its process, 0 when none.
    pub pid: u32,
    /// Whether its cc agent is connected.
    pub cc_active: bool,
    /// Hotplugged USB drives by id: (file, USB version `1.1` or `2.0`).
    #[serde(default)]
    pub hotplug: BTreeMap<u32, (String, String)>,
    /// Tap (KVM) or outer veth end (container) of each NIC, empty when it has none.
    #[serde(default)]
    pub taps: Vec<String>,
    /// Qos of NICs, by NIC index.
    #[serde(default)]
    pub qos: BTreeMap<usize, crate::network::Qos>,
    /// IPv4 and IPv6 addresses snooped for each NIC (refreshed by `vm info`).
    #[serde(default)]
    pub ips: Vec<(String, String)>,
}

/// Header of `vm info`, in minimega 2.4's order.
pub const INFO_COLUMNS: &[&str] = &[
    "id",
    "name",
    "state",
    "uptime",
    "type",
    "uuid",
    "cc_active",
    "vlan",
    "bridge",
    "tap",
    "mac",
    "ip",
    "ip6",
    "qos",
    "memory",
    "vcpus",
    "disk",
    "snapshot",
    "initrd",
    "kernel",
    "cdrom",
    "migrate",
    "append",
    "serial-ports",
    "virtio-ports",
    "vnc_port",
    "pid",
    "filesystem",
    "hostname",
    "init",
    "preinit",
    "fifo",
    "volume",
    "console_port",
    "tags",
];

/// Header of `vm info summary`.
pub const SUMMARY_COLUMNS: &[&str] = &["id", "name", "state", "type", "uuid", "cc_active", "vlan"];

fn go_list(items: &[String]) -> String {
    format!("[{}]", items.join(" "))
}

fn comma_list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

fn json_map(m: &BTreeMap<String, String>) -> String {
    serde_json::to_string(m).unwrap_or_else(|_| "{}".to_string())
}

/// A Go duration as `time.Duration.String()` prints it (`1m3.512001s`).
pub fn go_duration(d: std::time::Duration) -> String {
    let total = d.as_secs_f64();
    if total == 0.0 {
        return "0s".to_string();
    }
    let mut secs = d.as_secs();
    let micros = d.subsec_micros();
    let h = secs / 3600;
    secs %= 3600;
    let m = secs / 60;
    secs %= 60;
    let frac = if micros > 0 {
        format!("{secs}.{micros:06}")
            .trim_end_matches('0')
            .to_string()
    } else {
        secs.to_string()
    };
    match (h, m) {
        (0, 0) => format!("{frac}s"),
        (0, m) => format!("{m}m{frac}s"),
        (h, m) => format!("{h}h{m}m{frac}s"),
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Vm {
    /// Time since the VM was first launched.
    pub fn uptime(&self) -> Duration {
        Duration::from_millis(now_ms().saturating_sub(self.launched_ms))
    }

    /// The value of one `vm info` column, `N/A` where it does not apply to the VM's type.
    pub fn column(&self, column: &str, vlans: &Vlans, namespace: &str) -> String {
        let kvm = self.vm_type == VmType::Kvm;
        let c = &self.config;
        let na = |applies: bool, v: String| if applies { v } else { "N/A".to_string() };
        let nics = &c.networks;
        match column {
            "id" => self.id.to_string(),
            "name" => self.name.clone(),
            "state" => self.state.as_str().to_string(),
            "uptime" => go_duration(self.uptime()),
            "type" => self.vm_type.as_str().to_string(),
            "uuid" => self.uuid.clone(),
            "cc_active" => self.cc_active.to_string(),
            "vlan" => comma_list(
                &nics
                    .iter()
                    .map(|n| match n.bridge.is_empty() {
                        true => "disconnected".to_string(),
                        false => vlans.display(namespace, n.vlan),
                    })
                    .collect::<Vec<_>>(),
            ),
            "bridge" => comma_list(&nics.iter().map(|n| n.bridge.clone()).collect::<Vec<_>>()),
            "tap" => comma_list(
                &(0..nics.len())
                    .map(|i| self.taps.get(i).cloned().unwrap_or_default())
                    .collect::<Vec<_>>(),
            ),
            "mac" => comma_list(&nics.iter().map(|n| n.mac.clone()).collect::<Vec<_>>()),
            "ip" | "ip6" => comma_list(
                &(0..nics.len())
                    .map(|i| {
                        let (v4, v6) = self.ips.get(i).cloned().unwrap_or_default();
                        if column == "ip" {
                            v4
                        } else {
                            v6
                        }
                    })
                    .collect::<Vec<_>>(),
            ),
            "qos" => comma_list(
                &self
                    .qos
                    .iter()
                    .filter(|(_, q)| !q.is_empty())
                    .map(|(i, q)| format!("{i}: {q}"))
                    .collect::<Vec<_>>(),
            ),
            "memory" => c.memory.to_string(),
            "vcpus" => c.vcpus.to_string(),
            "disk" => na(kvm, go_list(&c.disk)),
            "snapshot" => c.snapshot.to_string(),
            "initrd" => na(kvm, c.initrd.clone()),
            "kernel" => na(kvm, c.kernel.clone()),
            "cdrom" => na(kvm, c.cdrom.clone()),
            "migrate" => na(kvm, c.migrate.clone()),
            "append" => na(kvm, go_list(&c.append)),
            "serial-ports" => na(kvm, c.serial_ports.to_string()),
            "virtio-ports" => na(kvm, c.virtio_ports.to_string()),
            // QEMU's VNC is a unix socket in the instance directory, reached through the
            // dashboard's console; there is no TCP port.
            "vnc_port" => na(kvm, "0".to_string()),
            "pid" => self.pid.to_string(),
            "filesystem" => na(!kvm, c.filesystem.clone()),
            "hostname" => na(!kvm, c.hostname.clone()),
            "init" => na(!kvm, go_list(&c.init)),
            "preinit" => na(!kvm, c.preinit.clone()),
            // minimega 2.4 names the column `fifo` but the field `fifos`: always N/A.
            "fifo" => "N/A".to_string(),
            "volume" => na(!kvm, json_map(&c.volumes)),
            "console_port" => na(!kvm, "0".to_string()),
            "tags" => json_map(&self.tags),
            _ => String::new(),
        }
    }

    /// A row of `vm info` for the given columns.
    pub fn row(&self, columns: &[&str], vlans: &Vlans) -> Vec<String> {
        columns
            .iter()
            .map(|c| self.column(c, vlans, &self.namespace))
            .collect()
    }
}
