//! Host taps (`tap create/delete`, `tap`, `clear tap`), owned by namespaces, and the
//! bridges (`bridge`, trunks, tunnels), which belong to the host.

use ferromega_api::{Args, Response};

use crate::network::{Attach, HostTapIp, HostTapSpec, TunnelKind};
use crate::ops::net::{check_ifname, HostTap};
use crate::vm::netspec::DEFAULT_BRIDGE;
use crate::{lock, ControlPlane, DomainError, DomainResult};

impl ControlPlane {
    pub(crate) fn tap_list(&self, ns: &str) -> DomainResult<Response> {
        let vlans = lock(&self.inner.vlans).clone();
        let rows = lock(&self.inner.net)
            .host_taps
            .iter()
            .filter(|(_, t)| t.namespace == ns)
            .map(|(name, t)| vec![t.bridge.clone(), name.clone(), vlans.display(ns, t.vlan)])
            .collect();
        Ok(self.table(&["bridge", "tap", "vlan"], rows))
    }

    pub(crate) async fn tap_create(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let net = self.network()?;
        let bridge = args.string("bridge").unwrap_or(DEFAULT_BRIDGE).to_string();
        check_ifname("bridge", &bridge)?;
        let name = args.string("tap").map(str::to_string);
        if let Some(n) = &name {
            if n == "all" {
                return Err(DomainError::invalid("`all` is a reserved word"));
            }
            check_ifname("tap", n)?;
            if net.interface_exists(n) || lock(&self.inner.net).host_taps.contains_key(n) {
                return Err(DomainError::Conflict("tap already on bridge".into()));
            }
        }
        let ip = match (args.string("ip"), args.flag("dhcp")) {
            (Some(ip), _) => HostTapIp::Static(ip.to_string()),
            (None, true) => HostTapIp::Dhcp,
            _ => HostTapIp::None,
        };
        let vlan = {
            let mut vlans = lock(&self.inner.vlans);
            let (v, created) = vlans
                .lookup_new(ns, args.string("vlan").unwrap_or_default())
                .map_err(DomainError::invalid)?;
            if created {
                self.write_vlans_file(&vlans);
            }
            v
        };
        let spec = HostTapSpec {
            name,
            attach: Attach {
                bridge: bridge.clone(),
                vlan,
            },
            ip,
        };
        let name = net
            .host_tap_create(&spec)
            .await
            .map_err(DomainError::Host)?;
        lock(&self.inner.net).host_taps.insert(
            name.clone(),
            HostTap {
                namespace: ns.to_string(),
                bridge,
                vlan,
            },
        );
        Ok(self.text(name))
    }

    pub(crate) async fn tap_delete(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let which = args.string("tap").unwrap_or_default();
        let names: Vec<String> = {
            let st = lock(&self.inner.net);
            if which == "all" {
                st.host_taps
                    .iter()
                    .filter(|(_, t)| t.namespace == ns)
                    .map(|(n, _)| n.clone())
                    .collect()
            } else {
                match st.host_taps.get(which) {
                    Some(t) if t.namespace == ns => vec![which.to_string()],
                    Some(_) => {
                        let e = "not a host tap in active namespace";
                        return Err(DomainError::NotFound(e.into()));
                    }
                    None => {
                        let exists = self
                            .inner
                            .backends
                            .network
                            .as_ref()
                            .is_some_and(|n| n.interface_exists(which));
                        let e = if exists {
                            "not a host tap"
                        } else {
                            "unknown tap"
                        };
                        return Err(DomainError::NotFound(e.into()));
                    }
                }
            }
        };
        self.host_taps_destroy(&names).await
    }

    pub(crate) async fn clear_tap(&self, ns: &str) -> DomainResult<Response> {
        let names: Vec<String> = lock(&self.inner.net)
            .host_taps
            .iter()
            .filter(|(_, t)| t.namespace == ns)
            .map(|(n, _)| n.clone())
            .collect();
        self.host_taps_destroy(&names).await
    }

    pub(crate) async fn host_taps_destroy(&self, names: &[String]) -> DomainResult<Response> {
        let mut errors = Vec::new();
        for name in names {
            lock(&self.inner.net).host_taps.remove(name);
            if let Some(net) = self.inner.backends.network.clone() {
                if let Err(e) = net.port_destroy(name).await {
                    errors.push(format!("{name}: {e}"));
                }
            }
        }
        match errors.is_empty() {
            true => Ok(self.ok()),
            false => Err(DomainError::Host(errors.join("\n"))),
        }
    }

    pub(crate) async fn bridge(&self, ns: &str) -> DomainResult<Response> {
        let net = self.network()?;
        let vlans = lock(&self.inner.vlans).clone();
        let rows = net
            .bridges()
            .await
            .into_iter()
            .map(|b| {
                let mut vl: Vec<String> = b.vlans.iter().map(|v| vlans.display(ns, *v)).collect();
                vl.sort();
                vec![
                    b.name,
                    b.preexisting.to_string(),
                    format!("[{}]", vl.join(" ")),
                    format!("[{}]", b.trunks.join(" ")),
                    format!("[{}]", b.tunnels.join(" ")),
                ]
            })
            .collect();
        Ok(self.table(
            &["bridge", "preexisting", "vlans", "trunks", "tunnels"],
            rows,
        ))
    }

    pub(crate) async fn bridge_trunk(&self, args: &Args, add: bool) -> DomainResult<Response> {
        let net = self.network()?;
        let bridge = args.string("bridge").unwrap_or_default();
        let iface = args.string("interface").unwrap_or_default();
        check_ifname("bridge", bridge)?;
        let r = match add {
            true => net.trunk_add(bridge, iface).await,
            false => net.trunk_remove(bridge, iface).await,
        };
        r.map_err(DomainError::Host)?;
        Ok(self.ok())
    }

    pub(crate) async fn bridge_tunnel(&self, args: &Args) -> DomainResult<Response> {
        let net = self.network()?;
        let bridge = args.string("bridge").unwrap_or_default();
        check_ifname("bridge", bridge)?;
        let remote = args.string("remote").unwrap_or_default();
        let kind = if args.flag("gre") {
            TunnelKind::Gre
        } else {
            TunnelKind::Vxlan
        };
        let name = net
            .tunnel_add(bridge, kind, remote)
            .await
            .map_err(DomainError::Host)?;
        Ok(self.text(name))
    }

    pub(crate) async fn bridge_notunnel(&self, args: &Args) -> DomainResult<Response> {
        let net = self.network()?;
        let bridge = args.string("bridge").unwrap_or_default();
        let iface = args.string("interface").unwrap_or_default();
        net.tunnel_remove(bridge, iface)
            .await
            .map_err(DomainError::Host)?;
        Ok(self.ok())
    }
}
