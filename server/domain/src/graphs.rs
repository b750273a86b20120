//! Graphs: `vm top` and `host` figures over time, kept in bounded ring buffers — the
//! last 10 minutes at one point a second and the last 24 hours at one point a minute
//! (the average of that minute's seconds) — per VM and for the host.
//!
//! One background task ([`ControlPlane::graphs_start`]) samples every VM's processes
//! and NIC counters once a second in one pass, and the host's figures; the dashboard's
//! graphs page reads them through [`ControlPlane::graphs`].

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::network::Counters;
use crate::vm::registry::Vm;
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// Points kept at one a second: 10 minutes.
pub const FINE_POINTS: usize = 600;
/// Points kept at one a minute: 24 hours.
pub const COARSE_POINTS: usize = 1440;
/// How often the sampler runs.
const PERIOD: Duration = Duration::from_secs(1);
const MB: f64 = 1024.0 * 1024.0;

/// One sample: CPU (% of one CPU), memory (MB), network receive and transmit (MB/s).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Point {
    /// Unix time, seconds.
    pub t: u64,
    /// CPU use: a VM's, percent of one CPU; the host's, percent of all its CPUs busy.
    pub cpu: f32,
    /// Memory: resident (VM) or used (host), MB.
    pub mem: f32,
    /// Received, MB/s.
    pub rx: f32,
    /// Transmitted, MB/s.
    pub tx: f32,
}

/// A running sum of one minute's points.
#[derive(Debug, Clone, Copy, Default)]
struct Minute {
    minute: u64,
    n: u32,
    sum: Point,
}

impl Minute {
    fn average(&self) -> Point {
        let n = self.n.max(1) as f32;
        Point {
            t: self.minute * 60,
            cpu: self.sum.cpu / n,
            mem: self.sum.mem / n,
            rx: self.sum.rx / n,
            tx: self.sum.tx / n,
        }
    }
}

/// A bounded series: the last [`FINE_POINTS`] seconds and [`COARSE_POINTS`] minutes.
#[derive(Debug, Clone, Default)]
pub struct Ring {
    fine: VecDeque<Point>,
    coarse: VecDeque<Point>,
    current: Option<Minute>,
}

/// Which part of a [`Ring`] to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// The last 10 minutes, one point a second.
    TenMinutes,
    /// The last 24 hours, one point a minute.
    Day,
}

impl Range {
    /// `10m` or `24h`.
    pub fn parse(s: &str) -> DomainResult<Range> {
        match s {
            "10m" => Ok(Range::TenMinutes),
            "24h" => Ok(Range::Day),
            _ => Err(DomainError::invalid(format!(
                "invalid range {s:?}: 10m or 24h"
            ))),
        }
    }

    /// `10m` or `24h`, as parsed.
    pub fn as_str(self) -> &'static str {
        match self {
            Range::TenMinutes => "10m",
            Range::Day => "24h",
        }
    }

    /// Seconds between points.
    pub fn step(self) -> u64 {
        match self {
            Range::TenMinutes => 1,
            Range::Day => 60,
        }
    }
}

impl Ring {
    /// Adds a point (times are expected to increase); the oldest fall off.
    pub fn push(&mut self, p: Point) {
        self.fine.push_back(p);
        while self.fine.len() > FINE_POINTS {
            self.fine.pop_front();
        }
        let minute = p.t / 60;
        match &mut self.current {
            Some(m) if m.minute == minute => {
                m.n += 1;
                m.sum.cpu += p.cpu;
                m.sum.mem += p.mem;
                m.sum.rx += p.rx;
                m.sum.tx += p.tx;
            }
            cur => {
                if let Some(done) = cur.take() {
                    self.coarse.push_back(done.average());
                    while self.coarse.len() > COARSE_POINTS {
                        self.coarse.pop_front();
                    }
                }
                *cur = Some(Minute {
                    minute,
                    n: 1,
                    sum: p,
                });
            }
        }
    }

    /// The points of `range`, oldest first (the 24-hour view ends with the minute so far).
    pub fn points(&self, range: Range) -> Vec<Point> {
        match range {
            Range::TenMinutes => self.fine.iter().copied().collect(),
            Range::Day => {
                let mut v: Vec<Point> = self.coarse.iter().copied().collect();
                v.extend(self.current.map(|m| m.average()));
                if v.len() > COARSE_POINTS {
                    v.remove(0);
                }
                v
            }
        }
    }
}

/// Series of one VM or the host, column-wise as uPlot draws them.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Series {
    /// Unix times, seconds.
    pub time: Vec<u64>,
    /// CPU, percent.
    pub cpu: Vec<f32>,
    /// Memory, MB.
    pub mem: Vec<f32>,
    /// Received, MB/s.
    pub rx: Vec<f32>,
    /// Transmitted, MB/s.
    pub tx: Vec<f32>,
}

impl Series {
    fn from_points(points: &[Point]) -> Series {
        Series {
            time: points.iter().map(|p| p.t).collect(),
            cpu: points.iter().map(|p| p.cpu).collect(),
            mem: points.iter().map(|p| p.mem).collect(),
            rx: points.iter().map(|p| p.rx).collect(),
            tx: points.iter().map(|p| p.tx).collect(),
        }
    }
}

/// The answer of the graphs endpoint.
#[derive(Debug, Clone, Serialize)]
pub struct Graphs {
    /// This host's name.
    pub host: String,
    /// The namespace.
    pub namespace: String,
    /// The VM, or none for the host's figures.
    pub vm: Option<String>,
    /// `10m` or `24h`.
    pub range: String,
    /// Seconds between points.
    pub step: u64,
    /// The figures.
    pub series: Series,
}

/// The rings of every VM (by namespace and name) and of the host.
#[derive(Debug, Default)]
pub(crate) struct GraphStore {
    started: bool,
    host: Ring,
    vms: HashMap<(String, String), Ring>,
}

/// The shared store.
pub(crate) type SharedStore = Mutex<GraphStore>;

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// What the sampler keeps between passes.
#[derive(Default)]
struct Previous {
    at: Option<Instant>,
    cpu: HashMap<u32, u64>,
    nics: HashMap<String, Counters>,
    host_cpu: Option<(u64, u64)>,
}

impl ControlPlane {
    /// Starts the graphs sampler once; it stops when the control plane is dropped.
    pub fn graphs_start(&self) {
        {
            let mut g = lock(&self.inner.graphs);
            if g.started {
                return;
            }
            g.started = true;
        }
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut prev = Previous::default();
            let mut tick = tokio::time::interval(PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
            loop {
                tick.tick().await;
                let Some(inner) = weak.upgrade() else { return };
                let cp = ControlPlane { inner };
                cp.graphs_sample(&mut prev);
            }
        });
    }

    /// One pass: every VM's processes and NICs, and the host.
    fn graphs_sample(&self, prev: &mut Previous) {
        let all: Vec<_> = lock(&self.inner.namespaces).values().cloned().collect();
        let vms: Vec<Vm> = all
            .iter()
            .flat_map(|n| lock(n).vms.values().cloned().collect::<Vec<_>>())
            .collect();
        let live: Vec<&Vm> = vms
            .iter()
            .filter(|v| v.state.killable() && v.pid != 0)
            .collect();
        let sys = self.inner.backends.system.clone();
        let procs: Vec<Vec<u32>> = live
            .iter()
            .map(|vm| match self.runtime(vm.vm_type) {
                Some(rt) => rt.processes(vm),
                None => vec![vm.pid],
            })
            .collect();
        let pids: Vec<u32> = procs.iter().flatten().copied().collect();
        let samples = sys.process_sample(&pids);
        let by_pid: HashMap<u32, &crate::backends::ProcSample> =
            samples.iter().map(|s| (s.pid, s)).collect();
        let live_owned: Vec<Vm> = live.iter().map(|v| (*v).clone()).collect();
        let nics = self.nic_counters(&live_owned);
        let now = Instant::now();
        let wall = prev
            .at
            .map(|a| now.duration_since(a).as_secs_f64())
            .unwrap_or(0.0);
        let hz = sys.clock_ticks_per_second().max(1) as f64;
        let t = unix_now();
        let mut points = Vec::with_capacity(live.len());
        let (mut host_rx, mut host_tx) = (0.0f32, 0.0f32);
        for (vm, mine) in live.iter().zip(&procs) {
            let mut p = Point {
                t,
                ..Point::default()
            };
            for s in mine.iter().filter_map(|pid| by_pid.get(pid)) {
                p.mem += (s.res_bytes as f64 / MB) as f32;
                if let (Some(b), true) = (prev.cpu.get(&s.pid), wall > 0.0) {
                    p.cpu += (s.cpu_ticks.saturating_sub(*b) as f64 / hz / wall * 100.0) as f32;
                }
            }
            if wall > 0.0 {
                for tap in vm.taps.iter() {
                    if let (Some(a), Some(b)) = (nics.get(tap), prev.nics.get(tap)) {
                        // What the host sends on the tap, the VM receives.
                        p.rx += (a.tx_bytes.saturating_sub(b.tx_bytes) as f64 / MB / wall) as f32;
                        p.tx += (a.rx_bytes.saturating_sub(b.rx_bytes) as f64 / MB / wall) as f32;
                    }
                }
            }
            host_rx += p.rx;
            host_tx += p.tx;
            points.push(((vm.namespace.clone(), vm.name.clone()), p));
        }
        let hs = sys.host_stats();
        let host_cpu = match prev.host_cpu {
            Some((busy, total)) if hs.cpu_total_ticks > total => {
                let d_busy = hs.cpu_busy_ticks.saturating_sub(busy) as f64;
                (d_busy / (hs.cpu_total_ticks - total) as f64 * 100.0) as f32
            }
            _ => 0.0,
        };
        let host = Point {
            t,
            cpu: host_cpu,
            mem: hs.mem_used_mb as f32,
            rx: host_rx,
            tx: host_tx,
        };
        prev.at = Some(now);
        prev.host_cpu = Some((hs.cpu_busy_ticks, hs.cpu_total_ticks));
        prev.cpu = samples.iter().map(|s| (s.pid, s.cpu_ticks)).collect();
        prev.nics = nics;
        self.emit_host_stats(&host);
        let mut g = lock(&self.inner.graphs);
        g.host.push(host);
        // VMs no longer in any namespace (flushed) lose their rings; stopped ones keep them.
        g.vms
            .retain(|k, _| vms.iter().any(|v| v.namespace == k.0 && v.name == k.1));
        for (key, p) in points {
            g.vms.entry(key).or_default().push(p);
        }
    }

    /// The series of VM `vm` of `ns` (or of the host when `vm` is none) over `range`.
    pub fn graphs(&self, ns: &str, vm: Option<&str>, range: Range) -> DomainResult<Graphs> {
        let g = lock(&self.inner.graphs);
        let points = match vm {
            None => g.host.points(range),
            Some(name) => {
                let key = (ns.to_string(), name.to_string());
                match g.vms.get(&key) {
                    Some(r) => r.points(range),
                    None => {
                        drop(g);
                        if !self.has_vm(ns, name) {
                            return Err(DomainError::invalid(format!("vm not found: {name}")));
                        }
                        Vec::new()
                    }
                }
            }
        };
        Ok(Graphs {
            host: self.host().to_string(),
            namespace: ns.to_string(),
            vm: vm.map(str::to_string),
            range: range.as_str().to_string(),
            step: range.step(),
            series: Series::from_points(&points),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: u64, cpu: f32) -> Point {
        Point {
            t,
            cpu,
            mem: 2.0 * cpu,
            rx: 1.0,
            tx: 0.5,
        }
    }

    #[test]
    fn ring_keeps_ten_minutes_of_seconds() {
        let mut r = Ring::default();
        for t in 0..2000 {
            r.push(p(t, 1.0));
        }
        let fine = r.points(Range::TenMinutes);
        assert_eq!(fine.len(), FINE_POINTS);
        assert_eq!(fine.first().map(|p| p.t), Some(2000 - FINE_POINTS as u64));
        assert_eq!(fine.last().map(|p| p.t), Some(1999));
    }

    #[test]
    fn ring_downsamples_to_minute_averages() {
        let mut r = Ring::default();
        // Minute 0: cpu 0..59, average 29.5; minute 1: constant 10; minute 2 partial.
        for t in 0..60 {
            r.push(p(t, t as f32));
        }
        for t in 60..120 {
            r.push(p(t, 10.0));
        }
        r.push(p(120, 4.0));
        let day = r.points(Range::Day);
        assert_eq!(day.len(), 3);
        assert_eq!(day[0].t, 0);
        assert!((day[0].cpu - 29.5).abs() < 1e-4);
        assert!((day[0].mem - 59.0).abs() < 1e-3);
        assert_eq!(day[1].t, 60);
        assert!((day[1].cpu - 10.0).abs() < 1e-4);
        assert_eq!(day[2].t, 120);
        assert!((day[2].cpu - 4.0).abs() < 1e-4);
        assert!((day[2].rx - 1.0).abs() < 1e-4);
    }

    #[test]
    fn ring_keeps_a_day_of_minutes() {
        let mut r = Ring::default();
        // One point a minute for 30 hours.
        for m in 0..(30 * 60) {
            r.push(p(m * 60, 1.0));
        }
        let day = r.points(Range::Day);
        assert_eq!(day.len(), COARSE_POINTS);
        assert_eq!(day.last().map(|p| p.t), Some((30 * 60 - 1) * 60));
        assert_eq!(r.coarse.len(), COARSE_POINTS);
    }

    #[test]
    fn ranges_parse() {
        assert_eq!(Range::parse("10m").ok(), Some(Range::TenMinutes));
        assert_eq!(Range::parse("24h").ok().map(Range::step), Some(60));
        assert!(Range::parse("1h").is_err());
    }

    #[test]
    fn series_are_columns() {
        let s = Series::from_points(&[p(1, 2.0), p(2, 3.0)]);
        assert_eq!(s.time, vec![1, 2]);
        assert_eq!(s.cpu, vec![2.0, 3.0]);
        assert_eq!(s.mem, vec![4.0, 6.0]);
    }
}
