//! Namespaces: the state each namespace owns (vm config, launch queue, VMs, scheduler figures).

use std::collections::{BTreeMap, BTreeSet};
use std::time::SystemTime;

use crate::vm::config::VmConfig;
use crate::vm::registry::{Vm, VmType};

/// The namespace every server starts in and returns to.
pub const DEFAULT_NAMESPACE: &str = "minimega";

/// The scheduler's measure of host load (`ns load`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Load {
    /// Committed vCPUs per CPU.
    CpuCommit,
    /// Committed memory per total memory.
    MemCommit,
    /// Committed NICs.
    NetCommit,
}

impl Load {
    /// The keyword `ns load` prints and takes.
    pub fn as_str(self) -> &'static str {
        match self {
            Load::CpuCommit => "cpucommit",
            Load::MemCommit => "memcommit",
            Load::NetCommit => "netcommit",
        }
    }
}

/// VMs waiting in the launch queue: names (empty for counted, unnamed VMs), type, config.
#[derive(Debug, Clone)]
pub struct QueuedLaunch {
    /// Names given to `vm launch`; empty names are assigned `vm-N` at schedule time.
    pub names: Vec<String>,
    /// KVM or container.
    pub vm_type: VmType,
    /// Snapshot of `vm config` when queued.
    pub config: VmConfig,
}

/// One run of the scheduler, as `ns schedules` shows it.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// When it started.
    pub start: SystemTime,
    /// When it ended, if it has.
    pub end: Option<SystemTime>,
    /// VMs launched.
    pub launched: usize,
    /// VMs that failed to launch.
    pub failures: usize,
    /// VMs in the schedule.
    pub total: usize,
    /// Hosts used.
    pub hosts: usize,
}

/// Everything one namespace owns on this host.
#[derive(Debug, Clone)]
pub struct Namespace {
    /// Its name.
    pub name: String,
    /// Hosts of the namespace.
    pub hosts: BTreeSet<String>,
    /// The current `vm config`.
    pub config: VmConfig,
    /// Saved configs (`vm config save`).
    pub saved: BTreeMap<String, VmConfig>,
    /// The launch queue.
    pub queue: Vec<QueuedLaunch>,
    /// Whether `vm launch` only queues.
    pub queueing: bool,
    /// Scheduler load metric.
    pub load: Load,
    /// Scheduler runs.
    pub schedules: Vec<Schedule>,
    /// Counter for `vm-N` names.
    pub vm_counter: u64,
    /// VMs of this namespace on this host, by ID.
    pub vms: BTreeMap<u64, Vm>,
    /// The namespace's command-and-control server.
    pub cc: crate::cc::CcServer,
    /// Its named pipes and plumb pipelines.
    pub plumber: crate::plumber::Plumber,
}

impl Namespace {
    /// A new namespace holding only `host`.
    pub fn new(name: &str, host: &str) -> Self {
        Namespace {
            name: name.to_string(),
            hosts: BTreeSet::from([host.to_string()]),
            config: VmConfig::default(),
            saved: BTreeMap::new(),
            queue: Vec::new(),
            queueing: false,
            load: Load::CpuCommit,
            schedules: Vec::new(),
            vm_counter: 0,
            vms: BTreeMap::new(),
            cc: crate::cc::CcServer::default(),
            plumber: crate::plumber::Plumber::default(),
        }
    }

    /// The VM with this name or ID.
    pub fn find_vm(&self, name_or_id: &str) -> Option<&Vm> {
        if let Ok(id) = name_or_id.parse::<u64>() {
            return self.vms.get(&id);
        }
        self.vms
            .values()
            .find(|v| v.name == name_or_id || v.uuid == name_or_id)
    }
}
