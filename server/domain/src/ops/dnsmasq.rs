//! `dnsmasq`: DHCP/DNS servers the server starts (one real dnsmasq each), their static
//! leases, DNS entries and options (files dnsmasq re-reads), listing and kill.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::PathBuf;

use ferromega_api::{Args, Response};

use crate::network::DnsmasqSpec;
use crate::vm::netspec::is_mac;
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// One running dnsmasq.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DnsmasqRec {
    /// Listen address (empty when started from a config file alone).
    pub(crate) address: String,
    /// Low end of the DHCP range.
    pub(crate) min: String,
    /// High end of the DHCP range.
    pub(crate) max: String,
    /// Its directory.
    pub(crate) dir: PathBuf,
    /// Its PID.
    pub(crate) pid: u32,
    /// Static leases: MAC → IP.
    pub(crate) hosts: BTreeMap<String, String>,
    /// DNS entries: IP → host names.
    pub(crate) dns: BTreeMap<String, Vec<String>>,
    /// DHCP options.
    pub(crate) options: Vec<String>,
}

impl DnsmasqRec {
    /// Writes the static leases, DNS entries and options where dnsmasq reads them.
    fn write_files(&self) -> std::io::Result<()> {
        let hosts: String = self
            .hosts
            .iter()
            .map(|(mac, ip)| format!("{mac},{ip}\n"))
            .collect();
        std::fs::write(self.dir.join("dhcp-hosts/ferromega"), hosts)?;
        let dns: String = self
            .dns
            .iter()
            .map(|(ip, names)| format!("{ip} {}\n", names.join(" ")))
            .collect();
        std::fs::write(self.dir.join("hosts/ferromega"), dns)?;
        let opts: String = self.options.iter().map(|o| format!("{o}\n")).collect();
        std::fs::write(self.dir.join("dhcp-opts/ferromega"), opts)
    }
}

fn parse_ip(s: &str) -> DomainResult<Ipv4Addr> {
    s.parse()
        .map_err(|_| DomainError::invalid(format!("invalid IP address: {s}")))
}

impl ControlPlane {
    pub(crate) fn dnsmasq(&self) -> DomainResult<Response> {
        let rows = lock(&self.inner.net)
            .dnsmasq
            .iter()
            .map(|(id, d)| {
                vec![
                    id.to_string(),
                    d.address.clone(),
                    d.min.clone(),
                    d.max.clone(),
                    d.dir.display().to_string(),
                    d.pid.to_string(),
                ]
            })
            .collect();
        Ok(self.table(&["id", "address", "min", "max", "path", "pid"], rows))
    }

    pub(crate) async fn dnsmasq_start(&self, args: &Args) -> DomainResult<Response> {
        let net = self.network()?;
        let dhcp = match (
            args.string("listen"),
            args.string("low"),
            args.string("high"),
        ) {
            (Some(l), Some(lo), Some(hi)) => {
                let (l4, lo4, hi4) = (parse_ip(l)?, parse_ip(lo)?, parse_ip(hi)?);
                if u32::from(lo4) > u32::from(hi4) {
                    return Err(DomainError::invalid("low dhcp range above high dhcp range"));
                }
                Some((l4.to_string(), lo4.to_string(), hi4.to_string()))
            }
            _ => None,
        };
        let config = args.string("config").map(str::to_string);
        if let Some(c) = &config {
            if !std::path::Path::new(c).is_file() {
                return Err(DomainError::NotFound(format!("config file not found: {c}")));
            }
        }
        let id = {
            let mut st = lock(&self.inner.net);
            let id = st.next_dnsmasq;
            st.next_dnsmasq += 1;
            id
        };
        let dir = self.base().join(format!("dnsmasq_{id}"));
        let mut rec = DnsmasqRec {
            address: dhcp.as_ref().map(|d| d.0.clone()).unwrap_or_default(),
            min: dhcp.as_ref().map(|d| d.1.clone()).unwrap_or_default(),
            max: dhcp.as_ref().map(|d| d.2.clone()).unwrap_or_default(),
            dir: dir.clone(),
            pid: 0,
            hosts: BTreeMap::new(),
            dns: BTreeMap::new(),
            options: Vec::new(),
        };
        let prepare = || -> std::io::Result<()> {
            for sub in ["hosts", "dhcp-hosts", "dhcp-opts"] {
                std::fs::create_dir_all(dir.join(sub))?;
            }
            rec.write_files()
        };
        prepare().map_err(|e| DomainError::Host(format!("{}: {e}", dir.display())))?;
        let spec = DnsmasqSpec {
            dir: dir.clone(),
            dhcp,
            config,
        };
        match net.dnsmasq_start(&spec).await {
            Ok(pid) => {
                rec.pid = pid;
                lock(&self.inner.net).dnsmasq.insert(id, rec);
                Ok(self.ok())
            }
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                Err(DomainError::Host(e))
            }
        }
    }

    /// The ids `<ID>` names: one, or every one for `all`.
    fn dnsmasq_ids(&self, which: &str) -> DomainResult<Vec<u64>> {
        let st = lock(&self.inner.net);
        if which == "all" {
            return Ok(st.dnsmasq.keys().copied().collect());
        }
        let id: u64 = which
            .parse()
            .map_err(|_| DomainError::invalid(format!("invalid id: {which}")))?;
        if !st.dnsmasq.contains_key(&id) {
            return Err(DomainError::NotFound(format!("unknown dnsmasq id: {id}")));
        }
        Ok(vec![id])
    }

    pub(crate) async fn dnsmasq_kill(&self, args: &Args) -> DomainResult<Response> {
        let ids = self.dnsmasq_ids(args.string("id").unwrap_or_default())?;
        self.dnsmasq_stop(&ids).await
    }

    async fn dnsmasq_stop(&self, ids: &[u64]) -> DomainResult<Response> {
        let mut errors = Vec::new();
        for id in ids {
            let Some(rec) = lock(&self.inner.net).dnsmasq.remove(id) else {
                continue;
            };
            if let Some(net) = self.inner.backends.network.clone() {
                if let Err(e) = net.dnsmasq_kill(rec.pid).await {
                    errors.push(e);
                }
            }
            let _ = std::fs::remove_dir_all(&rec.dir);
        }
        match errors.is_empty() {
            true => Ok(self.ok()),
            false => Err(DomainError::Host(errors.join("\n"))),
        }
    }

    /// Stops every dnsmasq (`clear all`, shutdown).
    pub(crate) async fn dnsmasq_kill_all(&self) {
        let ids: Vec<u64> = lock(&self.inner.net).dnsmasq.keys().copied().collect();
        if let Err(e) = self.dnsmasq_stop(&ids).await {
            tracing::warn!("stopping dnsmasq: {e}");
        }
    }

    pub(crate) fn dnsmasq_configure(&self, args: &Args) -> DomainResult<Response> {
        let ids = self.dnsmasq_ids(args.string("ID").unwrap_or_default())?;
        let mut st = lock(&self.inner.net);
        if args.flag("ip") {
            if let (Some(mac), Some(ip)) = (args.string("mac"), args.string("ip")) {
                if !is_mac(mac) {
                    return Err(DomainError::invalid(format!("invalid MAC address: {mac}")));
                }
                parse_ip(ip)?;
                return self.dnsmasq_update(&mut st.dnsmasq, &ids, |d| {
                    d.hosts.insert(mac.to_lowercase(), ip.to_string());
                });
            }
            let rows = rows_of(&st.dnsmasq, &ids, |d| {
                d.hosts
                    .iter()
                    .map(|(m, i)| vec![m.clone(), i.clone()])
                    .collect()
            });
            return Ok(self.table(&["id", "mac", "ip"], rows));
        }
        if args.flag("dns") {
            if let (Some(ip), Some(host)) = (args.string("ip"), args.string("hostname")) {
                let _: std::net::IpAddr = ip
                    .parse()
                    .map_err(|_| DomainError::invalid(format!("invalid IP address: {ip}")))?;
                return self.dnsmasq_update(&mut st.dnsmasq, &ids, |d| {
                    d.dns
                        .entry(ip.to_string())
                        .or_default()
                        .push(host.to_string());
                });
            }
            let rows = rows_of(&st.dnsmasq, &ids, |d| {
                d.dns
                    .iter()
                    .flat_map(|(ip, names)| names.iter().map(move |n| vec![ip.clone(), n.clone()]))
                    .collect()
            });
            return Ok(self.table(&["id", "ip", "hostname"], rows));
        }
        if let Some(opt) = args.string("optionstring") {
            return self.dnsmasq_update(&mut st.dnsmasq, &ids, |d| d.options.push(opt.to_string()));
        }
        let rows = rows_of(&st.dnsmasq, &ids, |d| {
            d.options.iter().map(|o| vec![o.clone()]).collect()
        });
        Ok(self.table(&["id", "option"], rows))
    }

    /// Changes the chosen dnsmasqs' records, rewrites their files and has them re-read.
    fn dnsmasq_update(
        &self,
        all: &mut BTreeMap<u64, DnsmasqRec>,
        ids: &[u64],
        f: impl Fn(&mut DnsmasqRec),
    ) -> DomainResult<Response> {
        for id in ids {
            let Some(d) = all.get_mut(id) else { continue };
            f(d);
            d.write_files()
                .map_err(|e| DomainError::Host(format!("{}: {e}", d.dir.display())))?;
            if let Some(net) = &self.inner.backends.network {
                net.dnsmasq_reload(d.pid).map_err(DomainError::Host)?;
            }
        }
        Ok(self.ok())
    }
}

/// Table rows `id | …` of the chosen dnsmasqs.
fn rows_of(
    all: &BTreeMap<u64, DnsmasqRec>,
    ids: &[u64],
    f: impl Fn(&DnsmasqRec) -> Vec<Vec<String>>,
) -> Vec<Vec<String>> {
    ids.iter()
        .filter_map(|id| all.get(id).map(|d| (id, d)))
        .flat_map(|(id, d)| {
            f(d).into_iter().map(move |mut r| {
                r.insert(0, id.to_string());
                r
            })
        })
        .collect()
}
