//! KVM-only VM operations: `vm qmp`, `vm screenshot`, `vm cdrom`, and the
//! `vm config qemu-override` preview.

use std::sync::Arc;

use ferromega_api::{Args, Response};

use crate::backends::Hypervisor;
use crate::ops::vm_lifecycle::Action;
use crate::vm::registry::{Vm, VmState, VmType};
use crate::{ControlPlane, DomainError, DomainResult};

impl ControlPlane {
    pub(crate) fn hypervisor(&self) -> DomainResult<Arc<dyn Hypervisor>> {
        self.inner
            .backends
            .kvm
            .clone()
            .ok_or_else(|| DomainError::Host("no kvm runtime on this host".into()))
    }

    /// The one VM named (by name, ID or UUID) in the namespace, which must be KVM.
    pub(crate) fn kvm_vm(&self, ns: &str, name: &str) -> DomainResult<Vm> {
        let vm = self
            .with_ns(ns, |n| n.find_vm(name).cloned())
            .ok_or_else(|| DomainError::NotFound(format!("vm not found: {name}")))?;
        if vm.vm_type != VmType::Kvm {
            return Err(DomainError::invalid(format!("vm not KVM: {name}")));
        }
        Ok(vm)
    }

    pub(crate) async fn vm_qmp(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let vm = self.kvm_vm(ns, args.string("vm").unwrap_or_default())?;
        let request = args.string("qmp").unwrap_or_default();
        let reply = self
            .hypervisor()?
            .qmp(&vm, request)
            .await
            .map_err(DomainError::Host)?;
        Ok(self.text(reply))
    }

    pub(crate) async fn vm_screenshot(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let name = args.string("vm").unwrap_or_default();
        let vm = self
            .with_ns(ns, |n| n.find_vm(name).cloned())
            .ok_or_else(|| DomainError::NotFound(format!("vm not found: {name}")))?;
        if vm.vm_type == VmType::Container {
            return Err(DomainError::invalid("cannot take screenshot of container"));
        }
        if vm.state != VmState::Running {
            return Err(DomainError::Conflict(format!("vm not running: {}", vm.id)));
        }
        let max = match args.string("maximum") {
            Some(m) => Some(m.parse::<u32>().map_err(|_| {
                DomainError::invalid(format!("strconv.ParseUint: parsing {m:?}: invalid syntax"))
            })?),
            None => None,
        };
        let png = self
            .hypervisor()?
            .screenshot(&vm, max)
            .await
            .map_err(DomainError::Host)?;
        let path = match args.string("filename") {
            Some(f) => std::path::PathBuf::from(f),
            None => self.instance_dir(vm.id).join("screenshot.png"),
        };
        std::fs::write(&path, &png)
            .map_err(|e| DomainError::Host(format!("{}: {e}", path.display())))?;
        self.emit_screenshot(&vm, png.len());
        let mut resp = self.ok();
        resp.data = Some(serde_json::Value::String(base64(&png)));
        Ok(resp)
    }

    pub(crate) async fn vm_cdrom_eject(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        self.hypervisor()?;
        let target = args.string("vm").unwrap_or_default();
        let ns = ns.to_string();
        self.for_targets(
            &ns.clone(),
            target,
            async move |cp: &ControlPlane, vm: Vm, _: bool| {
                if vm.vm_type != VmType::Kvm || !vm.state.killable() {
                    return Ok(Action::Skip);
                }
                let hv = cp.hypervisor().map_err(|e| e.to_string())?;
                hv.cdrom_eject(&vm).await?;
                cp.with_ns(&ns, |n| {
                    n.vms.get_mut(&vm.id).map(|v| v.config.cdrom.clear())
                });
                Ok(Action::Done)
            },
        )
        .await
    }

    pub(crate) async fn vm_cdrom_change(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        self.hypervisor()?;
        let path = args.string("path").unwrap_or_default().to_string();
        if !std::path::Path::new(&path).exists() {
            return Err(DomainError::NotFound(format!(
                "file does not exist: {path}"
            )));
        }
        let target = args.string("vm").unwrap_or_default();
        let ns = ns.to_string();
        self.for_targets(
            &ns.clone(),
            target,
            async move |cp: &ControlPlane, vm: Vm, _: bool| {
                if vm.vm_type != VmType::Kvm || !vm.state.killable() {
                    return Ok(Action::Skip);
                }
                let hv = cp.hypervisor().map_err(|e| e.to_string())?;
                hv.cdrom_change(&vm, &path).await?;
                cp.with_ns(&ns, |n| {
                    n.vms.get_mut(&vm.id).map(|v| v.config.cdrom = path.clone())
                });
                Ok(Action::Done)
            },
        )
        .await
    }

    /// `Before overrides:`/`After overrides:` lines for `vm config qemu-override`.
    pub(crate) fn override_preview(&self, ns: &str) -> Option<String> {
        let hv = self.inner.backends.kvm.clone()?;
        let vm = self.with_ns(ns, |n| Vm {
            id: 0,
            name: String::new(),
            namespace: ns.to_string(),
            host: self.host().to_string(),
            state: VmState::Building,
            vm_type: VmType::Kvm,
            uuid: n.config.uuid.clone(),
            config: n.config.clone(),
            tags: Default::default(),
            launched_ms: 0,
            generation: 0,
            pid: 0,
            cc_active: false,
            hotplug: Default::default(),
            taps: Vec::new(),
            qos: Default::default(),
            ips: Vec::new(),
        });
        let (before, after) = hv.preview_argv(&vm);
        Some(format!(
            "\nBefore overrides:\n{}\n\nAfter overrides:\n{}",
            before.join(" "),
            after.join(" ")
        ))
    }
}

/// Standard base64 of `bytes` (the PNG in `Data`, as Go's JSON encodes []byte).
fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::base64;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
