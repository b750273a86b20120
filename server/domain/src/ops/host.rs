//! `host` and `vm top`: this host's figures and the VMs' CPU and memory use.

use std::collections::BTreeMap;
use std::time::Duration;

use ferromega_api::{Args, Response};

use crate::vm::registry::{go_duration, Vm};
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// `host` columns, in minimega's order.
const HOST_COLUMNS: &[&str] = &[
    "cpus",
    "load",
    "memused",
    "memtotal",
    "rx",
    "tx",
    "vms",
    "vmlimit",
    "cpucommit",
    "memcommit",
    "netcommit",
    "uptime",
];

/// A Go duration truncated to whole seconds (`1m5s`).
fn whole_seconds(d: Duration) -> String {
    go_duration(Duration::from_secs(d.as_secs()))
}

impl ControlPlane {
    /// Every VM on this host, across namespaces.
    fn all_vms(&self) -> Vec<Vm> {
        let all: Vec<_> = lock(&self.inner.namespaces).values().cloned().collect();
        all.iter()
            .flat_map(|n| lock(n).vms.values().cloned().collect::<Vec<_>>())
            .collect()
    }

    fn host_values(&self) -> BTreeMap<&'static str, String> {
        let s = self.inner.backends.system.host_stats();
        let vms = self.all_vms();
        let live: Vec<&Vm> = vms.iter().filter(|v| v.state.killable()).collect();
        let limit = live
            .iter()
            .filter(|v| v.config.coschedule >= 0)
            .map(|v| v.config.coschedule + 1)
            .min()
            .unwrap_or(-1);
        let mut m = BTreeMap::new();
        m.insert("name", self.host().to_string());
        m.insert("cpus", s.cpus.to_string());
        m.insert("load", s.load);
        m.insert("memused", s.mem_used_mb.to_string());
        m.insert("memtotal", s.mem_total_mb.to_string());
        let (rx, tx) = self.host_bandwidth();
        m.insert("rx", format!("{rx:.1}"));
        m.insert("tx", format!("{tx:.1}"));
        m.insert("vms", vms.len().to_string());
        m.insert("vmlimit", limit.to_string());
        m.insert(
            "cpucommit",
            live.iter().map(|v| v.config.vcpus).sum::<u64>().to_string(),
        );
        m.insert(
            "memcommit",
            live.iter()
                .map(|v| v.config.memory)
                .sum::<u64>()
                .to_string(),
        );
        let nics: usize = live.iter().map(|v| v.config.networks.len()).sum();
        m.insert("netcommit", nics.to_string());
        m.insert("uptime", whole_seconds(s.uptime));
        m
    }

    pub(crate) fn host_info(&self, args: &Args) -> DomainResult<Response> {
        let values = self.host_values();
        if let Some(v) = values.iter().find(|(k, _)| args.flag(k)).map(|(_, v)| v) {
            return Ok(self.text(v.clone()));
        }
        let row = HOST_COLUMNS
            .iter()
            .map(|c| values.get(c).cloned().unwrap_or_default())
            .collect();
        let mut resp = self.table(HOST_COLUMNS, vec![row]);
        resp.data = serde_json::to_value(&values).ok();
        Ok(resp)
    }

    pub(crate) async fn vm_top(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let secs = match args.string("duration") {
            Some(d) => d.parse::<u64>().map_err(|_| {
                DomainError::invalid(format!("strconv.Atoi: parsing {d:?}: invalid syntax"))
            })?,
            None => 1,
        };
        let vms: Vec<Vm> = self.with_ns(ns, |n| {
            n.vms
                .values()
                .filter(|v| v.state.killable() && v.pid != 0)
                .cloned()
                .collect()
        });
        let sys = self.inner.backends.system.clone();
        // A container's processes are its cgroup's (minimega: up to 100 of them).
        let procs: Vec<Vec<u32>> = vms
            .iter()
            .map(|vm| match self.runtime(vm.vm_type) {
                Some(rt) => rt.processes(vm),
                None => vec![vm.pid],
            })
            .collect();
        let pids: Vec<u32> = procs.iter().flatten().copied().collect();
        let before = sys.process_sample(&pids);
        let nic_before = self.nic_counters(&vms);
        let start = std::time::Instant::now();
        tokio::time::sleep(Duration::from_secs(secs)).await;
        let after = sys.process_sample(&pids);
        let nic_after = self.nic_counters(&vms);
        let wall = start.elapsed().as_secs_f64().max(1e-9);
        let hz = sys.clock_ticks_per_second().max(1) as f64;
        let mib = |b: u64| (b / (1024 * 1024)).to_string();
        let rows = vms
            .iter()
            .zip(&procs)
            .filter_map(|(vm, mine)| {
                let now: Vec<_> = after.iter().filter(|s| mine.contains(&s.pid)).collect();
                if now.is_empty() {
                    return None;
                }
                let (mut cpu, mut vcpu) = (0.0, 0.0);
                for a in &now {
                    if let Some(b) = before.iter().find(|s| s.pid == a.pid) {
                        cpu += a.cpu_ticks.saturating_sub(b.cpu_ticks) as f64 / hz / wall * 100.0;
                        vcpu +=
                            a.guest_ticks.saturating_sub(b.guest_ticks) as f64 / hz / wall * 100.0;
                    }
                }
                let sum = |f: fn(&crate::backends::ProcSample) -> u64| -> u64 {
                    now.iter().map(|s| f(s)).sum()
                };
                let time = Duration::from_secs(sum(|s| s.cpu_ticks) / hz as u64);
                Some(vec![
                    vm.name.clone(),
                    mib(sum(|s| s.virt_bytes)),
                    mib(sum(|s| s.res_bytes)),
                    mib(sum(|s| s.shr_bytes)),
                    format!("{cpu:.2}"),
                    format!("{vcpu:.2}"),
                    whole_seconds(time),
                    now.len().to_string(),
                    self.nic_rate(vm, &nic_before, &nic_after, wall, true),
                    self.nic_rate(vm, &nic_before, &nic_after, wall, false),
                ])
            })
            .collect();
        let header = [
            "name", "virt", "res", "shr", "cpu", "vcpu", "time", "procs", "rx", "tx",
        ];
        Ok(self.table(&header, rows))
    }
}
