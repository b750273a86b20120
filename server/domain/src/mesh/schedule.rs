//! The scheduler (minimega's `schedule`): places queued VMs on the namespace's hosts by
//! load, honouring `vm config schedule` and `vm config coschedule`. Pure: host figures
//! in, a placement (or minimega's error) out.

use std::collections::BTreeMap;

use crate::namespace::Load;

/// One host's figures as `host` reports them, updated as VMs are placed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostLoad {
    /// Host name.
    pub name: String,
    /// Logical CPUs.
    pub cpus: u64,
    /// Total memory, MB.
    pub mem_total: u64,
    /// VMs on the host (every namespace).
    pub vms: i64,
    /// Most VMs the host may hold, -1 for no limit.
    pub limit: i64,
    /// Committed vCPUs.
    pub cpu_commit: u64,
    /// Committed memory, MB.
    pub mem_commit: u64,
    /// Committed NICs.
    pub net_commit: u64,
}

impl HostLoad {
    /// Reads the figures from a `host` response's data (name → value text).
    pub fn from_values(name: &str, values: &BTreeMap<String, String>) -> HostLoad {
        let num = |k: &str| values.get(k).and_then(|v| v.parse::<u64>().ok());
        HostLoad {
            name: name.to_string(),
            cpus: num("cpus").unwrap_or(1),
            mem_total: num("memtotal").unwrap_or(1),
            vms: num("vms").unwrap_or(0) as i64,
            limit: values
                .get("vmlimit")
                .and_then(|v| v.parse::<i64>().ok())
                .unwrap_or(-1),
            cpu_commit: num("cpucommit").unwrap_or(0),
            mem_commit: num("memcommit").unwrap_or(0),
            net_commit: num("netcommit").unwrap_or(0),
        }
    }

    /// Whether the host holds as many VMs as its limit allows.
    pub fn full(&self) -> bool {
        self.limit != -1 && self.vms >= self.limit
    }

    /// The host's load under `metric` (lower is emptier).
    pub fn load(&self, metric: Load) -> f64 {
        match metric {
            Load::CpuCommit => self.cpu_commit as f64 / self.cpus.max(1) as f64,
            Load::MemCommit => self.mem_commit as f64 / self.mem_total.max(1) as f64,
            Load::NetCommit => self.net_commit as f64,
        }
    }

    /// Whether this host should be picked before `other`: non-full hosts first, then
    /// the lower load.
    pub fn before(&self, other: &HostLoad, metric: Load) -> bool {
        match (self.full(), other.full()) {
            (false, true) => true,
            (true, false) => false,
            _ => self.load(metric) < other.load(metric),
        }
    }
}

/// VMs of one queued launch as the scheduler sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// VM names (unique, already assigned).
    pub names: Vec<String>,
    /// `vm config schedule`: the host they must go to, or empty.
    pub host: String,
    /// `vm config coschedule`: at most this many other VMs on their host, -1 for any.
    pub coschedule: i64,
    /// vCPUs of each VM.
    pub vcpus: u64,
    /// Memory of each VM, MB.
    pub memory: u64,
    /// NICs of each VM.
    pub nics: u64,
}

impl Group {
    /// minimega's queue order: fixed hosts first, then coscheduled groups (lower
    /// limits first), then the larger groups.
    pub fn before(&self, other: &Group) -> bool {
        let fixed = (!self.host.is_empty(), !other.host.is_empty());
        if fixed.0 != fixed.1 {
            return fixed.0;
        }
        let co = (self.coschedule != -1, other.coschedule != -1);
        if co.0 != co.1 {
            return co.0;
        }
        if co.0 && self.coschedule != other.coschedule {
            return self.coschedule < other.coschedule;
        }
        self.names.len() > other.names.len()
    }
}

/// Why VMs cannot be placed; the texts are minimega's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// The namespace has no hosts.
    #[error("no hosts to schedule VMs on")]
    NoHosts,
    /// `vm config schedule` names a host outside the namespace.
    #[error("VM scheduled on unknown host: `{0}`")]
    UnknownHost(String),
    /// A coschedule limit cannot be met.
    #[error("too many VMs scheduled on {0} for coschedule requirement of {1}")]
    TooMany(String, i64),
}

/// Where each VM goes: host name → (group index, VM name) in placement order.
pub type Placement = BTreeMap<String, Vec<(usize, String)>>;

/// Places every VM of `queue` on one of `hosts`, least loaded by `metric` first.
pub fn schedule(
    queue: &[Group],
    hosts: &[HostLoad],
    metric: Load,
) -> Result<Placement, ScheduleError> {
    let mut hosts = hosts.to_vec();
    if hosts.is_empty() {
        return Err(ScheduleError::NoHosts);
    }
    let mut out = Placement::new();
    if hosts.len() == 1 {
        let h = &hosts[0].name;
        for (i, g) in queue.iter().enumerate() {
            if !g.host.is_empty() && &g.host != h {
                return Err(ScheduleError::UnknownHost(g.host.clone()));
            }
            let names = g.names.iter().map(|n| (i, n.clone()));
            out.entry(h.clone()).or_default().extend(names);
        }
        return Ok(out);
    }
    for g in queue {
        if !g.host.is_empty() && !hosts.iter().any(|h| h.name == g.host) {
            return Err(ScheduleError::UnknownHost(g.host.clone()));
        }
    }
    let mut order: Vec<usize> = (0..queue.len()).collect();
    // A stable insertion sort with minimega's `Less`.
    for i in 1..order.len() {
        let mut j = i;
        while j > 0 && queue[order[j]].before(&queue[order[j - 1]]) {
            order.swap(j, j - 1);
            j -= 1;
        }
    }
    for gi in order {
        let g = &queue[gi];
        for name in &g.names {
            let at = if g.host.is_empty() {
                least_loaded(&hosts, metric)
            } else {
                hosts.iter().position(|h| h.name == g.host).unwrap_or(0)
            };
            let h = &mut hosts[at];
            if g.coschedule != -1 {
                let cap = g.coschedule + 1;
                h.limit = if h.limit == -1 { cap } else { h.limit.min(cap) };
            }
            h.vms += 1;
            h.cpu_commit += g.vcpus;
            h.mem_commit += g.memory;
            h.net_commit += g.nics;
            if h.limit != -1 && h.vms > h.limit {
                return Err(ScheduleError::TooMany(h.name.clone(), h.limit));
            }
            out.entry(h.name.clone())
                .or_default()
                .push((gi, name.clone()));
        }
    }
    Ok(out)
}

/// The index of the host to pick next (the first of equals, for stable results).
fn least_loaded(hosts: &[HostLoad], metric: Load) -> usize {
    let mut best = 0;
    for (i, h) in hosts.iter().enumerate().skip(1) {
        if h.before(&hosts[best], metric) {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    //! minimega's scheduler cases (`scheduler_test.go`), restated for this scheduler.
    use super::*;

    fn group(names: &[&str], host: &str, coschedule: i64) -> Group {
        Group {
            names: names.iter().map(|s| s.to_string()).collect(),
            host: host.to_string(),
            coschedule,
            vcpus: 1,
            memory: 1,
            nics: 0,
        }
    }

    /// `n` hosts named "0".."n-1" whose commit figures equal their index, shuffled.
    fn hosts(n: u64) -> Vec<HostLoad> {
        let mut v: Vec<HostLoad> = (0..n)
            .map(|i| HostLoad {
                name: i.to_string(),
                cpus: 1,
                mem_total: 1,
                vms: 0,
                limit: -1,
                cpu_commit: i,
                mem_commit: i,
                net_commit: i,
            })
            .collect();
        // A fixed permutation, so the order given does not decide the answer.
        v.reverse();
        v.rotate_left((n / 3) as usize);
        v
    }

    fn three_alone() -> Vec<Group> {
        vec![group(&["a", "b", "c"], "", 0)]
    }

    fn host_order_holds(metric: Load) {
        let n = 50;
        let mut hs = hosts(n);
        for i in 0..10 * n {
            let at = least_loaded(&hs, metric);
            assert_eq!(hs[at].name, (i % n).to_string(), "step {i}");
            hs[at].cpu_commit += n;
            hs[at].mem_commit += n;
            hs[at].net_commit += n;
        }
    }

    #[test]
    fn host_order_by_cpucommit_cycles_through_the_minimum() {
        host_order_holds(Load::CpuCommit);
    }

    #[test]
    fn host_order_by_memcommit_cycles_through_the_minimum() {
        host_order_holds(Load::MemCommit);
    }

    #[test]
    fn host_order_by_netcommit_cycles_through_the_minimum() {
        host_order_holds(Load::NetCommit);
    }

    fn full_host_sorts_last(metric: Load) {
        let mut h = HostLoad {
            cpus: 1,
            mem_total: 1,
            cpu_commit: 1,
            mem_commit: 1,
            net_commit: 1,
            limit: -1,
            ..Default::default()
        };
        let h2 = HostLoad {
            cpu_commit: 2,
            mem_commit: 2,
            net_commit: 2,
            ..h.clone()
        };
        assert!(h.before(&h2, metric));
        h.vms = 1;
        h.limit = 1;
        assert!(!h.before(&h2, metric));
    }

    #[test]
    fn cpucommit_prefers_lower_commit_and_non_full_hosts() {
        full_host_sorts_last(Load::CpuCommit);
    }

    #[test]
    fn memcommit_prefers_lower_commit_and_non_full_hosts() {
        full_host_sorts_last(Load::MemCommit);
    }

    #[test]
    fn netcommit_prefers_lower_commit_and_non_full_hosts() {
        full_host_sorts_last(Load::NetCommit);
    }

    #[test]
    fn queue_order_fixed_then_coscheduled_then_larger() {
        let q = group(&["a", "b", "c"], "foo", 1);
        let q2 = group(&["a", "b"], "foo", -1);
        assert!(q.before(&q2) && !q2.before(&q));
        let q = group(&["a", "b", "c"], "", 1);
        let q2 = group(&["a", "b"], "", -1);
        assert!(q.before(&q2) && !q2.before(&q));
        let q = group(&["a", "b", "c"], "", -1);
        let q2 = group(&["a", "b"], "", -1);
        assert!(q.before(&q2) && !q2.before(&q));
    }

    #[test]
    fn three_lonely_vms_on_two_hosts_is_impossible() {
        let e = schedule(&three_alone(), &hosts(2), Load::CpuCommit).unwrap_err();
        assert!(matches!(e, ScheduleError::TooMany(_, 1)), "{e}");
        assert!(e.to_string().starts_with("too many VMs scheduled on "));
    }

    #[test]
    fn three_lonely_vms_on_three_hosts_fit_exactly() {
        let s = schedule(&three_alone(), &hosts(3), Load::CpuCommit).unwrap();
        assert_eq!(s.len(), 3);
        assert!(s.values().all(|v| v.len() == 1));
    }

    #[test]
    fn three_lonely_vms_on_four_hosts_fit() {
        let s = schedule(&three_alone(), &hosts(4), Load::CpuCommit).unwrap();
        assert_eq!(s.values().map(Vec::len).sum::<usize>(), 3);
    }

    #[test]
    fn a_pinned_lonely_vm_keeps_its_host_to_itself() {
        let mut q = three_alone();
        q.push(group(&["picky"], "0", 0));
        let s = schedule(&q, &hosts(4), Load::CpuCommit).unwrap();
        assert_eq!(s["0"], vec![(1, "picky".to_string())]);
    }

    #[test]
    fn a_thousand_vms_leave_the_picky_ones_alone() {
        let names: Vec<String> = (0..1000).map(|i| i.to_string()).collect();
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        let q = vec![
            group(&names, "", -1),
            group(&["picky"], "0", 0),
            group(&["lesspicky"], "", 0),
            group(&["ice", "fire"], "", 1),
        ];
        let s = schedule(&q, &hosts(40), Load::CpuCommit).unwrap();
        for (host, vms) in &s {
            if vms.len() == 1 {
                continue;
            }
            for (_, n) in vms {
                assert!(!n.contains("picky"), "{n} shares host {host}");
            }
        }
        assert_eq!(s.values().map(Vec::len).sum::<usize>(), 1004);
    }

    #[test]
    fn an_unknown_fixed_host_is_refused() {
        let q = vec![group(&["a"], "nowhere", -1)];
        assert_eq!(
            schedule(&q, &hosts(2), Load::CpuCommit).unwrap_err(),
            ScheduleError::UnknownHost("nowhere".into())
        );
    }

    #[test]
    fn no_hosts_is_refused() {
        assert_eq!(
            schedule(&three_alone(), &[], Load::CpuCommit).unwrap_err(),
            ScheduleError::NoHosts
        );
    }

    #[test]
    fn one_host_takes_everything_without_coschedule_checks() {
        let s = schedule(&three_alone(), &hosts(1), Load::CpuCommit).unwrap();
        assert_eq!(s["0"].len(), 3);
    }

    #[test]
    fn memcommit_spreads_by_memory_share() {
        let mut hs = hosts(2);
        for h in &mut hs {
            h.cpu_commit = 0;
            h.net_commit = 0;
            h.mem_commit = 0;
            h.mem_total = if h.name == "0" { 1000 } else { 3000 };
        }
        let mut g = group(&["a", "b", "c", "d"], "", -1);
        g.memory = 500;
        let s = schedule(&[g], &hs, Load::MemCommit).unwrap();
        // 0 has a third of 1's memory: it takes one VM for every three of 1's.
        assert_eq!(s["0"].len(), 1);
        assert_eq!(s["1"].len(), 3);
    }
}
