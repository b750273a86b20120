//! KVM devices and state files: `vm hotplug` (USB drives), `vm migrate` (save state to a
//! file) and `disk create/snapshot/info` (qemu-img on images of the files directory).

use ferromega_api::{Args, Response};

use crate::ops::vm::resolve;
use crate::vm::registry::{Vm, VmType};
use crate::{ControlPlane, DomainError, DomainResult};

impl ControlPlane {
    fn kvm_targets(&self, ns: &str, target: &str) -> DomainResult<Vec<Vm>> {
        let vms: Vec<Vm> = self.with_ns(ns, |n| {
            resolve(n, target).map(|t| {
                t.ids
                    .iter()
                    .filter_map(|id| n.vms.get(id).cloned())
                    .collect::<Vec<_>>()
            })
        })?;
        let vms: Vec<Vm> = vms
            .into_iter()
            .filter(|v| v.vm_type == VmType::Kvm)
            .collect();
        if vms.is_empty() {
            return Err(DomainError::NotFound(format!("vm not found: {target}")));
        }
        Ok(vms)
    }

    pub(crate) fn vm_hotplug(&self, ns: &str) -> DomainResult<Response> {
        let rows = self.with_ns(ns, |n| {
            n.vms
                .values()
                .flat_map(|vm| {
                    vm.hotplug.iter().map(|(id, (file, version))| {
                        vec![
                            vm.name.clone(),
                            id.to_string(),
                            file.clone(),
                            version.clone(),
                        ]
                    })
                })
                .collect()
        });
        Ok(self.table(&["name", "id", "file", "version"], rows))
    }

    pub(crate) async fn vm_hotplug_add(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let hv = self.hypervisor()?;
        let file = args.string("filename").unwrap_or_default();
        if !std::path::Path::new(file).is_file() {
            return Err(DomainError::NotFound(format!(
                "file does not exist: {file}"
            )));
        }
        let version = args.string("version").unwrap_or("1.1");
        if version != "1.1" && version != "2.0" {
            return Err(DomainError::invalid(format!(
                "invalid version: `{version}`"
            )));
        }
        let mut errors = Vec::new();
        for vm in self.kvm_targets(ns, args.string("vm").unwrap_or_default())? {
            let id = vm.hotplug.keys().next_back().map_or(0, |k| k + 1);
            let serial = args.string("serial");
            match hv
                .hotplug_add(&vm, id, file, version == "2.0", serial)
                .await
            {
                Ok(()) => self.with_ns(ns, |n| {
                    if let Some(v) = n.vms.get_mut(&vm.id) {
                        v.hotplug
                            .insert(id, (file.to_string(), version.to_string()));
                    }
                }),
                Err(e) => errors.push(format!("{}: {e}", vm.name)),
            }
        }
        if errors.is_empty() {
            Ok(self.ok())
        } else {
            Err(DomainError::Host(errors.join("\n")))
        }
    }

    pub(crate) async fn vm_hotplug_remove(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let hv = self.hypervisor()?;
        let which = args.string("disk").unwrap_or_default();
        let target = args.string("vm").unwrap_or_default();
        let wild = target == "all";
        let one: Option<u32> = match which {
            "all" => None,
            s => Some(
                s.parse()
                    .map_err(|_| DomainError::invalid(format!("invalid disk: `{s}`")))?,
            ),
        };
        let mut errors = Vec::new();
        for vm in self.kvm_targets(ns, target)? {
            let ids: Vec<u32> = match one {
                Some(id) if vm.hotplug.contains_key(&id) => vec![id],
                Some(_) if wild => continue,
                Some(_) => {
                    errors.push("no such hotplug device".to_string());
                    continue;
                }
                None if vm.hotplug.is_empty() && !wild => {
                    errors.push("no hotplug devices to remove".to_string());
                    continue;
                }
                None => vm.hotplug.keys().copied().collect(),
            };
            for id in ids {
                match hv.hotplug_remove(&vm, id).await {
                    Ok(()) => self.with_ns(ns, |n| {
                        if let Some(v) = n.vms.get_mut(&vm.id) {
                            v.hotplug.remove(&id);
                        }
                    }),
                    Err(e) => errors.push(format!("{}: {e}", vm.name)),
                }
            }
        }
        if errors.is_empty() {
            Ok(self.ok())
        } else {
            Err(DomainError::Conflict(errors.join("\n")))
        }
    }

    pub(crate) async fn vm_migrate(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let hv = self.hypervisor()?;
        let (Some(name), Some(file)) = (args.string("vm"), args.string("filename")) else {
            let vms: Vec<Vm> = self.with_ns(ns, |n| {
                n.vms
                    .values()
                    .filter(|v| v.vm_type == VmType::Kvm && v.state.killable())
                    .cloned()
                    .collect()
            });
            let mut rows = Vec::new();
            for vm in vms {
                if let Ok(Some((status, pct))) = hv.migrate_status(&vm).await {
                    rows.push(vec![
                        vm.id.to_string(),
                        vm.name.clone(),
                        status,
                        format!("{pct:.2}"),
                    ]);
                }
            }
            // minimega 2.4's header really reads `complete (%%)`.
            return Ok(self.table(&["id", "name", "status", "complete (%%)"], rows));
        };
        let vm = self
            .with_ns(ns, |n| n.find_vm(name).cloned())
            .ok_or_else(|| DomainError::NotFound(format!("vm not found: {name}")))?;
        if vm.vm_type != VmType::Kvm {
            return Err(DomainError::invalid(format!("vm not KVM: {name}")));
        }
        let path = self.files_path(file);
        hv.migrate(&vm, &path.to_string_lossy())
            .await
            .map_err(DomainError::Host)?;
        self.set_state(ns, vm.id, None, crate::vm::registry::VmState::Paused, None);
        Ok(self.ok())
    }

    pub(crate) async fn disk_create(&self, args: &Args) -> DomainResult<Response> {
        let hv = self.hypervisor()?;
        let format = if args.flag("raw") { "raw" } else { "qcow2" };
        let path =
            crate::ops::files::inside(self.files_dir(), args.string("image").unwrap_or_default())?;
        let size = args.string("size").unwrap_or_default();
        hv.disk_create(format, &path, size)
            .await
            .map_err(DomainError::Host)?;
        Ok(self.ok())
    }

    pub(crate) async fn disk_snapshot(&self, args: &Args) -> DomainResult<Response> {
        let hv = self.hypervisor()?;
        let src =
            crate::ops::files::inside(self.files_dir(), args.string("image").unwrap_or_default())?;
        let (dst, print) = match args.string("dst") {
            Some(d) if d.contains('/') => {
                return Err(DomainError::invalid("dst image must filename without path"));
            }
            Some(d) => (self.files_dir().join(d), false),
            None => (
                self.files_dir()
                    .join(format!("snapshot{}", uuid::Uuid::new_v4().simple())),
                true,
            ),
        };
        hv.disk_snapshot(&src, &dst)
            .await
            .map_err(DomainError::Host)?;
        Ok(if print {
            self.text(dst.to_string_lossy())
        } else {
            self.ok()
        })
    }

    pub(crate) async fn disk_info(&self, args: &Args) -> DomainResult<Response> {
        let hv = self.hypervisor()?;
        let image = args.string("image").unwrap_or_default();
        let path = crate::ops::files::inside(self.files_dir(), image)?;
        let [format, vsize, dsize, backing] =
            hv.disk_info(&path).await.map_err(DomainError::Host)?;
        let row = vec![
            path.to_string_lossy().into_owned(),
            format,
            vsize,
            dsize,
            backing,
        ];
        Ok(self.table(
            &["image", "format", "virtualsize", "disksize", "backingfile"],
            vec![row],
        ))
    }
}
