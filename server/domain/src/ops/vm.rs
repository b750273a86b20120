//! VM operations: target resolution, info, launch (queue and schedule), tags.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use ferromega_api::{Args, Response};
use ferromega_command::ranges;

use crate::namespace::{Namespace, QueuedLaunch, Schedule};
use crate::vm::launch::parse_names;
use crate::vm::registry::{Vm, VmState, VmType, INFO_COLUMNS, SUMMARY_COLUMNS};
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// The VMs a `<vm target>` names in a namespace.
pub(crate) struct Targets {
    /// Whether `all` was given.
    pub(crate) wild: bool,
    /// IDs of the VMs found.
    pub(crate) ids: Vec<u64>,
    /// Names or IDs not found.
    pub(crate) missing: Vec<String>,
}

pub(crate) fn resolve(n: &Namespace, target: &str) -> DomainResult<Targets> {
    let names = ranges::split_list(target).map_err(DomainError::invalid)?;
    if names.iter().any(|t| t == "all") {
        return Ok(Targets {
            wild: true,
            ids: n.vms.keys().copied().collect(),
            missing: vec![],
        });
    }
    let mut t = Targets {
        wild: false,
        ids: vec![],
        missing: vec![],
    };
    for name in names {
        let found = match name.parse::<u64>() {
            Ok(id) => n.vms.get(&id),
            Err(_) => n.vms.values().find(|v| v.name == name),
        };
        match found {
            Some(vm) => t.ids.push(vm.id),
            None => t.missing.push(name),
        }
    }
    Ok(t)
}

/// Refuses a launch with nothing queued or no host.
pub(crate) fn check_launchable(n: &Namespace) -> DomainResult<()> {
    if n.queue.is_empty() {
        let e = "namespace must contain at least one queued VM to launch VMs";
        return Err(DomainError::invalid(e));
    }
    if n.hosts.is_empty() {
        let e = "namespace must contain at least one host to launch VMs";
        return Err(DomainError::invalid(e));
    }
    Ok(())
}

/// Appends a running schedule of `total` VMs over `hosts` hosts; returns its index.
pub(crate) fn push_schedule(n: &mut Namespace, total: usize, hosts: usize) -> usize {
    n.schedules.push(Schedule {
        start: SystemTime::now(),
        end: None,
        launched: 0,
        failures: 0,
        total,
        hosts,
    });
    n.schedules.len() - 1
}

impl ControlPlane {
    pub(crate) fn vm_info(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let columns = if args.flag("summary") {
            SUMMARY_COLUMNS
        } else {
            INFO_COLUMNS
        };
        self.refresh_ips(ns);
        let vlans = lock(&self.inner.vlans).clone();
        let vms: Vec<Vm> = self.with_ns(ns, |n| n.vms.values().cloned().collect());
        let rows = vms.iter().map(|vm| vm.row(columns, &vlans)).collect();
        let mut resp = self.table(columns, rows);
        resp.data = serde_json::to_value(&vms).ok();
        Ok(resp)
    }

    pub(crate) async fn vm_launch(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let Some(spec) = args.string("name") else {
            return self.launch_queue(ns).await;
        };
        let vm_type = if args.flag("container") {
            VmType::Container
        } else {
            VmType::Kvm
        };
        let names = parse_names(spec).map_err(DomainError::invalid)?;
        self.check_names_across(ns, &names).await?;
        let queueing = self.with_ns(ns, |n| -> DomainResult<bool> {
            let config = n.config.clone();
            if names.len() > 1 && !config.uuid.is_empty() {
                let e = "cannot launch multiple VMs with a pre-configured UUID";
                return Err(DomainError::invalid(e));
            }
            for name in names.iter().filter(|s| !s.is_empty()) {
                if n.vms.values().any(|v| &v.name == name) {
                    return Err(DomainError::Conflict(format!(
                        "vm already exists with name `{name}`"
                    )));
                }
                if n.queue.iter().any(|q| q.names.contains(name)) {
                    return Err(DomainError::Conflict(format!(
                        "vm already queued with name `{name}`"
                    )));
                }
            }
            if !config.uuid.is_empty() {
                let uuid = &config.uuid;
                if n.vms.values().any(|v| &v.uuid == uuid) {
                    return Err(DomainError::Conflict(format!(
                        "vm already exists with UUID `{uuid}`"
                    )));
                }
                if n.queue.iter().any(|q| &q.config.uuid == uuid) {
                    return Err(DomainError::Conflict(format!(
                        "vm already queued with UUID `{uuid}`"
                    )));
                }
            }
            n.queue.push(QueuedLaunch {
                names: names.clone(),
                vm_type,
                config,
            });
            Ok(n.queueing)
        })?;
        if queueing {
            Ok(self.ok())
        } else {
            self.launch_queue(ns).await
        }
    }

    /// Runs the scheduler over the namespace's queue. With one host, every VM lands
    /// here; with several, the mesh scheduler places them. Per-VM failures leave the VM
    /// in ERROR and are counted, as in minimega, and (beyond 2.4) returned: in the
    /// response's data on one host, as the error of `vm launch` across hosts.
    async fn launch_queue(&self, ns: &str) -> DomainResult<Response> {
        let me = self.host().to_string();
        let multi = self.with_ns(ns, |n| n.hosts.iter().any(|h| *h != me));
        if multi {
            return self.launch_across(ns).await;
        }
        let (queue, index) = self.with_ns(ns, |n| {
            check_launchable(n)?;
            let queue = std::mem::take(&mut n.queue);
            let total = queue.iter().map(|q| q.names.len()).sum();
            Ok::<_, DomainError>((queue, push_schedule(n, total, 1)))
        })?;
        let vms: Vec<_> = queue
            .into_iter()
            .flat_map(|q| {
                q.names
                    .into_iter()
                    .map(move |name| (name, q.vm_type, q.config.clone()))
            })
            .collect();
        let total = vms.len();
        let (launched, errors) = self.launch_vms(ns, vms).await;
        self.finish_schedule(ns, index, launched, errors.len());
        // The command line prints nothing, as minimega (scripts that ran there run
        // unchanged); API callers find the failures in the response's data.
        let mut r = self.ok();
        r.data = Some(serde_json::json!({
            "launched": launched,
            "failed": errors.len(),
            "total": total,
            "errors": errors,
        }));
        Ok(r)
    }

    /// Records the end of schedule `index`.
    pub(crate) fn finish_schedule(&self, ns: &str, index: usize, launched: usize, failures: usize) {
        self.with_ns(ns, |n| {
            if let Some(s) = n.schedules.get_mut(index) {
                s.launched = launched;
                s.failures = failures;
                s.end = Some(SystemTime::now());
            }
        });
    }

    /// Registers and starts VMs here, concurrently (no lock is held while processes
    /// start). Returns how many started and the failures as `name: reason` lines.
    pub(crate) async fn launch_vms(
        &self,
        ns: &str,
        vms: Vec<(String, VmType, crate::vm::config::VmConfig)>,
    ) -> (usize, Vec<String>) {
        let mut tasks = tokio::task::JoinSet::new();
        for (name, vm_type, config) in vms {
            let id = self.register_vm(ns, name, vm_type, &config);
            let cp = self.clone();
            let ns = ns.to_string();
            tasks.spawn(async move {
                let r = cp.start_process(&ns, id).await;
                let name = cp
                    .with_ns(&ns, |n| n.vms.get(&id).map(|v| v.name.clone()))
                    .unwrap_or_else(|| id.to_string());
                r.map_err(|e| format!("{name}: {e}"))
            });
        }
        let (mut launched, mut errors) = (0, Vec::new());
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok(())) => launched += 1,
                Ok(Err(e)) => errors.push(e),
                Err(e) => errors.push(format!("launch task: {e}")),
            }
        }
        (launched, errors)
    }

    /// Creates the VM record in BUILDING and returns its ID.
    pub(crate) fn register_vm(
        &self,
        ns: &str,
        name: String,
        vm_type: VmType,
        config: &crate::vm::config::VmConfig,
    ) -> u64 {
        let id = self.inner.next_vm_id.fetch_add(1, Ordering::SeqCst);
        self.with_ns(ns, |n| {
            let name = if name.is_empty() {
                let name = format!("vm-{}", n.vm_counter);
                n.vm_counter += 1;
                name
            } else {
                name
            };
            let uuid = if config.uuid.is_empty() {
                uuid::Uuid::new_v4().to_string()
            } else {
                config.uuid.clone()
            };
            let mut config = config.clone();
            if vm_type == VmType::Container && config.hostname.is_empty() {
                config.hostname = name.clone();
            }
            let tags = config.tags.clone();
            let vm = Vm {
                id,
                name,
                namespace: ns.to_string(),
                host: self.host().to_string(),
                state: VmState::Building,
                vm_type,
                uuid,
                config,
                tags,
                launched_ms: crate::vm::registry::now_ms(),
                generation: 0,
                pid: 0,
                cc_active: false,
                hotplug: Default::default(),
                taps: Vec::new(),
                qos: Default::default(),
                ips: Vec::new(),
            };
            self.emit_vm(&vm);
            n.vms.insert(id, vm);
        });
        id
    }

    pub(crate) fn vm_tag(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or_default();
        let key = args.string("key");
        self.with_ns(ns, |n| {
            let t = resolve(n, target)?;
            if !t.wild && t.ids.is_empty() {
                let m = t.missing.first().cloned().unwrap_or_default();
                return Err(DomainError::NotFound(format!("vm not found: {m}")));
            }
            if let (Some(key), Some(value)) = (key, args.string("value")) {
                if key == "all" {
                    return Err(DomainError::invalid("cannot assign to wildcard"));
                }
                for id in &t.ids {
                    if let Some(vm) = n.vms.get_mut(id) {
                        vm.tags.insert(key.to_string(), value.to_string());
                    }
                }
                return Ok(self.ok());
            }
            let vms = t.ids.iter().filter_map(|id| n.vms.get(id));
            match key {
                Some(k) if k != "all" => {
                    let rows = vms
                        .filter_map(|vm| vm.tags.get(k).map(|v| vec![vm.name.clone(), v.clone()]))
                        .collect();
                    Ok(self.table(&["name", "value"], rows))
                }
                _ => {
                    let rows = vms
                        .flat_map(|vm| {
                            vm.tags
                                .iter()
                                .map(|(k, v)| vec![vm.name.clone(), k.clone(), v.clone()])
                        })
                        .collect();
                    Ok(self.table(&["name", "tag", "value"], rows))
                }
            }
        })
    }

    pub(crate) fn clear_vm_tag(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or("all");
        let tag = args.string("tag");
        self.with_ns(ns, |n| {
            let t = resolve(n, target)?;
            for id in &t.ids {
                if let Some(vm) = n.vms.get_mut(id) {
                    match tag {
                        Some(tag) if tag != "all" => drop(vm.tags.remove(tag)),
                        _ => vm.tags.clear(),
                    }
                }
            }
            Ok(self.ok())
        })
    }
}

/// The error of a launch where `failed` of `total` VMs failed: each host's failures
/// (`name: reason` lines) after its name.
pub(crate) fn launch_failures(
    failed: usize,
    total: usize,
    by_host: &[(String, Vec<String>)],
) -> DomainError {
    let failing: Vec<String> = by_host
        .iter()
        .filter(|(_, errors)| !errors.is_empty())
        .map(|(host, errors)| format!("{host}: {}", errors.join("; ")))
        .collect();
    DomainError::Host(format!(
        "{failed} of {total} VMs failed to launch: {}",
        failing.join("; ")
    ))
}
