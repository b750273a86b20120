//! The VM lifecycle against the runtimes: start a VM's process, watch it end, start/stop/
//! kill/flush, tear namespaces down, persist VM records and recover them after a crash.
//!
//! Each VM's record is written to `<base>/<id>/vm.json` on every state change, so a
//! restarted server finds the VMs a killed one was running (see [`ControlPlane::recover`]).

use std::path::PathBuf;
use std::sync::Arc;

use ferromega_api::{Args, Response};

use crate::backends::{ExitStatus, Launched, VmRuntime};
use crate::namespace::Namespace;
use crate::ops::vm::resolve;
use crate::vm::registry::{Vm, VmState, VmType};
use crate::{ControlPlane, DomainError, DomainResult};

/// What happened to one VM of a target.
pub(crate) enum Action {
    /// Not applicable in its state.
    Skip,
    /// Applied.
    Done,
}

impl ControlPlane {
    /// The runtime of a VM type, if this server has one.
    pub(crate) fn runtime(&self, t: VmType) -> Option<Arc<dyn VmRuntime>> {
        match t {
            VmType::Kvm => self
                .inner
                .backends
                .kvm
                .clone()
                .map(|k| k as Arc<dyn VmRuntime>),
            VmType::Container => self.inner.backends.container.clone(),
        }
    }

    fn runtime_of(&self, vm: &Vm) -> Result<Arc<dyn VmRuntime>, String> {
        self.runtime(vm.vm_type)
            .ok_or_else(|| format!("no {} runtime on this host", vm.vm_type.as_str()))
    }

    /// `<base>/<id>`: the VM's instance directory.
    pub(crate) fn instance_dir(&self, id: u64) -> PathBuf {
        self.base().join(id.to_string())
    }

    /// Writes the VM's record and state into its instance directory (best effort).
    pub(crate) fn persist(&self, vm: &Vm) {
        let dir = self.instance_dir(vm.id);
        let write = || -> std::io::Result<()> {
            std::fs::create_dir_all(&dir)?;
            let json = serde_json::to_vec_pretty(vm).map_err(std::io::Error::other)?;
            std::fs::write(dir.join("vm.json.tmp"), json)?;
            std::fs::rename(dir.join("vm.json.tmp"), dir.join("vm.json"))?;
            std::fs::write(dir.join("name"), &vm.name)?;
            std::fs::write(dir.join("state"), vm.state.as_str())
        };
        if let Err(e) = write() {
            tracing::warn!("cannot write {}: {e}", dir.display());
        }
    }

    /// Sets a VM's state (and its `error` tag for ERROR) if `generation` is still its
    /// current launch (None: any), and persists it.
    pub(crate) fn set_state(
        &self,
        ns: &str,
        id: u64,
        generation: Option<u64>,
        state: VmState,
        error: Option<String>,
    ) {
        let vm = self.with_ns(ns, |n| {
            let vm = n.vms.get_mut(&id)?;
            if generation.is_some_and(|g| g != vm.generation) {
                return None;
            }
            vm.state = state;
            if let Some(e) = error {
                vm.tags.insert("error".to_string(), e);
            }
            Some(vm.clone())
        });
        if let Some(vm) = vm {
            self.persist(&vm);
            self.emit_vm(&vm);
        }
    }

    /// Records a started process and watches it: when it ends, a VM still in a
    /// killable state becomes QUIT (clean exit) or ERROR (with the reason).
    fn adopt(&self, ns: &str, id: u64, launched: Launched, state: VmState) {
        let generation = self.with_ns(ns, |n| {
            n.vms.get_mut(&id).map(|v| {
                v.pid = launched.pid;
                v.state = state;
                v.generation += 1;
                v.generation
            })
        });
        let Some(generation) = generation else { return };
        if let Some(vm) = self.with_ns(ns, |n| n.vms.get(&id).cloned()) {
            self.persist(&vm);
            self.emit_vm(&vm);
            self.cc_attach(ns, &vm, &self.instance_dir(id));
        }
        let cp = self.clone();
        let ns = ns.to_string();
        let exited = launched.exited;
        tokio::spawn(async move {
            let status: ExitStatus = exited.await.unwrap_or(Ok(()));
            let killable = cp.with_ns(&ns, |n| n.vms.get(&id).map(|v| v.state.killable()));
            if killable != Some(true) {
                return;
            }
            match status {
                Ok(()) => cp.set_state(&ns, id, Some(generation), VmState::Quit, None),
                Err(e) => cp.set_state(&ns, id, Some(generation), VmState::Error, Some(e)),
            }
        });
    }

    /// Starts the VM's process through its runtime, paused; on failure the VM is left
    /// in ERROR with the reason in its `error` tag.
    pub(crate) async fn start_process(&self, ns: &str, id: u64) -> Result<(), String> {
        let Some(vm) = self.with_ns(ns, |n| n.vms.get(&id).cloned()) else {
            return Err(format!("vm not found: {id}"));
        };
        let result = async {
            if vm.vm_type == VmType::Container && vm.config.filesystem.is_empty() {
                return Err("unable to create container without a configured filesystem".into());
            }
            let rt = self.runtime_of(&vm)?;
            let dir = self.instance_dir(vm.id);
            std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
            self.launch_with_nics(ns, &vm, rt.as_ref(), &dir).await
        }
        .await;
        match result {
            Ok(launched) => {
                let state = if launched.running {
                    VmState::Running
                } else {
                    VmState::Building
                };
                self.adopt(ns, id, launched, state);
                Ok(())
            }
            Err(e) => {
                tracing::error!("launching {} failed: {e}", vm.name);
                self.set_state(ns, id, None, VmState::Error, Some(e.clone()));
                Err(e)
            }
        }
    }

    /// Applies `f` to every VM of `target`, with minimega's error rules: a single
    /// named VM that is missing → `vm not found`, not applicable → `VM state error`.
    pub(crate) async fn for_targets<F>(
        &self,
        ns: &str,
        target: &str,
        f: F,
    ) -> DomainResult<Response>
    where
        F: AsyncFn(&ControlPlane, Vm, bool) -> Result<Action, String>,
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
        if !targets.wild && targets.ids.is_empty() {
            let m = targets.missing.join(", ");
            return Err(DomainError::NotFound(format!("vm not found: {m}")));
        }
        for m in &targets.missing {
            tracing::info!("vm not found: {m}");
        }
        // Every VM of the target at once: `vm start all` on 500 VMs is 500 QMP round
        // trips in parallel, not in a row.
        let names: Vec<String> = vms.iter().map(|v| v.name.clone()).collect();
        let f = &f;
        let results =
            futures::future::join_all(vms.into_iter().map(|vm| f(self, vm, targets.wild))).await;
        let mut errors = Vec::new();
        for (name, result) in names.into_iter().zip(results) {
            match result {
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

    async fn resume_vm(&self, ns: &str, vm: &Vm) -> Result<Action, String> {
        let rt = self.runtime_of(vm)?;
        match rt.resume(vm).await {
            Ok(()) => {
                self.set_state(ns, vm.id, None, VmState::Running, None);
                Ok(Action::Done)
            }
            Err(e) => {
                self.set_state(ns, vm.id, None, VmState::Error, Some(e.clone()));
                Err(e)
            }
        }
    }

    pub(crate) async fn vm_start(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or_default();
        let ns = ns.to_string();
        self.for_targets(
            &ns.clone(),
            target,
            async move |cp: &ControlPlane, vm: Vm, wild| match vm.state {
                VmState::Running => Ok(Action::Skip),
                VmState::Quit | VmState::Error if wild => Ok(Action::Skip),
                VmState::Quit | VmState::Error => {
                    cp.with_ns(&ns, |n| {
                        if let Some(v) = n.vms.get_mut(&vm.id) {
                            v.tags.remove("error");
                        }
                    });
                    cp.start_process(&ns, vm.id).await?;
                    let fresh = cp.with_ns(&ns, |n| n.vms.get(&vm.id).cloned());
                    cp.resume_vm(&ns, &fresh.unwrap_or(vm)).await
                }
                VmState::Building | VmState::Paused => cp.resume_vm(&ns, &vm).await,
            },
        )
        .await
    }

    pub(crate) async fn vm_stop(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or_default();
        let ns = ns.to_string();
        self.for_targets(
            &ns.clone(),
            target,
            async move |cp: &ControlPlane, vm: Vm, _| {
                if vm.name == "vince" {
                    return Err("vince is unstoppable".to_string());
                }
                if vm.state != VmState::Running {
                    return Ok(Action::Skip);
                }
                cp.runtime_of(&vm)?.pause(&vm).await?;
                cp.set_state(&ns, vm.id, None, VmState::Paused, None);
                Ok(Action::Done)
            },
        )
        .await
    }

    pub(crate) async fn vm_kill(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or_default();
        let ns = ns.to_string();
        self.for_targets(
            &ns.clone(),
            target,
            async move |cp: &ControlPlane, vm: Vm, _| {
                if !vm.state.killable() {
                    return Ok(Action::Skip);
                }
                cp.kill_vm(&ns, &vm).await?;
                Ok(Action::Done)
            },
        )
        .await
    }

    /// Kills a VM's process, waits for it, and leaves the VM in QUIT.
    async fn kill_vm(&self, ns: &str, vm: &Vm) -> Result<(), String> {
        if let Ok(rt) = self.runtime_of(vm) {
            rt.kill(vm).await?;
        }
        self.set_state(ns, vm.id, None, VmState::Quit, None);
        Ok(())
    }

    pub(crate) async fn vm_flush(&self, ns: &str) -> DomainResult<Response> {
        let gone: Vec<Vm> = self.with_ns(ns, |n| {
            let gone = n
                .vms
                .values()
                .filter(|v| !v.state.killable())
                .cloned()
                .collect();
            n.vms.retain(|_, v| v.state.killable());
            gone
        });
        let cc = self.cc_server(ns);
        for vm in gone {
            cc.unregister(&vm.uuid);
            self.emit_removed(&vm);
            self.remove_instance(&vm).await;
        }
        Ok(self.ok())
    }

    /// Releases a dead VM's host resources and removes its instance directory.
    async fn remove_instance(&self, vm: &Vm) {
        self.vnc_stop_vm(&vm.namespace, &vm.name).await;
        self.nics_destroy(vm).await;
        let dir = self.instance_dir(vm.id);
        if let Ok(rt) = self.runtime_of(vm) {
            if let Err(e) = rt.destroy(vm, &dir).await {
                tracing::warn!("releasing {}: {e}", vm.name);
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("cannot remove {}: {e}", dir.display());
            }
        }
    }

    /// Kills every VM of a namespace being destroyed and removes their instance
    /// directories.
    pub(crate) async fn teardown_vms(&self, n: &Namespace) {
        for vm in n.vms.values() {
            if vm.state.killable() {
                if let Ok(rt) = self.runtime_of(vm) {
                    if let Err(e) = rt.kill(vm).await {
                        tracing::warn!("killing {}: {e}", vm.name);
                    }
                }
            }
            self.emit_removed(vm);
            self.remove_instance(vm).await;
        }
    }

    /// Finds the VMs a previous server on this base left behind (`<base>/<id>/vm.json`)
    /// and registers them again: a process still running is taken over; a VM whose
    /// process is gone is shown as QUIT (or stays ERROR). Returns how many were found.
    pub async fn recover(&self) -> usize {
        let Ok(entries) = std::fs::read_dir(self.base()) else {
            return 0;
        };
        let mut found = 0;
        let mut max_id = None;
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path().join("vm.json");
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let mut vm: Vm = match serde_json::from_str(&text) {
                Ok(vm) => vm,
                Err(e) => {
                    tracing::warn!("ignoring {}: {e}", path.display());
                    continue;
                }
            };
            found += 1;
            max_id = max_id.max(Some(vm.id));
            vm.host = self.host().to_string();
            let ns = vm.namespace.clone();
            let id = vm.id;
            let was = vm.state;
            self.with_ns(&ns, |n| {
                n.vm_counter = n.vm_counter.max(vm_number(&vm.name).map_or(0, |k| k + 1));
                n.vms.insert(id, vm.clone());
            });
            if !was.killable() {
                continue;
            }
            let recovered = match self.runtime_of(&vm) {
                Ok(rt) => rt.recover(&vm, &self.instance_dir(id)).await,
                Err(e) => Err(e),
            };
            match recovered {
                Ok(launched) => {
                    let state = match (launched.running, was) {
                        (true, _) => VmState::Running,
                        (false, VmState::Paused) => VmState::Paused,
                        (false, _) => VmState::Building,
                    };
                    self.adopt(&ns, id, launched, state);
                }
                Err(e) => {
                    tracing::info!("vm {} did not survive: {e}", vm.name);
                    self.set_state(&ns, id, None, VmState::Quit, None);
                }
            }
        }
        if let Some(max) = max_id {
            self.inner
                .next_vm_id
                .fetch_max(max + 1, std::sync::atomic::Ordering::SeqCst);
        }
        found
    }
}

/// `N` of a `vm-N` name.
fn vm_number(name: &str) -> Option<u64> {
    name.strip_prefix("vm-")?.parse().ok()
}
