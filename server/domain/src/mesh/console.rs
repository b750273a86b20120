//! Consoles of VMs on other hosts: the dashboard of any host opens them, and the bytes
//! travel through the authenticated peer link to the VM's host, which relays its own
//! socket — no console port is ever opened to the network.

use crate::backends::ConsoleIo;
use crate::console::{ConsoleKind, ConsoleTarget};
use crate::vm::registry::VmState;
use crate::{ControlPlane, DomainError, DomainResult};

/// The console of a VM on a mesh peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerConsole {
    /// The peer running the VM.
    pub host: String,
    /// Namespace of the VM.
    pub namespace: String,
    /// ID of the VM on its host.
    pub id: u64,
    /// Name of the VM.
    pub name: String,
    /// VNC or terminal.
    pub kind: ConsoleKind,
}

/// Where a VM's console is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsoleAt {
    /// On this host: a unix socket.
    Here(ConsoleTarget),
    /// On a mesh peer: through the peer link.
    Peer(PeerConsole),
}

impl ControlPlane {
    /// The console of VM `vm` (a name or an ID) of namespace `ns`: here, or — when no VM
    /// of that name is here — on the peer running it, as its events told. A VM found on
    /// neither is refused as a local one is (`vm not found: …`).
    pub fn console_anywhere(&self, ns: &str, vm: &str) -> DomainResult<ConsoleAt> {
        match self.console_target(ns, vm) {
            Err(DomainError::NotFound(e)) => self
                .peer_console_target(ns, vm)
                .map(ConsoleAt::Peer)
                .map_err(|_| DomainError::NotFound(e)),
            r => r.map(ConsoleAt::Here),
        }
    }

    /// The console of VM `vm` (a name or an ID) of namespace `ns` when it runs on a peer
    /// the namespace spans, as the peer's events last told; refused as a local console
    /// is when the VM is unknown or has no process.
    pub fn peer_console_target(&self, ns: &str, vm: &str) -> DomainResult<PeerConsole> {
        let v = self
            .remote_vm(ns, vm)
            .ok_or_else(|| DomainError::NotFound(format!("vm not found: {vm}")))?;
        let running = [VmState::Building, VmState::Running, VmState::Paused]
            .iter()
            .any(|s| s.killable() && s.as_str() == v.state);
        if !running {
            return Err(DomainError::Conflict(format!(
                "vm {} is not running ({})",
                v.name, v.state
            )));
        }
        let kind = match v.vm_type.as_str() {
            "container" => ConsoleKind::Terminal,
            _ => ConsoleKind::Vnc,
        };
        Ok(PeerConsole {
            host: v.host,
            namespace: v.namespace,
            id: v.id,
            name: v.name,
            kind,
        })
    }

    /// Opens `target` on its host through the peer link (by ID: a new VM of the same
    /// name is another VM).
    pub async fn open_peer_console(
        &self,
        target: &PeerConsole,
    ) -> DomainResult<Box<dyn ConsoleIo>> {
        let (link, addr) = self.direct_addr(&target.host);
        let (Some(link), Some(addr)) = (link, addr) else {
            return Err(DomainError::NotFound(format!(
                "unknown host: `{}`",
                target.host
            )));
        };
        let id = target.id.to_string();
        link.console(&addr, &target.namespace, &id)
            .await
            .map_err(|e| {
                DomainError::Host(format!(
                    "cannot reach the console of vm {} on {}: {e}",
                    target.name, target.host
                ))
            })
    }
}
