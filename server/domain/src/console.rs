//! Consoles of VMs: which unix socket a browser console of a VM relays to — QEMU's VNC
//! server (`<base>/<id>/vnc`) for KVM, the container's pty relay (`<base>/<id>/console`)
//! for containers — and when there is none to open.

use std::path::PathBuf;

use crate::vm::registry::{Vm, VmType};
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// What kind of console a VM has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleKind {
    /// Raw RFB (VNC) from QEMU.
    Vnc,
    /// The bytes of a container's pty.
    Terminal,
}

impl ConsoleKind {
    /// `vnc` or `terminal`.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsoleKind::Vnc => "vnc",
            ConsoleKind::Terminal => "terminal",
        }
    }
}

/// The console of one VM: what it is and where to connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleTarget {
    /// Namespace of the VM.
    pub namespace: String,
    /// ID of the VM (tickets are bound to it, so a new VM of the same name is another VM).
    pub id: u64,
    /// Name of the VM.
    pub name: String,
    /// VNC or terminal.
    pub kind: ConsoleKind,
    /// The unix socket to connect to.
    pub socket: PathBuf,
}

impl ControlPlane {
    /// The console of VM `vm` (a name or an ID) in namespace `ns`. Refused when the VM
    /// does not exist (`vm not found: …`) or has no process (QUIT, ERROR).
    pub fn console_target(&self, ns: &str, vm: &str) -> DomainResult<ConsoleTarget> {
        let found = self.find_vm(ns, |v| v.name == vm || v.id.to_string() == vm);
        let vm = found.ok_or_else(|| DomainError::NotFound(format!("vm not found: {vm}")))?;
        self.target_of(&vm)
    }

    /// The console of the VM with ID `id` in `ns`, if it is still there and running.
    pub fn console_target_by_id(&self, ns: &str, id: u64) -> DomainResult<ConsoleTarget> {
        let vm = self
            .find_vm(ns, |v| v.id == id)
            .ok_or_else(|| DomainError::NotFound(format!("vm not found: {id}")))?;
        self.target_of(&vm)
    }

    fn find_vm(&self, ns: &str, pred: impl Fn(&Vm) -> bool) -> Option<Vm> {
        // `namespace`, not `with_ns`: asking for a console must not create a namespace.
        let n = self.namespace(ns)?;
        let n = lock(&n);
        n.vms.values().find(|v| pred(v)).cloned()
    }

    fn target_of(&self, vm: &Vm) -> DomainResult<ConsoleTarget> {
        if !vm.state.killable() {
            return Err(DomainError::Conflict(format!(
                "vm {} is not running ({})",
                vm.name,
                vm.state.as_str()
            )));
        }
        let (kind, file) = match vm.vm_type {
            VmType::Kvm => (ConsoleKind::Vnc, "vnc"),
            VmType::Container => (ConsoleKind::Terminal, "console"),
        };
        let socket = self.instance_dir(vm.id).join(file);
        if !socket.exists() {
            return Err(DomainError::Conflict(format!(
                "vm {} has no {} console",
                vm.name,
                kind.as_str()
            )));
        }
        Ok(ConsoleTarget {
            namespace: vm.namespace.clone(),
            id: vm.id,
            name: vm.name.clone(),
            kind,
            socket,
        })
    }
}
