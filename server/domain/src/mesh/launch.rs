//! `vm launch` over several hosts: unique names across hosts, host figures, the
//! scheduler's placement, then each host's share launched concurrently (here directly,
//! on peers as a scheduled launch). Failures are counted in `ns schedules` and, beyond
//! minimega 2.4, returned to the caller per host.

use std::collections::{BTreeMap, BTreeSet};

use ferromega_api::mesh::{PeerLaunch, PeerRequest};
use ferromega_api::{Args, Response};

use crate::engine::Session;
use crate::mesh::schedule::{schedule, Group, HostLoad};
use crate::namespace::QueuedLaunch;
use crate::ops::vm::{check_launchable, push_schedule};
use crate::vm::config::VmConfig;
use crate::vm::registry::VmType;
use crate::{ControlPlane, DomainError, DomainResult};

fn parse_type(t: &str) -> DomainResult<VmType> {
    match t {
        "kvm" => Ok(VmType::Kvm),
        "container" => Ok(VmType::Container),
        other => Err(DomainError::invalid(format!("unknown vm type: {other}"))),
    }
}

/// A host's answer to a scheduled launch: (launched, failed) from its data, or every
/// VM failed when the host did not answer.
fn launch_counts(r: &Response, asked: usize) -> (usize, usize) {
    let get = |k: &str| {
        r.data
            .as_ref()
            .and_then(|d| d.get(k))
            .and_then(serde_json::Value::as_u64)
    };
    match (get("launched"), get("failed")) {
        (Some(l), Some(f)) => (l as usize, f as usize),
        _ => (0, asked),
    }
}

impl ControlPlane {
    /// Runs a read-only operation across the namespace's hosts from the head's point of
    /// view; a host that fails it fails the whole (`what` says what was being done).
    async fn across(&self, ns: &str, op: &str, what: &str) -> DomainResult<Vec<Response>> {
        let mut session = Session::in_namespace(ns);
        let resps = self
            .dispatch_scoped(&mut session, op, &Args::default())
            .await?;
        match resps.iter().find(|r| !r.error.is_empty()) {
            Some(r) => Err(DomainError::Host(format!("{what} {}: {}", r.host, r.error))),
            None => Ok(resps),
        }
    }

    /// Names of the namespace's VMs on all its hosts.
    async fn names_across(&self, ns: &str) -> DomainResult<BTreeSet<String>> {
        let resps = self.across(ns, "vm_info", "cannot list VMs of").await?;
        let mut names = BTreeSet::new();
        for r in resps {
            let vms = r.data.as_ref().and_then(|d| d.as_array()).cloned();
            for vm in vms.unwrap_or_default() {
                if let Some(n) = vm.get("name").and_then(|n| n.as_str()) {
                    names.insert(n.to_string());
                }
            }
        }
        Ok(names)
    }

    /// Figures of every host of the namespace, for the scheduler.
    async fn loads_across(&self, ns: &str) -> DomainResult<Vec<HostLoad>> {
        let resps = self.across(ns, "host", "cannot schedule on").await?;
        let mut loads = Vec::new();
        for r in resps {
            let values: BTreeMap<String, String> = r
                .data
                .as_ref()
                .and_then(|d| serde_json::from_value(d.clone()).ok())
                .unwrap_or_default();
            loads.push(HostLoad::from_values(&r.host, &values));
        }
        Ok(loads)
    }

    /// Refuses names already used by a VM on another host of the namespace (a
    /// namespace on this host alone checks its own VMs when queueing).
    pub(crate) async fn check_names_across(&self, ns: &str, names: &[String]) -> DomainResult<()> {
        let me = self.host().to_string();
        if !self.with_ns(ns, |n| n.hosts.iter().any(|h| *h != me)) {
            return Ok(());
        }
        let taken = self.names_across(ns).await?;
        match names.iter().find(|n| !n.is_empty() && taken.contains(*n)) {
            Some(name) => Err(DomainError::Conflict(format!(
                "vm already exists with name `{name}`"
            ))),
            None => Ok(()),
        }
    }

    /// Launches the queue over the namespace's hosts. Scheduling errors leave the queue
    /// intact; per-VM failures come back as one error response per failing host.
    pub(crate) async fn launch_across(&self, ns: &str) -> DomainResult<Response> {
        let (queue, metric) = self.with_ns(ns, |n| {
            check_launchable(n).map(|()| (n.queue.clone(), n.load))
        })?;
        let mut taken = self.names_across(ns).await?;
        for name in queue.iter().flat_map(|q| &q.names) {
            if !name.is_empty() && taken.contains(name) {
                return Err(DomainError::Conflict(format!(
                    "vm already exists with name `{name}`"
                )));
            }
        }
        taken.extend(queue.iter().flat_map(|q| q.names.iter().cloned()));
        let loads = self.loads_across(ns).await?;
        // Unnamed VMs get `vm-N` from this (the head's) counter, skipping names in use
        // on any host.
        let named: Vec<QueuedLaunch> = self.with_ns(ns, |n| {
            queue
                .iter()
                .map(|q| {
                    let mut q = q.clone();
                    for name in q.names.iter_mut().filter(|s| s.is_empty()) {
                        loop {
                            let candidate = format!("vm-{}", n.vm_counter);
                            n.vm_counter += 1;
                            if taken.insert(candidate.clone()) {
                                *name = candidate;
                                break;
                            }
                        }
                    }
                    q
                })
                .collect()
        });
        let groups: Vec<Group> = named
            .iter()
            .map(|q| Group {
                names: q.names.clone(),
                host: q.config.schedule.clone(),
                coschedule: q.config.coschedule,
                vcpus: q.config.vcpus,
                memory: q.config.memory,
                nics: q.config.networks.len() as u64,
            })
            .collect();
        let placement = schedule(&groups, &loads, metric).map_err(DomainError::invalid)?;
        let total: usize = groups.iter().map(|g| g.names.len()).sum();
        let index = self.with_ns(ns, |n| {
            n.queue.clear();
            push_schedule(n, total, placement.len())
        });
        let ns_hosts: Vec<String> = self.with_ns(ns, |n| n.hosts.iter().cloned().collect());
        let tunnels_for = |host: &str| -> Vec<String> {
            ns_hosts
                .iter()
                .filter(|h| *h != host)
                .filter_map(|h| self.host_ip(h))
                .collect()
        };
        let tunnels_for = &tunnels_for;
        let per_host = placement.iter().map(|(host, vms)| {
            let named = &named;
            async move {
                let mut by_group: BTreeMap<usize, Vec<String>> = BTreeMap::new();
                for (g, name) in vms {
                    by_group.entry(*g).or_default().push(name.clone());
                }
                let (mut launched, mut failed, mut errors) = (0, 0, Vec::new());
                for (g, names) in by_group {
                    let q = &named[g];
                    let asked = names.len();
                    let launch = PeerLaunch {
                        names,
                        vm_type: q.vm_type.as_str().to_string(),
                        config: serde_json::to_value(&q.config).unwrap_or_default(),
                        tunnels: tunnels_for(host),
                        files_dir: self.files_dir().display().to_string(),
                    };
                    let r = self.launch_on(ns, host, launch).await;
                    let (l, f) = launch_counts(&r, asked);
                    launched += l;
                    failed += f;
                    if !r.error.is_empty() {
                        errors.push(r.error);
                    }
                }
                (host.clone(), launched, failed, errors)
            }
        });
        let results = futures::future::join_all(per_host).await;
        let launched = results.iter().map(|r| r.1).sum();
        let failed = results.iter().map(|r| r.2).sum();
        self.finish_schedule(ns, index, launched, failed);
        let by_host: Vec<(String, Vec<String>)> = results
            .into_iter()
            .map(|(host, _, _, errors)| (host, errors))
            .collect();
        if by_host.iter().all(|(_, errors)| errors.is_empty()) {
            Ok(self.ok())
        } else {
            Err(crate::ops::vm::launch_failures(failed, total, &by_host))
        }
    }

    /// One host's share of a schedule: here directly, elsewhere over the peer link.
    async fn launch_on(&self, ns: &str, host: &str, launch: PeerLaunch) -> Response {
        if host == self.host() {
            return self.peer_launch_response(ns, launch).await;
        }
        let req = PeerRequest {
            from: self.host().to_string(),
            namespace: ns.to_string(),
            source: ns.to_string(),
            launch: Some(launch),
            ..PeerRequest::default()
        };
        self.call_peer(host, &req)
            .await
            .into_iter()
            .next()
            .unwrap_or_else(|| Response::error(host, format!("{host}: no answer")))
    }

    /// Launches VMs the scheduler placed here; the response's data counts them.
    pub(crate) async fn peer_launch_response(&self, ns: &str, launch: PeerLaunch) -> Response {
        let asked = launch.names.len();
        let mut r = match self.launch_here(ns, launch).await {
            Ok((launched, errors)) => {
                let mut r = self.ok();
                r.error = errors.join("; ");
                r.data = Some(serde_json::json!({"launched": launched, "failed": errors.len()}));
                r
            }
            Err(e) => {
                let mut r = Response::error(self.host(), e.to_string());
                r.data = Some(serde_json::json!({"launched": 0, "failed": asked}));
                r
            }
        };
        r.host = self.host().to_string();
        r
    }

    /// Launches named VMs here (a scheduled launch from the head, or this host's share).
    pub(crate) async fn launch_here(
        &self,
        ns: &str,
        launch: PeerLaunch,
    ) -> DomainResult<(usize, Vec<String>)> {
        let vm_type = parse_type(&launch.vm_type)?;
        let mut config: VmConfig = serde_json::from_value(launch.config)
            .map_err(|e| DomainError::invalid(format!("bad vm config: {e}")))?;
        self.localize_files(&mut config, &launch.files_dir).await?;
        for name in &launch.names {
            crate::vm::launch::check_name(name).map_err(DomainError::invalid)?;
        }
        self.with_ns(ns, |n| {
            for name in &launch.names {
                if n.vms.values().any(|v| &v.name == name) {
                    return Err(DomainError::Conflict(format!(
                        "vm already exists with name `{name}`"
                    )));
                }
            }
            Ok(())
        })?;
        if !config.networks.is_empty() && !launch.tunnels.is_empty() {
            let bridges = config
                .networks
                .iter()
                .map(|n| {
                    if n.bridge.is_empty() {
                        crate::vm::netspec::DEFAULT_BRIDGE.to_string()
                    } else {
                        n.bridge.clone()
                    }
                })
                .collect();
            self.ensure_tunnels(&bridges, &launch.tunnels).await;
        }
        let vms = launch
            .names
            .into_iter()
            .map(|name| (name, vm_type, config.clone()))
            .collect();
        Ok(self.launch_vms(ns, vms).await)
    }
}
