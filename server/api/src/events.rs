//! Wire types of the live side of the API: the events WebSocket (`GET /api/v1/events`)
//! and console tickets (`POST /api/v1/namespaces/{ns}/vms/{name}/console`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A VM as the events stream describes it: identity, where it lives and its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct VmSummary {
    /// Namespace that owns it.
    pub namespace: String,
    /// Per-host ID.
    pub id: u64,
    /// Name, unique in the namespace.
    pub name: String,
    /// Host that runs it.
    pub host: String,
    /// minimega's state name: BUILDING, RUNNING, PAUSED, QUIT or ERROR.
    pub state: String,
    /// `kvm` or `container`.
    #[serde(rename = "type")]
    pub vm_type: String,
    /// PID of its process, 0 when none.
    pub pid: u32,
    /// The `error` tag of a VM in ERROR, empty otherwise.
    #[serde(default)]
    pub error: String,
}

/// One message of the events WebSocket: a JSON text frame each.
///
/// The first message is always a `snapshot`; then come changes in the order they
/// happened. A client that falls too far behind is disconnected (close code 4000,
/// reason `lagged`) and should reconnect for a fresh snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// The current state: every VM of every namespace on this host.
    Snapshot {
        /// Host that sent it.
        host: String,
        /// Every VM.
        vms: Vec<VmSummary>,
    },
    /// A VM was launched or changed (state, PID).
    Vm {
        /// The VM as it is now.
        vm: VmSummary,
    },
    /// A VM was removed (`vm flush`, namespace destroyed).
    VmRemoved {
        /// Host it ran on (empty from servers before the mesh relayed events).
        #[serde(default)]
        host: String,
        /// Its namespace.
        namespace: String,
        /// Its ID.
        id: u64,
        /// Its name.
        name: String,
    },
    /// A new screenshot of a VM was taken (`vm screenshot`); fetch it with that operation.
    /// The image itself is not carried, so a burst of screenshots cannot fill the stream.
    Screenshot {
        /// Host the VM runs on.
        #[serde(default)]
        host: String,
        /// Its namespace.
        namespace: String,
        /// Its ID.
        id: u64,
        /// Its name.
        name: String,
        /// Size of the PNG, bytes.
        bytes: u64,
    },
    /// This host's figures of the last second (sent once a second).
    HostStats {
        /// Host that sent it.
        host: String,
        /// Unix time, seconds.
        t: u64,
        /// CPU busy, percent of all CPUs.
        cpu: f32,
        /// Memory used, MB.
        mem: f32,
        /// MB/s received by the VMs' NICs.
        rx: f32,
        /// MB/s sent by the VMs' NICs.
        tx: f32,
    },
}

impl Event {
    /// The host the event comes from: where its VM runs, or whose figures or snapshot
    /// it is.
    pub fn host(&self) -> &str {
        match self {
            Event::Snapshot { host, .. }
            | Event::VmRemoved { host, .. }
            | Event::Screenshot { host, .. }
            | Event::HostStats { host, .. } => host,
            Event::Vm { vm } => &vm.host,
        }
    }
}

/// A console ticket: open the console with `GET <url>` (a WebSocket) before it expires.
/// It is single-use and bound to the VM it was issued for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsoleTicket {
    /// The ticket.
    pub ticket: String,
    /// `vnc` (binary frames of raw RFB) or `terminal` (bytes of the container's pty).
    pub kind: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Path of the WebSocket to open with it (`/api/v1/console/ws?ticket=…`).
    pub url: String,
    /// Namespace of the VM.
    pub namespace: String,
    /// Name of the VM.
    pub name: String,
}
