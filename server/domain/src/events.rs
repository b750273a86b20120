//! The event bus: every VM launch, state change and removal, broadcast to whoever
//! listens (the events WebSocket, the dashboard), with a snapshot to start from.
//!
//! A `tokio::sync::broadcast` channel: sending never waits, so a slow listener can
//! only fall behind (and then sees `Lagged`), never slow the server down. The events
//! are the API's wire type [`Event`] because the domain's output vocabulary is already
//! the API's (`Response`); there is nothing to translate.

use ferromega_api::events::{Event, VmSummary};
use tokio::sync::broadcast;

use crate::vm::registry::{Vm, VmState};
use crate::{lock, ControlPlane};

/// How many events a listener may fall behind before it is told it lagged. A launch of
/// 1000 VMs makes about three events per VM; this holds a few such bursts.
pub const CAPACITY: usize = 16_384;

/// The sending side of the bus, owned by the control plane.
pub(crate) struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    pub(crate) fn new() -> Self {
        EventBus {
            tx: broadcast::channel(CAPACITY).0,
        }
    }

    /// A receiver of every event sent from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }

    /// Sends to the current listeners; with none, the event is simply dropped.
    pub(crate) fn send(&self, e: Event) {
        let _ = self.tx.send(e);
    }
}

/// The summary of a VM that events carry.
pub fn summary(vm: &Vm) -> VmSummary {
    VmSummary {
        namespace: vm.namespace.clone(),
        id: vm.id,
        name: vm.name.clone(),
        host: vm.host.clone(),
        state: vm.state.as_str().to_string(),
        vm_type: vm.vm_type.as_str().to_string(),
        pid: vm.pid,
        error: if vm.state == VmState::Error {
            vm.tags.get("error").cloned().unwrap_or_default()
        } else {
            String::new()
        },
    }
}

impl ControlPlane {
    /// Listens to the bus: the current state as a [`Event::Snapshot`], and a receiver of
    /// every change after it. The receiver is made first, so no change falls between
    /// the two (one may be seen twice, in the snapshot and as an event; events describe
    /// the whole VM, so applying one twice is harmless).
    pub fn subscribe(&self) -> (Event, broadcast::Receiver<Event>) {
        let rx = self.inner.events.subscribe();
        (self.snapshot(), rx)
    }

    /// Every VM of every namespace, as a snapshot event: this host's, and those of mesh
    /// peers that its namespaces span.
    pub fn snapshot(&self) -> Event {
        let mut vms = self.local_vms();
        vms.extend(self.remote_vms());
        Event::Snapshot {
            host: self.host().to_string(),
            vms,
        }
    }

    /// Every VM of every namespace on this host.
    pub(crate) fn local_vms(&self) -> Vec<VmSummary> {
        let namespaces: Vec<_> = lock(&self.inner.namespaces).values().cloned().collect();
        let mut vms = Vec::new();
        for n in namespaces {
            vms.extend(lock(&n).vms.values().map(summary));
        }
        vms
    }

    /// Tells listeners that `vm` was launched or changed.
    pub(crate) fn emit_vm(&self, vm: &Vm) {
        self.inner.events.send(Event::Vm { vm: summary(vm) });
    }

    /// Tells listeners that a screenshot of `vm` of `bytes` bytes was taken.
    pub(crate) fn emit_screenshot(&self, vm: &Vm, bytes: usize) {
        self.inner.events.send(Event::Screenshot {
            host: vm.host.clone(),
            namespace: vm.namespace.clone(),
            id: vm.id,
            name: vm.name.clone(),
            bytes: bytes as u64,
        });
    }

    /// Tells listeners this host's figures of the last sample.
    pub(crate) fn emit_host_stats(&self, p: &crate::graphs::Point) {
        self.inner.events.send(Event::HostStats {
            host: self.host().to_string(),
            t: p.t,
            cpu: p.cpu,
            mem: p.mem,
            rx: p.rx,
            tx: p.tx,
        });
    }

    /// Tells listeners that `vm` is gone.
    pub(crate) fn emit_removed(&self, vm: &Vm) {
        self.inner.events.send(Event::VmRemoved {
            host: vm.host.clone(),
            namespace: vm.namespace.clone(),
            id: vm.id,
            name: vm.name.clone(),
        });
    }
}
