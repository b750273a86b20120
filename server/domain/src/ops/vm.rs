//! VM operations: launch (queue and schedule), info, start/stop/kill, flush, tags.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::SystemTime;

use ferromega_api::{Args, Response};
use ferromega_command::ranges;

use crate::backends::VmRuntime;
use crate::namespace::{Namespace, QueuedLaunch, Schedule};
use crate::vm::launch::parse_names;
use crate::vm::registry::{Vm, VmState, VmType, INFO_COLUMNS, SUMMARY_COLUMNS};
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// The VMs a `<vm target>` names in a namespace.
struct Targets {
    /// Whether `all` was given.
    wild: bool,
    /// IDs of the VMs found.
    ids: Vec<u64>,
    /// Names or IDs not found.
    missing: Vec<String>,
}

fn resolve(n: &Namespace, target: &str) -> DomainResult<Targets> {
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

/// What happens to one VM of a target.
enum Action {
    /// Not applicable in its state.
    Skip,
    /// Applied.
    Done,
}

impl ControlPlane {
    fn runtime(&self, t: VmType) -> Option<Arc<dyn VmRuntime>> {
        match t {
            VmType::Kvm => self.inner.backends.kvm.clone(),
            VmType::Container => self.inner.backends.container.clone(),
        }
    }

    /// Applies `f` to every VM of `target`, with minimega's error rules: a single
    /// named VM that is missing → `vm not found`, not applicable → `VM state error`.
    async fn for_targets<F>(&self, ns: &str, target: &str, mut f: F) -> DomainResult<Response>
    where
        F: AsyncFnMut(&ControlPlane, Vm, bool) -> Result<Action, String>,
    {
        let (targets, vms) = self.with_ns(ns, |n| {
            resolve(n, target).map(|t| {
                let vms: Vec<Vm> = t
                    .ids
                    .iter()
                    .filter_map(|id| n.vms.get(id).cloned())
                    .collect();
                (t, vms)
            })
        })?;
        let single = !targets.wild && targets.ids.len() + targets.missing.len() == 1;
        if single {
            if let Some(m) = targets.missing.first() {
                return Err(DomainError::NotFound(format!("vm not found: {m}")));
            }
        }
        for m in &targets.missing {
            tracing::info!("vm not found: {m}");
        }
        let mut errors = Vec::new();
        for vm in vms {
            let name = vm.name.clone();
            match f(self, vm, targets.wild).await {
                Ok(Action::Done) => {}
                Ok(Action::Skip) if single => errors.push(format!("VM state error: {name}")),
                Ok(Action::Skip) => {}
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(self.ok())
        } else {
            Err(DomainError::Conflict(errors.join("\n")))
        }
    }

    /// Sets a VM's state (and its `error` tag for ERROR).
    fn set_state(&self, ns: &str, id: u64, state: VmState, error: Option<String>) {
        self.with_ns(ns, |n| {
            if let Some(vm) = n.vms.get_mut(&id) {
                vm.state = state;
                if let Some(e) = error {
                    vm.tags.insert("error".to_string(), e);
                }
            }
        });
    }

    pub(crate) fn vm_info(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let columns = if args.flag("summary") {
            SUMMARY_COLUMNS
        } else {
            INFO_COLUMNS
        };
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
    /// here; per-VM failures leave the VM in ERROR and are counted, as in minimega.
    async fn launch_queue(&self, ns: &str) -> DomainResult<Response> {
        let (queue, index) = self.with_ns(ns, |n| {
            if n.queue.is_empty() {
                let e = "namespace must contain at least one queued VM to launch VMs";
                return Err(DomainError::invalid(e));
            }
            if n.hosts.is_empty() {
                let e = "namespace must contain at least one host to launch VMs";
                return Err(DomainError::invalid(e));
            }
            let queue = std::mem::take(&mut n.queue);
            let total = queue.iter().map(|q| q.names.len()).sum();
            n.schedules.push(Schedule {
                start: SystemTime::now(),
                end: None,
                launched: 0,
                failures: 0,
                total,
                hosts: 1,
            });
            Ok((queue, n.schedules.len() - 1))
        })?;
        let mut new_ids = Vec::new();
        for q in queue {
            for name in q.names {
                new_ids.push(self.register_vm(ns, name, q.vm_type, &q.config));
            }
        }
        let mut failures = 0;
        for id in &new_ids {
            if self.start_process(ns, *id).await.is_err() {
                failures += 1;
            }
        }
        self.with_ns(ns, |n| {
            if let Some(s) = n.schedules.get_mut(index) {
                s.launched = new_ids.len() - failures;
                s.failures = failures;
                s.end = Some(SystemTime::now());
            }
        });
        Ok(self.ok())
    }

    /// Creates the VM record in BUILDING and returns its ID.
    fn register_vm(
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
                launched: SystemTime::now(),
                pid: 0,
                cc_active: false,
            };
            n.vms.insert(id, vm);
        });
        id
    }

    /// Starts the VM's process through its runtime; on failure the VM is left in
    /// ERROR with the reason in its `error` tag.
    async fn start_process(&self, ns: &str, id: u64) -> Result<(), String> {
        let Some(vm) = self.with_ns(ns, |n| n.vms.get(&id).cloned()) else {
            return Err(format!("vm not found: {id}"));
        };
        let result = if vm.vm_type == VmType::Container && vm.config.filesystem.is_empty() {
            Err("unable to create container without a configured filesystem".to_string())
        } else {
            match self.runtime(vm.vm_type) {
                Some(rt) => rt.launch(&vm).await,
                None => Err(format!("no {} runtime on this host", vm.vm_type.as_str())),
            }
        };
        match result {
            Ok(pid) => {
                self.with_ns(ns, |n| {
                    if let Some(v) = n.vms.get_mut(&id) {
                        v.pid = pid;
                        v.state = VmState::Building;
                    }
                });
                Ok(())
            }
            Err(e) => {
                tracing::error!("launching {} failed: {e}", vm.name);
                self.set_state(ns, id, VmState::Error, Some(e.clone()));
                Err(e)
            }
        }
    }

    pub(crate) async fn vm_start(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or_default();
        let ns_owned = ns.to_string();
        self.for_targets(
            ns,
            target,
            async move |cp: &ControlPlane, vm: Vm, wild: bool| match vm.state {
                VmState::Running => Ok(Action::Skip),
                VmState::Quit | VmState::Error if wild => Ok(Action::Skip),
                VmState::Quit | VmState::Error => {
                    cp.set_state(&ns_owned, vm.id, VmState::Building, None);
                    cp.start_process(&ns_owned, vm.id).await?;
                    cp.resume_vm(&ns_owned, &vm).await
                }
                VmState::Building | VmState::Paused => cp.resume_vm(&ns_owned, &vm).await,
            },
        )
        .await
    }

    async fn resume_vm(&self, ns: &str, vm: &Vm) -> Result<Action, String> {
        let rt = self
            .runtime(vm.vm_type)
            .ok_or_else(|| format!("no {} runtime", vm.vm_type.as_str()))?;
        match rt.resume(vm).await {
            Ok(()) => {
                self.set_state(ns, vm.id, VmState::Running, None);
                Ok(Action::Done)
            }
            Err(e) => {
                self.set_state(ns, vm.id, VmState::Error, Some(e.clone()));
                Err(e)
            }
        }
    }

    pub(crate) fn vm_stop(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or_default().to_string();
        self.blocking_targets(ns, &target, |vm| {
            if vm.name == "vince" {
                return Err("vince is unstoppable".to_string());
            }
            Ok(vm.state == VmState::Running)
        })
    }

    pub(crate) fn vm_kill(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or_default().to_string();
        self.blocking_targets(ns, &target, |vm| Ok(vm.state.killable()))
    }

    /// Checks `vm stop`/`vm kill` targets. Without a runtime no VM ever leaves
    /// BUILDING through a process, so these only validate; the KVM and container
    /// issues make them pause and kill processes.
    fn blocking_targets(
        &self,
        ns: &str,
        target: &str,
        applies: impl Fn(&Vm) -> Result<bool, String>,
    ) -> DomainResult<Response> {
        let (targets, vms) = self.with_ns(ns, |n| {
            resolve(n, target).map(|t| {
                let vms: Vec<Vm> = t
                    .ids
                    .iter()
                    .filter_map(|id| n.vms.get(id).cloned())
                    .collect();
                (t, vms)
            })
        })?;
        let single = !targets.wild && targets.ids.len() + targets.missing.len() == 1;
        if single {
            if let Some(m) = targets.missing.first() {
                return Err(DomainError::NotFound(format!("vm not found: {m}")));
            }
        }
        let mut errors = Vec::new();
        for vm in &vms {
            match applies(vm) {
                Ok(true) => match self.runtime(vm.vm_type) {
                    Some(_) => {}
                    None => errors.push(format!("no {} runtime on this host", vm.vm_type.as_str())),
                },
                Ok(false) if single => errors.push(format!("VM state error: {}", vm.name)),
                Ok(false) => {}
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(self.ok())
        } else {
            Err(DomainError::Conflict(errors.join("\n")))
        }
    }

    pub(crate) fn vm_flush(&self, ns: &str) -> DomainResult<Response> {
        self.with_ns(ns, |n| n.vms.retain(|_, v| v.state.killable()));
        Ok(self.ok())
    }

    /// Forgets every VM of a namespace being destroyed. Without runtimes no process
    /// exists; the KVM and container issues kill processes and remove their files here.
    pub(crate) fn teardown_vms(&self, n: &Namespace) {
        for vm in n.vms.values() {
            tracing::info!("removing vm {} ({})", vm.name, vm.id);
        }
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
