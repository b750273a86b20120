//! OvsNetwork: the `HostNetwork` on Open vSwitch, driven as minimega 2.4 drives it —
//! one OVS bridge per logical bridge, access ports with `tag=<vlan>`, trunks and
//! vxlan/gre tunnels as ports, a mirror port for each bridge capture, NetFlow from OVS's
//! own exporter. Taps, veths and addresses are made over netlink; qos, snooping and
//! dnsmasq are the same as on Linux bridges.

pub mod ports;
pub mod switch;
pub mod vsctl;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use ferromega_domain::backends::BoxFuture;
use ferromega_domain::network::{Attach, BridgeInfo};
use tokio::sync::OnceCell;

use crate::common::Captures;
use crate::dnsmasq::Dnsmasqs;
use crate::names::TapNames;
use crate::netflow::{Exporter, Netflows};
use crate::netlink::Nl;
use crate::snoop;
pub use switch::PrivateSwitch;
use vsctl::{OvsError, OvsTarget};

/// What a port of this server is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortKind {
    /// A persistent tap of a KVM NIC.
    Tap,
    /// The outer end of a container veth.
    Veth,
    /// An internal port (a host tap).
    HostTap,
}

/// A port and where it is plugged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Port {
    /// Its kind.
    pub kind: PortKind,
    /// Its bridge and VLAN, None when unplugged.
    pub attach: Option<Attach>,
}

/// One OVS bridge this server uses.
#[derive(Debug, Clone, Default)]
pub struct Bridge {
    /// It existed before (never deleted then).
    pub preexisting: bool,
    /// Trunk ports.
    pub trunks: BTreeSet<String>,
    /// Tunnel ports.
    pub tunnels: BTreeSet<String>,
}

/// The bridges and ports this server made.
#[derive(Debug, Default)]
pub struct Registry {
    /// Bridges by name.
    pub bridges: BTreeMap<String, Bridge>,
    /// Ports by name.
    pub ports: HashMap<String, Port>,
}

impl Registry {
    /// The bridges as `bridge` lists them; VLANs are those of the bridge's ports.
    pub fn list(&self) -> Vec<BridgeInfo> {
        self.bridges
            .iter()
            .map(|(name, b)| {
                let vlans: BTreeSet<u16> = self
                    .ports
                    .values()
                    .filter_map(|p| p.attach.as_ref())
                    .filter(|a| &a.bridge == name && a.vlan != 0)
                    .map(|a| a.vlan)
                    .collect();
                BridgeInfo {
                    name: name.clone(),
                    preexisting: b.preexisting,
                    vlans: vlans.into_iter().collect(),
                    trunks: b.trunks.iter().cloned().collect(),
                    tunnels: b.tunnels.iter().cloned().collect(),
                }
            })
            .collect()
    }
}

/// The host network on Open vSwitch.
pub struct OvsNetwork {
    ovs: OvsTarget,
    nl: OnceCell<Nl>,
    reg: tokio::sync::Mutex<Registry>,
    loaded: OnceCell<()>,
    taps: TapNames,
    captures: Captures,
    snooped: snoop::Table,
    dnsmasq: Dnsmasqs,
    netflow: Netflows,
}

fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl OvsNetwork {
    /// A backend driving the Open vSwitch whose database is `db` (`unix:PATH`; None for
    /// the system's). Netlink and snooping start on first use.
    pub fn new(db: Option<String>) -> Self {
        if let Err(e) = crate::sys::raise_nofile_limit() {
            tracing::warn!("cannot raise the open-file limit: {e}");
        }
        OvsNetwork {
            ovs: OvsTarget::new(db),
            nl: OnceCell::new(),
            reg: tokio::sync::Mutex::default(),
            loaded: OnceCell::new(),
            taps: TapNames::default(),
            captures: Captures::default(),
            snooped: snoop::Table::default(),
            dnsmasq: Dnsmasqs::default(),
            netflow: Netflows::default(),
        }
    }

    /// Whether bridges this server makes use the userspace datapath (`netdev`).
    pub fn userspace(&self) -> bool {
        self.ovs.datapath == "netdev"
    }

    /// Whether the Open vSwitch at `db` answers (`ovs-vsctl show`).
    pub fn answers(db: Option<String>) -> bool {
        OvsTarget::new(db).answers()
    }

    async fn nl(&self) -> Result<&Nl, String> {
        crate::common::netlink(&self.nl, &self.snooped).await
    }

    /// The registry, with what a previous server made loaded on first use.
    async fn reg(&self) -> tokio::sync::MutexGuard<'_, Registry> {
        self.loaded.get_or_init(|| self.load()).await;
        self.reg.lock().await
    }

    /// Finds the bridges a previous server made (marked in `external_ids`) with their
    /// trunks and tunnels; its mirrors and NetFlow exports died with its captures, so
    /// they are removed. Its VMs' taps come back through the VMs it recovers.
    async fn load(&self) {
        let Ok(json) = self.ovs.vsctl(vsctl::find_marked_bridges()).await else {
            return;
        };
        let bridges = vsctl::json_names(&json);
        if bridges.is_empty() {
            return;
        }
        let marks = match self.ovs.vsctl(vsctl::list_ports_json()).await {
            Ok(j) => vsctl::json_port_marks(&j),
            Err(_) => HashMap::new(),
        };
        let mut reg = self.reg.lock().await;
        for br in bridges {
            let mut b = Bridge::default();
            let _ = self.vsctl(vsctl::netflow_clear(&br)).await;
            let ports = self.vsctl(vsctl::list_ports(&br)).await.unwrap_or_default();
            for p in ports.lines() {
                match marks.get(p).map(String::as_str) {
                    Some("trunk") => drop(b.trunks.insert(p.to_string())),
                    Some("tunnel") => drop(b.tunnels.insert(p.to_string())),
                    Some("mirror") => {
                        let _ = self.vsctl(vsctl::mirror_remove(&br, p)).await;
                        let _ = self.vsctl(vsctl::del_port(p)).await;
                    }
                    _ => {}
                }
            }
            tracing::info!("found bridge {br} of a previous server");
            reg.bridges.insert(br, b);
        }
    }

    async fn vsctl(&self, args: Vec<String>) -> Result<String, String> {
        self.ovs.vsctl(args).await.map_err(text)
    }

    /// Bridge `br`, created on first use (as minimega: up, with the snooping flows);
    /// a bridge that already exists is marked pre-existing and never deleted.
    async fn ensure_bridge(&self, reg: &mut Registry, br: &str) -> Result<(), String> {
        if reg.bridges.contains_key(br) {
            return Ok(());
        }
        let exists = match self.ovs.vsctl(vsctl::br_exists(br)).await {
            Ok(_) => true,
            Err(OvsError::Failed { code: 2, .. }) => false,
            Err(e) => return Err(text(e)),
        };
        if !exists {
            self.vsctl(vsctl::add_br(br, &self.ovs.datapath)).await?;
            let nl = self.nl().await?;
            let up = async { nl.set_up(nl.must(br).await?.index).await };
            if let Err(e) = up.await {
                let _ = self.vsctl(vsctl::del_br(br)).await;
                return Err(text(e));
            }
            for flow in vsctl::snoop_flows() {
                let args = vec!["add-flow".to_string(), br.to_string(), flow.to_string()];
                if let Err(e) = self.ovs.ofctl(args).await {
                    tracing::warn!("snooping flow on {br}: {e}");
                }
            }
        }
        let b = Bridge {
            preexisting: exists,
            ..Bridge::default()
        };
        reg.bridges.insert(br.to_string(), b);
        Ok(())
    }

    /// Deletes the bridges this server made and frees the trunks and tunnels of the
    /// others.
    async fn teardown(&self, reg: &mut Registry) {
        for (name, b) in std::mem::take(&mut reg.bridges) {
            for p in b.trunks.iter().chain(&b.tunnels) {
                if let Err(e) = self.vsctl(vsctl::del_port(p)).await {
                    tracing::warn!("removing {p} from {name}: {e}");
                }
            }
            if !b.preexisting {
                if let Err(e) = self.vsctl(vsctl::del_br(&name)).await {
                    tracing::warn!("removing bridge {name}: {e}");
                }
            }
        }
    }
}

impl Exporter for OvsTarget {
    fn export<'a>(
        &'a self,
        bridge: &'a str,
        port: u16,
        timeout: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.vsctl(vsctl::netflow_set(bridge, port, timeout))
                .await
                .map(drop)
                .map_err(text)
        })
    }

    fn unexport<'a>(&'a self, bridge: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if let Err(e) = self.vsctl(vsctl::netflow_clear(bridge)).await {
                tracing::warn!("clearing netflow of {bridge}: {e}");
            }
        })
    }

    fn retime<'a>(
        &'a self,
        bridge: &'a str,
        _port: u16,
        timeout: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            self.vsctl(vsctl::netflow_timeout(bridge, timeout))
                .await
                .map(drop)
                .map_err(text)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_vlans_are_those_of_the_bridges_ports() {
        let mut reg = Registry::default();
        reg.bridges.insert("b".into(), Bridge::default());
        for (name, vlan) in [("t0", 5), ("t1", 5), ("t2", 0), ("t3", 9)] {
            reg.ports.insert(
                name.into(),
                Port {
                    kind: PortKind::Tap,
                    attach: Some(Attach {
                        bridge: if name == "t3" { "other" } else { "b" }.into(),
                        vlan,
                    }),
                },
            );
        }
        let l = reg.list();
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].vlans, vec![5]);
    }
}
