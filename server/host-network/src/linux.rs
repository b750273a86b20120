//! LinuxNetwork: the real `HostNetwork` on Linux bridges — taps, veths, host taps,
//! trunks, tunnels, qos, captures, snooping and dnsmasq, for one network namespace.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use ferromega_domain::backends::{BoxFuture, HostNetwork};
use ferromega_domain::network::{
    Attach, BridgeInfo, CaptureSpec, CaptureStats, CaptureTarget, Counters, DnsmasqSpec,
    HostTapSpec, NetflowSpec, Qos, Snooped, TunnelKind,
};
use tokio::sync::OnceCell;

use crate::bridges::{Net, PortKind, Registry, Tunnel};
use crate::capture::{self, PortMap};
use crate::common::{self, Captures, Running};
use crate::dnsmasq::Dnsmasqs;
use crate::names::{host_tap_peer, parse_mac, veth_temp, TapNames};
use crate::netflow::softflowd::Softflowd;
use crate::netflow::Netflows;
use crate::netlink::{Nl, NlError};
use crate::{qos, snoop, sys};

/// The host network of this server's network namespace.
pub struct LinuxNetwork {
    nl: OnceCell<Nl>,
    reg: tokio::sync::Mutex<Registry>,
    ports: PortMap,
    taps: TapNames,
    captures: Captures,
    snooped: snoop::Table,
    dnsmasq: Dnsmasqs,
    netflow: Netflows,
    flowd: Softflowd,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn text(e: NlError) -> String {
    e.to_string()
}

impl Default for LinuxNetwork {
    fn default() -> Self {
        let ports = PortMap::default();
        LinuxNetwork {
            nl: OnceCell::new(),
            reg: tokio::sync::Mutex::default(),
            ports: ports.clone(),
            taps: TapNames::default(),
            captures: Captures::default(),
            snooped: snoop::Table::default(),
            dnsmasq: Dnsmasqs::default(),
            netflow: Netflows::default(),
            flowd: Softflowd::new(ports),
        }
    }
}

impl LinuxNetwork {
    /// A network backend; netlink and snooping start on first use. Raises the
    /// open-file limit, since every capture holds a socket and a file.
    pub fn new() -> Self {
        if let Err(e) = sys::raise_nofile_limit() {
            tracing::warn!("cannot raise the open-file limit: {e}");
        }
        Self::default()
    }

    async fn nl(&self) -> Result<&Nl, String> {
        common::netlink(&self.nl, &self.snooped).await
    }

    fn next_tap(&self) -> String {
        self.taps.next(|n| sys::if_index(n).is_some())
    }

    /// Stops the captures listening on `port`.
    async fn captures_on_stop(&self, port: &str) {
        for r in self.captures.take_on(port) {
            r.capture.stop().await;
        }
    }

    async fn tap_create_inner(&self, attach: Option<&Attach>) -> Result<String, String> {
        let nl = self.nl().await?;
        let mut reg = self.reg.lock().await;
        let name = common::new_tap(&self.taps)?;
        let ready = async { Ok(()) };
        self.up_and_attach(nl, &mut reg, &name, ready, attach, PortKind::Tap)
            .await
    }

    async fn veth_inner(
        &self,
        pid: u32,
        inner: &str,
        mac: &str,
        attach: Option<&Attach>,
    ) -> Result<String, String> {
        let nl = self.nl().await?;
        let mut reg = self.reg.lock().await;
        let name = self.next_tap();
        let temp = veth_temp(&name);
        nl.veth_create(&name, &temp).await.map_err(text)?;
        // The container's end gets its MAC and moves into the container.
        let inside = async {
            let t = nl.must(&temp).await?;
            if let Some(m) = parse_mac(mac) {
                nl.set_mac(t.index, m).await?;
            }
            nl.move_to(t.index, pid, inner).await
        };
        self.up_and_attach(nl, &mut reg, &name, inside, attach, PortKind::Veth)
            .await
    }

    /// Finishes port `name` once `ready` (its own set-up) is done: brings it up, attaches
    /// it to `attach`'s bridge, records it as `kind`. When a step fails, the port — and a
    /// bridge made for it — are removed again, and the error is the answer.
    async fn up_and_attach(
        &self,
        nl: &Nl,
        reg: &mut Registry,
        name: &str,
        ready: impl std::future::Future<Output = Result<(), NlError>>,
        attach: Option<&Attach>,
        kind: PortKind,
    ) -> Result<String, String> {
        let new_bridge = attach
            .filter(|a| !reg.bridges.contains_key(&a.bridge))
            .map(|a| a.bridge.clone());
        let mut net = Net {
            nl,
            reg,
            ports: &self.ports,
        };
        let result = async {
            ready.await?;
            let idx = nl.must(name).await?.index;
            nl.set_up(idx).await?;
            if let Some(a) = attach {
                net.attach(name, a).await?;
            }
            Ok::<(), NlError>(())
        }
        .await;
        if let Err(e) = result {
            net.undo_port(name, new_bridge.as_deref()).await;
            return Err(text(e));
        }
        net.reg.ports.insert(name.to_string(), kind);
        Ok(name.to_string())
    }

    async fn host_tap_inner(&self, spec: &HostTapSpec) -> Result<String, String> {
        let nl = self.nl().await?;
        let mut reg = self.reg.lock().await;
        let new_bridge = !reg.bridges.contains_key(&spec.attach.bridge);
        let name = match &spec.name {
            Some(n) if sys::if_index(n).is_some() => return Err("tap already on bridge".into()),
            Some(n) => n.clone(),
            None => self.next_tap(),
        };
        let peer = host_tap_peer(&name);
        nl.veth_create(&name, &peer).await.map_err(text)?;
        let result = async {
            let mut net = Net {
                nl,
                reg: &mut reg,
                ports: &self.ports,
            };
            net.attach(&peer, &spec.attach).await.map_err(text)?;
            let idx = nl.must(&name).await.map_err(text)?.index;
            nl.set_up(idx).await.map_err(text)?;
            common::host_tap_address(nl, idx, &name, &spec.ip).await
        }
        .await;
        if let Err(e) = result {
            let mut net = Net {
                nl,
                reg: &mut reg,
                ports: &self.ports,
            };
            let _ = net.detach(&peer).await;
            let made = new_bridge.then_some(spec.attach.bridge.as_str());
            net.undo_port(&name, made).await;
            return Err(e);
        }
        reg.ports.insert(name.clone(), PortKind::HostTap { peer });
        Ok(name)
    }

    /// The enslaved device of a port (a host tap's peer, else the port itself).
    fn dev_of(reg: &Registry, port: &str) -> String {
        match reg.ports.get(port) {
            Some(PortKind::HostTap { peer }) => peer.clone(),
            _ => port.to_string(),
        }
    }

    async fn port_destroy_inner(&self, port: &str) -> Result<(), String> {
        self.captures_on_stop(port).await;
        let nl = self.nl().await?;
        let mut reg = self.reg.lock().await;
        let dev = Self::dev_of(&reg, port);
        qos::clear(port).await;
        let mut net = Net {
            nl,
            reg: &mut reg,
            ports: &self.ports,
        };
        net.detach(&dev).await.map_err(text)?;
        nl.delete_name(port).await.map_err(text)?;
        net.gc_all().await;
        reg.ports.remove(port);
        Ok(())
    }

    async fn capture_inner(&self, spec: &CaptureSpec) -> Result<u64, String> {
        self.nl().await?;
        let (scope, port) = match &spec.target {
            CaptureTarget::Interface(i) => {
                let idx = sys::if_index(i).ok_or_else(|| format!("no such interface: {i}"))?;
                (capture::Scope::Interface(idx), Some(i.clone()))
            }
            CaptureTarget::Bridge(b) => {
                if !self.reg.lock().await.bridges.contains_key(b) {
                    return Err(format!("unknown bridge: {b}"));
                }
                (capture::Scope::Bridge(b.clone(), self.ports.clone()), None)
            }
        };
        let c = capture::start(scope, &spec.path, spec.snaplen, &spec.filter)
            .await
            .map_err(|e| e.to_string())?;
        Ok(self.captures.insert(Running {
            capture: c,
            port,
            mirror: None,
        }))
    }

    async fn reset_inner(&self) {
        for r in self.captures.take_all() {
            r.capture.stop().await;
        }
        self.netflow.stop_all(&self.flowd).await;
        self.dnsmasq.kill_all().await;
        let Ok(nl) = self.nl().await else { return };
        let ports: Vec<String> = self.reg.lock().await.ports.keys().cloned().collect();
        for p in ports {
            if let Err(e) = self.port_destroy_inner(&p).await {
                tracing::warn!("removing {p}: {e}");
            }
        }
        let mut reg = self.reg.lock().await;
        let mut net = Net {
            nl,
            reg: &mut reg,
            ports: &self.ports,
        };
        net.teardown().await;
    }
}

impl HostNetwork for LinuxNetwork {
    fn tap_create<'a>(
        &'a self,
        attach: Option<&'a Attach>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.tap_create_inner(attach))
    }

    fn veth_attach<'a>(
        &'a self,
        pid: u32,
        inner: &'a str,
        mac: &'a str,
        attach: Option<&'a Attach>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.veth_inner(pid, inner, mac, attach))
    }

    fn host_tap_create<'a>(
        &'a self,
        spec: &'a HostTapSpec,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.host_tap_inner(spec))
    }

    fn port_connect<'a>(
        &'a self,
        port: &'a str,
        attach: &'a Attach,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let nl = self.nl().await?;
            let mut reg = self.reg.lock().await;
            let dev = Self::dev_of(&reg, port);
            let mut net = Net {
                nl,
                reg: &mut reg,
                ports: &self.ports,
            };
            net.attach(&dev, attach).await.map_err(text)
        })
    }

    fn port_disconnect<'a>(&'a self, port: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let nl = self.nl().await?;
            let mut reg = self.reg.lock().await;
            let dev = Self::dev_of(&reg, port);
            let mut net = Net {
                nl,
                reg: &mut reg,
                ports: &self.ports,
            };
            net.detach(&dev).await.map_err(text)
        })
    }

    fn port_destroy<'a>(&'a self, port: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.port_destroy_inner(port))
    }

    fn interface_exists(&self, name: &str) -> bool {
        sys::if_index(name).is_some()
    }

    fn bridges(&self) -> BoxFuture<'_, Vec<BridgeInfo>> {
        Box::pin(async move {
            let Ok(nl) = self.nl().await else {
                return Vec::new();
            };
            let mut reg = self.reg.lock().await;
            let mut net = Net {
                nl,
                reg: &mut reg,
                ports: &self.ports,
            };
            net.gc_all().await;
            net.list()
        })
    }

    fn trunk_add<'a>(
        &'a self,
        bridge: &'a str,
        iface: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let nl = self.nl().await?;
            let mut reg = self.reg.lock().await;
            if reg.ports.contains_key(iface) {
                return Err(format!("{iface} is a port of this server, not a trunk"));
            }
            let mut net = Net {
                nl,
                reg: &mut reg,
                ports: &self.ports,
            };
            net.trunk_add(bridge, iface).await.map_err(text)
        })
    }

    fn trunk_remove<'a>(
        &'a self,
        bridge: &'a str,
        iface: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let nl = self.nl().await?;
            let mut reg = self.reg.lock().await;
            let mut net = Net {
                nl,
                reg: &mut reg,
                ports: &self.ports,
            };
            match net.trunk_remove(bridge, iface).await.map_err(text)? {
                true => Ok(()),
                false => Err(format!("{iface} is not a trunk of {bridge}")),
            }
        })
    }

    fn tunnel_add<'a>(
        &'a self,
        bridge: &'a str,
        kind: TunnelKind,
        remote: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let remote: IpAddr = remote
                .parse()
                .map_err(|_| format!("invalid remote ip: {remote}"))?;
            let nl = self.nl().await?;
            let mut reg = self.reg.lock().await;
            let name = self.next_tap();
            let mut net = Net {
                nl,
                reg: &mut reg,
                ports: &self.ports,
            };
            match net.tunnel_add(bridge, &name, Tunnel { kind, remote }).await {
                Ok(()) => Ok(name),
                Err(e) if kind == TunnelKind::Gre && e.errno() == Some(libc::EOPNOTSUPP) => Err(
                    "gre tunnels need the kernel's GRE tap support (ip_gre, CONFIG_NET_IPGRE), \
                     which this kernel does not have; use vxlan"
                        .to_string(),
                ),
                Err(e) if e.errno() == Some(libc::EEXIST) => Err(format!(
                    "{e} (a VXLAN VNI is the VLAN number: another tunnel on this host already \
                     carries one of the bridge's VLANs)"
                )),
                Err(e) => Err(text(e)),
            }
        })
    }

    fn tunnel_remove<'a>(
        &'a self,
        bridge: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let nl = self.nl().await?;
            let mut reg = self.reg.lock().await;
            let mut net = Net {
                nl,
                reg: &mut reg,
                ports: &self.ports,
            };
            match net.tunnel_remove(bridge, name).await.map_err(text)? {
                true => Ok(()),
                false => Err(format!("no tunnel {name} on bridge {bridge}")),
            }
        })
    }

    fn qos_apply<'a>(&'a self, port: &'a str, q: &'a Qos) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { qos::apply(port, q).await.map_err(|e| e.to_string()) })
    }

    fn capture_start<'a>(&'a self, spec: &'a CaptureSpec) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(self.capture_inner(spec))
    }

    fn capture_stop(&self, id: u64) -> BoxFuture<'_, Result<CaptureStats, String>> {
        Box::pin(async move {
            match self.captures.take(id) {
                Some(r) => Ok(r.capture.stop().await),
                // Its port went away first and took the capture with it.
                None => Ok(CaptureStats::default()),
            }
        })
    }

    fn snooped(&self) -> HashMap<String, Snooped> {
        lock(&self.snooped).clone()
    }

    fn counters(&self, port: &str) -> Option<Counters> {
        common::proc_counters(port)
    }

    fn dnsmasq_start<'a>(&'a self, spec: &'a DnsmasqSpec) -> BoxFuture<'a, Result<u32, String>> {
        Box::pin(async move { self.dnsmasq.start(spec).await.map_err(|e| e.to_string()) })
    }

    fn dnsmasq_reload(&self, pid: u32) -> Result<(), String> {
        self.dnsmasq.reload(pid).map_err(|e| e.to_string())
    }

    fn dnsmasq_kill(&self, pid: u32) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.dnsmasq.kill(pid).await.map_err(|e| e.to_string()) })
    }

    fn netflow_start<'a>(&'a self, spec: &'a NetflowSpec) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            if !self.reg.lock().await.bridges.contains_key(&spec.bridge) {
                return Err(format!("unknown bridge: {}", spec.bridge));
            }
            self.netflow.start(&self.flowd, spec).await
        })
    }

    fn netflow_stop(&self, id: u64) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.netflow.stop(&self.flowd, id).await;
            Ok(())
        })
    }

    fn netflow_timeout(&self, seconds: u32) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.netflow.set_timeout(&self.flowd, seconds))
    }

    fn reset(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.reset_inner())
    }
}
