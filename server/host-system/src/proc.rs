//! Readings from /proc: host CPU, load, memory and uptime; per-process CPU and memory.

use ferromega_domain::backends::{HostStats, ProcSample};

/// Linux reports CPU times in USER_HZ, which is 100 on every architecture we run on.
const USER_HZ: u64 = 100;

/// Clock ticks per second of /proc CPU times.
pub fn clock_ticks() -> u64 {
    USER_HZ
}

fn page_size() -> u64 {
    4096
}

/// Parses `/proc/meminfo` text into (total, used) MB.
pub fn parse_meminfo(text: &str) -> (u64, u64) {
    let kb = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let total = kb("MemTotal:");
    let free = kb("MemFree:") + kb("Buffers:") + kb("Cached:");
    (total / 1024, total.saturating_sub(free) / 1024)
}

/// Busy and total CPU ticks of all CPUs from `/proc/stat`'s `cpu` line.
pub fn parse_cpu_ticks(stat: &str) -> (u64, u64) {
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return (0, 0);
    };
    // user nice system idle iowait irq softirq steal (guest time is within user).
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = f.iter().sum();
    let idle = f.get(3).copied().unwrap_or(0) + f.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// Host figures from /proc.
pub fn host_stats() -> HostStats {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let (mem_total_mb, mem_used_mb) = parse_meminfo(&read("/proc/meminfo"));
    let load = read("/proc/loadavg")
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ");
    let uptime = read("/proc/uptime")
        .split_whitespace()
        .next()
        .and_then(|v| v.parse::<f64>().ok())
        .map(std::time::Duration::from_secs_f64)
        .unwrap_or_default();
    let cpus = std::thread::available_parallelism()
        .map(|n| n.get() as u64)
        .unwrap_or(1);
    let (cpu_busy_ticks, cpu_total_ticks) = parse_cpu_ticks(&read("/proc/stat"));
    HostStats {
        cpus,
        load,
        mem_total_mb,
        mem_used_mb,
        uptime,
        cpu_busy_ticks,
        cpu_total_ticks,
    }
}

/// Parses `/proc/<pid>/stat` and `statm` texts into a sample.
pub fn parse_sample(pid: u32, stat: &str, statm: &str) -> Option<ProcSample> {
    // Fields after the `(comm)`: state is index 0, utime 11, stime 12, guest_time 40.
    let rest: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let get = |i: usize| rest.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let m: Vec<u64> = statm
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let page = page_size();
    Some(ProcSample {
        pid,
        cpu_ticks: get(11) + get(12),
        guest_ticks: get(40),
        virt_bytes: m.first().copied().unwrap_or(0) * page,
        res_bytes: m.get(1).copied().unwrap_or(0) * page,
        shr_bytes: m.get(2).copied().unwrap_or(0) * page,
    })
}

/// A sample of one process, None when it is gone.
pub fn sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).ok()?;
    parse_sample(pid, &stat, &statm)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_from_proc_stat() {
        let stat = "cpu  100 5 50 1000 20 1 2 3 40 0\ncpu0 1 2 3 4 5 6 7 8 9 0\n";
        assert_eq!(parse_cpu_ticks(stat), (161, 1181));
        assert_eq!(parse_cpu_ticks(""), (0, 0));
    }

    #[test]
    fn meminfo_used_excludes_free_buffers_and_cache() {
        let text = "MemTotal: 2048000 kB\nMemFree: 1024000 kB\nBuffers: 0 kB\nCached: 512000 kB\n";
        assert_eq!(parse_meminfo(text), (2000, 500));
    }

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        let mut fields = vec!["S"; 45];
        fields[11] = "30";
        fields[12] = "12";
        fields[40] = "7";
        let stat = format!("42 (qemu (x) y) {}", fields.join(" "));
        let s = parse_sample(42, &stat, "100 50 10 0 0 0 0").unwrap();
        assert_eq!((s.cpu_ticks, s.guest_ticks), (42, 7));
        assert_eq!(
            (s.virt_bytes, s.res_bytes, s.shr_bytes),
            (409_600, 204_800, 40_960)
        );
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(std::process::id()).unwrap();
        assert!(s.res_bytes > 0);
    }
}
