//! Logical bridges on Linux bridges: one kernel bridge per (logical bridge, VLAN), ports
//! plugged into the right one, trunks on the untagged bridge, tunnels with one device per
//! VLAN, and VLAN bridges removed again when their last port leaves.
//!
//! ```text
//!   logical "mega_bridge"          kernel
//!     VLAN 0 (untagged, trunks) ─► mega_bridge            (alias "ferromega mega_bridge vlan 0")
//!     VLAN 101                  ─► mb<hash>.101 ◄─ mega_tap3, vx<hash>.101 (tunnel)
//!     VLAN 102                  ─► mb<hash>.102 ◄─ mega_tap4
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use ferromega_domain::network::{Attach, BridgeInfo, TunnelKind};

use crate::capture::PortMap;
use crate::names::{bridge_alias, tunnel_device, vlan_bridge};
use crate::netlink::{is_bridge, Nl, NlError};

/// A tunnel of a logical bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tunnel {
    /// Encapsulation.
    pub kind: TunnelKind,
    /// Far end.
    pub remote: IpAddr,
}

/// One logical bridge.
#[derive(Debug, Clone, Default)]
pub struct Bridge {
    /// The untagged kernel bridge existed before (never deleted then).
    pub preexisting: bool,
    /// VLANs (≠ 0) whose kernel bridges exist.
    pub vlans: BTreeSet<u16>,
    /// Trunk interfaces.
    pub trunks: BTreeSet<String>,
    /// Tunnels by name.
    pub tunnels: BTreeMap<String, Tunnel>,
    /// VXLAN tunnels that ride on another's devices (a VNI has one device per host):
    /// tunnel → the tunnel whose devices carry it as one more destination.
    pub shared: BTreeMap<String, String>,
}

impl Bridge {
    /// The VXLAN tunnel with devices of its own, if any (new VXLAN tunnels share it).
    fn vxlan_carrier(&self) -> Option<String> {
        self.tunnels
            .iter()
            .find(|(n, t)| t.kind == TunnelKind::Vxlan && !self.shared.contains_key(*n))
            .map(|(n, _)| n.clone())
    }
}

/// What kind of device a port is, which says how it goes away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortKind {
    /// A persistent tap of a KVM NIC.
    Tap,
    /// The outer end of a container veth.
    Veth,
    /// A host tap; its bridge side is the veth peer `peer`.
    HostTap {
        /// The enslaved end.
        peer: String,
    },
}

/// The bridges and ports this server made.
#[derive(Debug, Default)]
pub struct Registry {
    /// Logical bridges by name.
    pub bridges: BTreeMap<String, Bridge>,
    /// Ports by user-visible name.
    pub ports: HashMap<String, PortKind>,
}

/// Parses a kernel bridge alias back into (logical bridge, VLAN).
pub fn parse_alias(alias: &str) -> Option<(String, u16)> {
    let rest = alias.strip_prefix("ferromega ")?;
    let (name, vlan) = rest.rsplit_once(" vlan ")?;
    Some((name.to_string(), vlan.parse().ok()?))
}

/// The registry with the netlink session and port map it works through.
pub struct Net<'a> {
    /// Netlink.
    pub nl: &'a Nl,
    /// The registry (held locked by the caller).
    pub reg: &'a mut Registry,
    /// Interface index → logical bridge, for bridge captures.
    pub ports: &'a PortMap,
}

fn note(ports: &PortMap, index: u32, bridge: Option<&str>) {
    if let Ok(mut p) = ports.write() {
        match bridge {
            Some(b) => drop(p.insert(index, b.to_string())),
            None => drop(p.remove(&index)),
        }
    }
}

impl Net<'_> {
    /// The untagged kernel bridge of `logical`, created on first use; returns its index.
    pub async fn ensure_bridge(&mut self, logical: &str) -> Result<u32, NlError> {
        let alias = bridge_alias(logical, 0);
        match self.nl.link(logical).await? {
            Some(l) if is_bridge(&l.kind) => {
                if !self.reg.bridges.contains_key(logical) {
                    let b = Bridge {
                        preexisting: l.alias != alias,
                        ..Bridge::default()
                    };
                    self.reg.bridges.insert(logical.to_string(), b);
                }
                Ok(l.index)
            }
            Some(_) => Err(NlError::Kernel {
                what: format!("using {logical} as a bridge"),
                text: "an interface of that name exists and is not a bridge".into(),
                errno: libc::EEXIST,
            }),
            None => {
                self.nl.bridge_create(logical, &alias).await?;
                self.reg
                    .bridges
                    .entry(logical.to_string())
                    .or_default()
                    .preexisting = false;
                Ok(self.nl.must(logical).await?.index)
            }
        }
    }

    /// The kernel bridge of `attach`, created (with its tunnel devices) on first use.
    pub async fn ensure_vlan(&mut self, attach: &Attach) -> Result<u32, NlError> {
        let base = self.ensure_bridge(&attach.bridge).await?;
        if attach.vlan == 0 {
            return Ok(base);
        }
        let name = vlan_bridge(&attach.bridge, attach.vlan);
        let idx = match self.nl.link(&name).await? {
            Some(l) => l.index,
            None => {
                self.nl
                    .bridge_create(&name, &bridge_alias(&attach.bridge, attach.vlan))
                    .await?;
                self.nl.must(&name).await?.index
            }
        };
        let b = self.reg.bridges.entry(attach.bridge.clone()).or_default();
        if b.vlans.insert(attach.vlan) {
            // Tunnels with devices first: shared ones add destinations to them.
            let mut tunnels: Vec<(String, Tunnel, Option<String>)> = b
                .tunnels
                .iter()
                .map(|(n, t)| (n.clone(), t.clone(), b.shared.get(n).cloned()))
                .collect();
            tunnels.sort_by_key(|(_, _, via)| via.is_some());
            for (tname, t, via) in tunnels {
                let r = match via {
                    Some(via) => self.tunnel_share(&via, t.remote, attach.vlan).await,
                    None => self.tunnel_device_add(&tname, &t, attach.vlan, idx).await,
                };
                if let Err(e) = r {
                    tracing::warn!("tunnel {tname} on VLAN {}: {e}", attach.vlan);
                }
            }
        }
        Ok(idx)
    }

    /// Plugs device `dev` into `attach`, unplugging it from where it was.
    pub async fn attach(&mut self, dev: &str, attach: &Attach) -> Result<(), NlError> {
        let before = self.master_of(dev).await?;
        let br = self.ensure_vlan(attach).await?;
        let d = self.nl.must(dev).await?;
        self.nl.set_master(d.index, br).await?;
        note(self.ports, d.index, Some(&attach.bridge));
        if let Some(old) = before.filter(|o| o != attach) {
            self.gc(&old).await;
        }
        Ok(())
    }

    /// Unplugs device `dev` from its bridge (nothing to do when it is on none).
    pub async fn detach(&mut self, dev: &str) -> Result<(), NlError> {
        let Some(d) = self.nl.link(dev).await? else {
            return Ok(());
        };
        let before = self.master_of(dev).await?;
        if d.master.is_some() {
            self.nl.set_nomaster(d.index).await?;
        }
        note(self.ports, d.index, None);
        if let Some(old) = before {
            self.gc(&old).await;
        }
        Ok(())
    }

    /// The (logical bridge, VLAN) device `dev` is plugged into, read from the
    /// master's alias (so ports a previous server made are understood too).
    async fn master_of(&self, dev: &str) -> Result<Option<Attach>, NlError> {
        let Some(d) = self.nl.link(dev).await? else {
            return Ok(None);
        };
        let Some(m) = d.master else { return Ok(None) };
        let links = self.nl.links().await?;
        Ok(links
            .iter()
            .find(|l| l.index == m)
            .and_then(|l| parse_alias(&l.alias))
            .map(|(bridge, vlan)| Attach { bridge, vlan }))
    }

    /// Undoes a port a failed operation created: deletes the interface `name`, and the
    /// logical bridge too when the operation made it (`new_bridge`) and nothing uses it.
    pub async fn undo_port(&mut self, name: &str, new_bridge: Option<&str>) {
        let _ = self.nl.delete_name(name).await;
        if let Some(logical) = new_bridge {
            self.drop_if_unused(logical).await;
        }
    }

    /// Undoes the creation of `logical` by a failed operation: removes it when this
    /// server made it and nothing uses it.
    pub async fn drop_if_unused(&mut self, logical: &str) {
        let Some(b) = self.reg.bridges.get(logical) else {
            return;
        };
        if b.preexisting || !b.vlans.is_empty() || !b.trunks.is_empty() || !b.tunnels.is_empty() {
            return;
        }
        if let Ok(Some(l)) = self.nl.link(logical).await {
            if !self
                .nl
                .ports_of(l.index)
                .await
                .unwrap_or_default()
                .is_empty()
            {
                return;
            }
            if let Err(e) = self.nl.delete(l.index).await {
                tracing::warn!("removing bridge {logical}: {e}");
                return;
            }
        }
        self.reg.bridges.remove(logical);
    }

    /// Removes every VLAN bridge left without ports (their last port may have vanished
    /// with a container's network namespace).
    pub async fn gc_all(&mut self) {
        let all: Vec<Attach> = self
            .reg
            .bridges
            .iter()
            .flat_map(|(b, br)| {
                br.vlans.iter().map(move |v| Attach {
                    bridge: b.clone(),
                    vlan: *v,
                })
            })
            .collect();
        for at in all {
            self.gc(&at).await;
        }
    }

    /// Removes a VLAN bridge whose only ports left are tunnel devices.
    async fn gc(&mut self, at: &Attach) {
        if at.vlan == 0 {
            return;
        }
        let name = vlan_bridge(&at.bridge, at.vlan);
        let Ok(Some(br)) = self.nl.link(&name).await else {
            return;
        };
        let Ok(ports) = self.nl.ports_of(br.index).await else {
            return;
        };
        let tunnels: Vec<String> = self
            .reg
            .bridges
            .get(&at.bridge)
            .map(|b| {
                b.tunnels
                    .keys()
                    .map(|t| tunnel_device(t, at.vlan))
                    .collect()
            })
            .unwrap_or_default();
        if ports.iter().any(|p| !tunnels.contains(&p.name)) {
            return;
        }
        for t in &tunnels {
            let _ = self.nl.delete_name(t).await;
        }
        if let Err(e) = self.nl.delete(br.index).await {
            tracing::warn!("removing bridge {name}: {e}");
        }
        if let Some(b) = self.reg.bridges.get_mut(&at.bridge) {
            b.vlans.remove(&at.vlan);
        }
    }

    /// The VLANs (≠ 0) whose kernel bridges `logical` has.
    fn vlans_of(&self, logical: &str) -> Vec<u16> {
        self.reg
            .bridges
            .get(logical)
            .map(|b| b.vlans.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Adds `remote` as a destination of tunnel `via`'s device on `vlan`.
    async fn tunnel_share(&self, via: &str, remote: IpAddr, vlan: u16) -> Result<(), NlError> {
        let dev = self.nl.must(&tunnel_device(via, vlan)).await?;
        self.nl.vxlan_fdb_append(dev.index, remote).await
    }

    async fn tunnel_device_add(
        &self,
        tunnel: &str,
        t: &Tunnel,
        vlan: u16,
        master: u32,
    ) -> Result<(), NlError> {
        let dev = tunnel_device(tunnel, vlan);
        match (t.kind, t.remote) {
            (TunnelKind::Vxlan, remote) => {
                self.nl.vxlan_create(&dev, u32::from(vlan), remote).await?
            }
            (TunnelKind::Gre, IpAddr::V4(r)) => {
                self.nl.gretap_create(&dev, u32::from(vlan), r).await?
            }
            (TunnelKind::Gre, IpAddr::V6(_)) => {
                return Err(NlError::Kernel {
                    what: format!("creating gretap {dev}"),
                    text: "gre tunnels take an IPv4 remote".into(),
                    errno: libc::EINVAL,
                })
            }
        }
        let d = self.nl.must(&dev).await?;
        if let Err(e) = self.nl.set_master(d.index, master).await {
            let _ = self.nl.delete(d.index).await;
            return Err(e);
        }
        Ok(())
    }

    /// Adds tunnel `name` to `remote` on every VLAN of `logical`.
    pub async fn tunnel_add(
        &mut self,
        logical: &str,
        name: &str,
        t: Tunnel,
    ) -> Result<(), NlError> {
        let had = self.reg.bridges.contains_key(logical);
        let base = self.ensure_bridge(logical).await?;
        let carrier = self
            .reg
            .bridges
            .get(logical)
            .and_then(Bridge::vxlan_carrier)
            .filter(|_| t.kind == TunnelKind::Vxlan);
        if let Some(via) = carrier {
            return self.tunnel_add_shared(logical, name, t, &via).await;
        }
        let vlans = self.vlans_of(logical);
        let mut made: Vec<String> = Vec::new();
        for v in std::iter::once(0).chain(vlans) {
            let master = match v {
                0 => base,
                v => self.nl.must(&vlan_bridge(logical, v)).await?.index,
            };
            if let Err(e) = self.tunnel_device_add(name, &t, v, master).await {
                for d in made {
                    let _ = self.nl.delete_name(&d).await;
                }
                if !had {
                    self.drop_if_unused(logical).await;
                }
                return Err(e);
            }
            made.push(tunnel_device(name, v));
        }
        if let Some(b) = self.reg.bridges.get_mut(logical) {
            b.tunnels.insert(name.to_string(), t);
        }
        Ok(())
    }

    /// Adds VXLAN tunnel `name` to `t.remote` as one more destination of tunnel `via`'s
    /// devices (one per VLAN), undoing what it added on failure.
    async fn tunnel_add_shared(
        &mut self,
        logical: &str,
        name: &str,
        t: Tunnel,
        via: &str,
    ) -> Result<(), NlError> {
        let vlans = self.vlans_of(logical);
        let mut done: Vec<u16> = Vec::new();
        for v in std::iter::once(0).chain(vlans) {
            if let Err(e) = self.tunnel_share(via, t.remote, v).await {
                for d in done {
                    self.tunnel_unshare(via, t.remote, d).await;
                }
                return Err(e);
            }
            done.push(v);
        }
        if let Some(b) = self.reg.bridges.get_mut(logical) {
            b.tunnels.insert(name.to_string(), t);
            b.shared.insert(name.to_string(), via.to_string());
        }
        Ok(())
    }

    /// Removes `remote` from tunnel `via`'s device on `vlan` (best effort: a device
    /// already gone took its destinations with it).
    async fn tunnel_unshare(&self, via: &str, remote: IpAddr, vlan: u16) {
        if let Ok(Some(dev)) = self.nl.link(&tunnel_device(via, vlan)).await {
            if let Err(e) = self.nl.vxlan_fdb_remove(dev.index, remote).await {
                tracing::warn!("tunnel {via} on VLAN {vlan}: {e}");
            }
        }
    }

    /// Removes tunnel `name` from `logical`; false when there is no such tunnel. A
    /// VXLAN tunnel that others share cannot go before them.
    pub async fn tunnel_remove(&mut self, logical: &str, name: &str) -> Result<bool, NlError> {
        let Some(b) = self.reg.bridges.get_mut(logical) else {
            return Ok(false);
        };
        if let Some(user) = b
            .shared
            .iter()
            .find(|(_, via)| *via == name)
            .map(|(n, _)| n)
        {
            return Err(NlError::Kernel {
                what: format!("removing tunnel {name}"),
                text: format!("tunnel {user} rides on it: remove {user} first"),
                errno: libc::EBUSY,
            });
        }
        let Some(t) = b.tunnels.remove(name) else {
            return Ok(false);
        };
        let via = b.shared.remove(name);
        let vlans: Vec<u16> = b.vlans.iter().copied().collect();
        for v in std::iter::once(0).chain(vlans) {
            match &via {
                Some(via) => self.tunnel_unshare(via, t.remote, v).await,
                None => self.nl.delete_name(&tunnel_device(name, v)).await?,
            }
        }
        Ok(true)
    }

    /// Adds `iface` to the untagged bridge of `logical` as a trunk.
    pub async fn trunk_add(&mut self, logical: &str, iface: &str) -> Result<(), NlError> {
        let d = self.nl.must(iface).await?;
        let base = self.ensure_bridge(logical).await?;
        self.nl.set_master(d.index, base).await?;
        note(self.ports, d.index, Some(logical));
        if let Some(b) = self.reg.bridges.get_mut(logical) {
            b.trunks.insert(iface.to_string());
        }
        Ok(())
    }

    /// Removes trunk `iface` from `logical`; false when it is not one.
    pub async fn trunk_remove(&mut self, logical: &str, iface: &str) -> Result<bool, NlError> {
        let known = self
            .reg
            .bridges
            .get_mut(logical)
            .is_some_and(|b| b.trunks.remove(iface));
        if known {
            if let Some(d) = self.nl.link(iface).await? {
                self.nl.set_nomaster(d.index).await?;
                note(self.ports, d.index, None);
            }
        }
        Ok(known)
    }

    /// The logical bridges as `bridge` lists them.
    pub fn list(&self) -> Vec<BridgeInfo> {
        self.reg
            .bridges
            .iter()
            .map(|(name, b)| BridgeInfo {
                name: name.clone(),
                preexisting: b.preexisting,
                vlans: b.vlans.iter().copied().collect(),
                trunks: b.trunks.iter().cloned().collect(),
                tunnels: b.tunnels.keys().cloned().collect(),
            })
            .collect()
    }

    /// Takes down every bridge, tunnel and trunk this server made (pre-existing
    /// bridges stay, with their trunks freed).
    pub async fn teardown(&mut self) {
        let bridges = std::mem::take(&mut self.reg.bridges);
        for (name, b) in bridges {
            for v in std::iter::once(0).chain(b.vlans.iter().copied()) {
                for t in b.tunnels.keys() {
                    let _ = self.nl.delete_name(&tunnel_device(t, v)).await;
                }
            }
            for t in &b.trunks {
                if let Ok(Some(d)) = self.nl.link(t).await {
                    let _ = self.nl.set_nomaster(d.index).await;
                }
            }
            for v in &b.vlans {
                if let Err(e) = self.nl.delete_name(&vlan_bridge(&name, *v)).await {
                    tracing::warn!("removing VLAN {v} of {name}: {e}");
                }
            }
            if !b.preexisting {
                if let Err(e) = self.nl.delete_name(&name).await {
                    tracing::warn!("removing bridge {name}: {e}");
                }
            }
        }
        if let Ok(mut p) = self.ports.write() {
            p.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_round_trip() {
        let a = bridge_alias("mega_bridge", 101);
        assert_eq!(parse_alias(&a), Some(("mega_bridge".into(), 101)));
        assert_eq!(parse_alias("something else"), None);
    }
}
