//! `ns` operations on one host: hosts, load metric, launch queue, queueing, schedules.

use std::time::SystemTime;

use ferromega_api::{Args, Response};
use ferromega_command::ranges;

use crate::engine::bool_choice;
use crate::namespace::{Load, Namespace};
use crate::{lock, ControlPlane, DomainResult};

/// RFC 822 time as Go prints it (`02 Jan 06 15:04 UTC`).
pub(crate) fn rfc822(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let (y, m, d) = civil_from_days(days);
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MONTHS
        .get((m as usize).saturating_sub(1))
        .copied()
        .unwrap_or("Jan");
    let hm = secs % 86_400;
    format!(
        "{d:02} {month} {:02} {:02}:{:02} UTC",
        y % 100,
        hm / 3600,
        (hm % 3600) / 60
    )
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

impl ControlPlane {
    /// Runs `f` on the namespace `ns` under its lock.
    pub(crate) fn with_ns<T>(&self, ns: &str, f: impl FnOnce(&mut Namespace) -> T) -> T {
        let n = self.namespace_or_create(ns);
        let mut guard = lock(&n);
        f(&mut guard)
    }

    pub(crate) fn ns_hosts(&self, ns: &str) -> DomainResult<Response> {
        let hosts: Vec<String> = self.with_ns(ns, |n| n.hosts.iter().cloned().collect());
        Ok(self.text(ranges::compress(&hosts)))
    }

    pub(crate) fn ns_add_hosts(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let spec = args.string("hosts").unwrap_or_default();
        // `all` means every mesh peer.
        let hosts = self.parse_hosts(spec)?;
        self.with_ns(ns, |n| n.hosts.extend(hosts));
        Ok(self.ok())
    }

    pub(crate) fn ns_del_hosts(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let spec = args.string("hosts").unwrap_or_default();
        if spec == "all" {
            self.with_ns(ns, |n| n.hosts.clear());
            return Ok(self.ok());
        }
        let hosts = self.parse_hosts(spec)?;
        self.with_ns(ns, |n| n.hosts.retain(|h| !hosts.contains(h)));
        Ok(self.ok())
    }

    pub(crate) fn ns_load(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let load = if args.flag("cpucommit") {
            Some(Load::CpuCommit)
        } else if args.flag("memcommit") {
            Some(Load::MemCommit)
        } else if args.flag("netcommit") {
            Some(Load::NetCommit)
        } else {
            None
        };
        self.with_ns(ns, |n| match load {
            Some(l) => {
                n.load = l;
                Ok(self.ok())
            }
            None => Ok(self.text(n.load.as_str())),
        })
    }

    pub(crate) fn ns_queue(&self, ns: &str) -> DomainResult<Response> {
        let vlans = lock(&self.inner.vlans).clone();
        let text = self.with_ns(ns, |n| {
            let mut out = String::new();
            for (i, q) in n.queue.iter().enumerate() {
                let names: Vec<&str> = q
                    .names
                    .iter()
                    .map(|s| if s.is_empty() { "<auto>" } else { s })
                    .collect();
                out.push_str(&format!(
                    "Queued launch {i}: {} VMs, type {}\nNames: {}\n{}\n",
                    q.names.len(),
                    q.vm_type.as_str(),
                    names.join(", "),
                    q.config.display(ns, &vlans)
                ));
            }
            out
        });
        Ok(self.text(text))
    }

    pub(crate) fn ns_flush(&self, ns: &str) -> DomainResult<Response> {
        self.with_ns(ns, |n| n.queue.clear());
        Ok(self.ok())
    }

    pub(crate) fn ns_queueing(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        self.with_ns(ns, |n| match bool_choice(args) {
            Some(v) => {
                n.queueing = v;
                Ok(self.ok())
            }
            None => Ok(self.text(n.queueing.to_string())),
        })
    }

    pub(crate) fn ns_schedules(&self, ns: &str) -> DomainResult<Response> {
        let rows = self.with_ns(ns, |n| {
            n.schedules
                .iter()
                .map(|s| {
                    vec![
                        rfc822(s.start),
                        s.end.map(rfc822).unwrap_or_default(),
                        if s.end.is_some() {
                            "completed"
                        } else {
                            "running"
                        }
                        .to_string(),
                        s.launched.to_string(),
                        s.failures.to_string(),
                        s.total.to_string(),
                        s.hosts.to_string(),
                    ]
                })
                .collect()
        });
        let header = [
            "start", "end", "state", "launched", "failures", "total", "hosts",
        ];
        Ok(self.table(&header, rows))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc822_formats_like_go() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_764_349_200);
        assert_eq!(rfc822(t), "28 Nov 25 17:00 UTC");
    }
}
