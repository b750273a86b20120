//! The `HostNetwork` operations of [`OvsNetwork`]: taps, veths and host taps plugged
//! into OVS bridges, moves between VLANs, trunks, tunnels, captures (bridge captures
//! through a mirror port), NetFlow, and the reset that removes it all.

use std::collections::HashMap;
use std::net::IpAddr;

use ferromega_domain::backends::{BoxFuture, HostNetwork};
use ferromega_domain::network::{
    Attach, BridgeInfo, CaptureSpec, CaptureStats, CaptureTarget, Counters, DnsmasqSpec,
    HostTapSpec, NetflowSpec, Qos, Snooped, TunnelKind,
};

use super::{text, vsctl, OvsNetwork, Port, PortKind, Registry};
use crate::common::{self, Running};
use crate::names::{parse_mac, veth_temp};
use crate::{capture, qos, sys};

impl OvsNetwork {
    fn next_name(&self) -> String {
        self.taps.next(|n| sys::if_index(n).is_some())
    }

    /// Plugs `port` into `attach` (from wherever it was, in one transaction).
    async fn plug(&self, reg: &mut Registry, port: &str, attach: &Attach) -> Result<(), String> {
        self.ensure_bridge(reg, &attach.bridge).await?;
        let was = reg.ports.get(port).cloned();
        let args = match &was {
            Some(Port {
                attach: Some(a), ..
            }) if a.bridge == attach.bridge => vsctl::retag(port, attach.vlan),
            Some(Port {
                kind: PortKind::HostTap,
                ..
            }) => {
                return Err(format!(
                    "{port} is a host tap: it cannot move to another bridge on Open vSwitch"
                ))
            }
            _ => vsctl::move_port(&attach.bridge, port, attach.vlan),
        };
        self.vsctl(args).await?;
        if let Some(p) = reg.ports.get_mut(port) {
            p.attach = Some(attach.clone());
        }
        Ok(())
    }

    /// Records a new port, plugging it into `attach` first when given; on failure the
    /// interface is deleted again.
    async fn adopt(
        &self,
        reg: &mut Registry,
        name: &str,
        kind: PortKind,
        attach: Option<&Attach>,
    ) -> Result<(), String> {
        reg.ports
            .insert(name.to_string(), Port { kind, attach: None });
        if let Some(a) = attach {
            if let Err(e) = self.plug(reg, name, a).await {
                reg.ports.remove(name);
                let _ = self.vsctl(vsctl::del_port(name)).await;
                if let Ok(nl) = self.nl().await {
                    let _ = nl.delete_name(name).await;
                }
                return Err(e);
            }
        }
        Ok(())
    }

    async fn tap_inner(&self, attach: Option<&Attach>) -> Result<String, String> {
        let nl = self.nl().await?;
        let mut reg = self.reg().await;
        let name = common::new_tap(&self.taps)?;
        let up = async { nl.set_up(nl.must(&name).await?.index).await };
        if let Err(e) = up.await {
            let _ = nl.delete_name(&name).await;
            return Err(text(e));
        }
        self.adopt(&mut reg, &name, PortKind::Tap, attach).await?;
        Ok(name)
    }

    async fn veth_inner(
        &self,
        pid: u32,
        inner: &str,
        mac: &str,
        attach: Option<&Attach>,
    ) -> Result<String, String> {
        let nl = self.nl().await?;
        let mut reg = self.reg().await;
        let name = self.next_name();
        let temp = veth_temp(&name);
        nl.veth_create(&name, &temp).await.map_err(text)?;
        let made = async {
            let t = nl.must(&temp).await.map_err(text)?;
            if let Some(m) = parse_mac(mac) {
                nl.set_mac(t.index, m).await.map_err(text)?;
            }
            if self.ovs.datapath == "netdev" {
                // The userspace datapath does not complete partial checksums.
                sys::tx_checksum_off(&temp).map_err(|e| format!("{temp}: tx offload: {e}"))?;
            }
            nl.move_to(t.index, pid, inner).await.map_err(text)?;
            nl.set_up(nl.must(&name).await.map_err(text)?.index)
                .await
                .map_err(text)
        };
        if let Err(e) = made.await {
            let _ = nl.delete_name(&name).await;
            return Err(e);
        }
        self.adopt(&mut reg, &name, PortKind::Veth, attach).await?;
        Ok(name)
    }

    async fn host_tap_inner(&self, spec: &HostTapSpec) -> Result<String, String> {
        let nl = self.nl().await?;
        let mut reg = self.reg().await;
        let name = match &spec.name {
            Some(n) if sys::if_index(n).is_some() => return Err("tap already on bridge".into()),
            Some(n) => n.clone(),
            None => self.next_name(),
        };
        let a = &spec.attach;
        self.ensure_bridge(&mut reg, &a.bridge).await?;
        self.vsctl(vsctl::add_internal_port(&a.bridge, &name, a.vlan))
            .await?;
        let result = async {
            let idx = nl.must(&name).await.map_err(text)?.index;
            nl.set_up(idx).await.map_err(text)?;
            common::host_tap_address(nl, idx, &name, &spec.ip).await
        };
        if let Err(e) = result.await {
            let _ = self.vsctl(vsctl::del_port(&name)).await;
            return Err(e);
        }
        let port = Port {
            kind: PortKind::HostTap,
            attach: Some(a.clone()),
        };
        reg.ports.insert(name.clone(), port);
        Ok(name)
    }

    async fn stop_running(&self, r: Running) -> CaptureStats {
        let stats = r.capture.stop().await;
        if let Some((br, port)) = r.mirror {
            if let Err(e) = self.vsctl(vsctl::mirror_remove(&br, &port)).await {
                tracing::warn!("removing mirror of {br}: {e}");
            }
            if let Err(e) = self.vsctl(vsctl::del_port(&port)).await {
                tracing::warn!("removing mirror port {port}: {e}");
            }
        }
        stats
    }

    async fn destroy_inner(&self, port: &str) -> Result<(), String> {
        for r in self.captures.take_on(port) {
            self.stop_running(r).await;
        }
        let nl = self.nl().await?;
        let mut reg = self.reg().await;
        qos::clear(port).await;
        self.vsctl(vsctl::del_port(port)).await?;
        nl.delete_name(port).await.map_err(text)?;
        reg.ports.remove(port);
        Ok(())
    }

    /// A bridge capture: a mirror of everything on the bridge to a new internal port,
    /// captured like an interface.
    async fn mirror_capture(
        &self,
        br: &str,
        spec: &CaptureSpec,
    ) -> Result<(capture::Capture, String), String> {
        let nl = self.nl().await?;
        if !self.reg().await.bridges.contains_key(br) {
            return Err(format!("unknown bridge: {br}"));
        }
        let tap = self.next_name();
        let mut add = vsctl::add_internal_port(br, &tap, 0);
        add.extend(vsctl::mark_port(&tap, "mirror"));
        self.vsctl(add).await?;
        let started = async {
            self.vsctl(vsctl::mirror_add(br, &tap)).await?;
            let idx = nl.must(&tap).await.map_err(text)?.index;
            nl.set_up(idx).await.map_err(text)?;
            let scope = capture::Scope::Interface(idx);
            capture::start(scope, &spec.path, spec.snaplen, &spec.filter)
                .await
                .map_err(text)
        };
        match started.await {
            Ok(c) => Ok((c, tap)),
            Err(e) => {
                let _ = self.vsctl(vsctl::mirror_remove(br, &tap)).await;
                let _ = self.vsctl(vsctl::del_port(&tap)).await;
                Err(e)
            }
        }
    }

    async fn capture_inner(&self, spec: &CaptureSpec) -> Result<u64, String> {
        let r = match &spec.target {
            CaptureTarget::Interface(i) => {
                self.nl().await?;
                let idx = sys::if_index(i).ok_or_else(|| format!("no such interface: {i}"))?;
                let c = capture::start(
                    capture::Scope::Interface(idx),
                    &spec.path,
                    spec.snaplen,
                    &spec.filter,
                )
                .await
                .map_err(text)?;
                Running {
                    capture: c,
                    port: Some(i.clone()),
                    mirror: None,
                }
            }
            CaptureTarget::Bridge(b) => {
                let (c, tap) = self.mirror_capture(b, spec).await?;
                Running {
                    capture: c,
                    port: None,
                    mirror: Some((b.clone(), tap)),
                }
            }
        };
        Ok(self.captures.insert(r))
    }

    async fn trunk_add_inner(&self, br: &str, iface: &str) -> Result<(), String> {
        let mut reg = self.reg().await;
        if reg.ports.contains_key(iface) {
            return Err(format!("{iface} is a port of this server, not a trunk"));
        }
        if sys::if_index(iface).is_none() {
            return Err(format!("no such interface: {iface}"));
        }
        self.ensure_bridge(&mut reg, br).await?;
        let mut add = vsctl::add_port(br, iface, 0);
        add.extend(vsctl::mark_port(iface, "trunk"));
        self.vsctl(add).await?;
        if let Some(b) = reg.bridges.get_mut(br) {
            b.trunks.insert(iface.to_string());
        }
        Ok(())
    }

    async fn tunnel_add_inner(
        &self,
        br: &str,
        kind: TunnelKind,
        remote: &str,
    ) -> Result<String, String> {
        let _: IpAddr = remote
            .parse()
            .map_err(|_| format!("invalid remote ip: {remote}"))?;
        let mut reg = self.reg().await;
        self.ensure_bridge(&mut reg, br).await?;
        let name = self.next_name();
        let mut add = vsctl::add_tunnel(br, &name, kind, remote);
        add.extend(vsctl::mark_port(&name, "tunnel"));
        self.vsctl(add).await?;
        if let Some(b) = reg.bridges.get_mut(br) {
            b.tunnels.insert(name.clone());
        }
        Ok(name)
    }

    /// Removes port `name` of kind `which` (trunks or tunnels) from `br`.
    async fn bridge_port_remove(&self, br: &str, name: &str, tunnel: bool) -> Result<(), String> {
        let mut reg = self.reg().await;
        let known = reg.bridges.get_mut(br).is_some_and(|b| match tunnel {
            true => b.tunnels.remove(name),
            false => b.trunks.remove(name),
        });
        match (known, tunnel) {
            (true, _) => self.vsctl(vsctl::del_port(name)).await.map(drop),
            (false, true) => Err(format!("no tunnel {name} on bridge {br}")),
            (false, false) => Err(format!("{name} is not a trunk of {br}")),
        }
    }

    async fn reset_inner(&self) {
        for r in self.captures.take_all() {
            self.stop_running(r).await;
        }
        self.netflow.stop_all(&self.ovs).await;
        self.dnsmasq.kill_all().await;
        let ports: Vec<String> = self.reg().await.ports.keys().cloned().collect();
        for p in ports {
            if let Err(e) = self.destroy_inner(&p).await {
                tracing::warn!("removing {p}: {e}");
            }
        }
        let mut reg = self.reg().await;
        self.teardown(&mut reg).await;
    }
}

impl HostNetwork for OvsNetwork {
    fn tap_create<'a>(
        &'a self,
        attach: Option<&'a Attach>,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.tap_inner(attach))
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
            let mut reg = self.reg().await;
            self.plug(&mut reg, port, attach).await
        })
    }

    fn port_disconnect<'a>(&'a self, port: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut reg = self.reg().await;
            if reg
                .ports
                .get(port)
                .is_some_and(|p| p.kind == PortKind::HostTap)
            {
                return Err(format!("{port} is a host tap: delete it instead"));
            }
            self.vsctl(vsctl::del_port(port)).await?;
            if let Some(p) = reg.ports.get_mut(port) {
                p.attach = None;
            }
            Ok(())
        })
    }

    fn port_destroy<'a>(&'a self, port: &'a str) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.destroy_inner(port))
    }

    fn interface_exists(&self, name: &str) -> bool {
        sys::if_index(name).is_some()
    }

    fn bridges(&self) -> BoxFuture<'_, Vec<BridgeInfo>> {
        Box::pin(async move { self.reg().await.list() })
    }

    fn trunk_add<'a>(
        &'a self,
        bridge: &'a str,
        iface: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.trunk_add_inner(bridge, iface))
    }

    fn trunk_remove<'a>(
        &'a self,
        bridge: &'a str,
        iface: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.bridge_port_remove(bridge, iface, false))
    }

    fn tunnel_add<'a>(
        &'a self,
        bridge: &'a str,
        kind: TunnelKind,
        remote: &'a str,
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(self.tunnel_add_inner(bridge, kind, remote))
    }

    fn tunnel_remove<'a>(
        &'a self,
        bridge: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.bridge_port_remove(bridge, name, true))
    }

    fn qos_apply<'a>(&'a self, port: &'a str, q: &'a Qos) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move { qos::apply(port, q).await.map_err(text) })
    }

    fn capture_start<'a>(&'a self, spec: &'a CaptureSpec) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(self.capture_inner(spec))
    }

    fn capture_stop(&self, id: u64) -> BoxFuture<'_, Result<CaptureStats, String>> {
        Box::pin(async move {
            match self.captures.take(id) {
                Some(r) => Ok(self.stop_running(r).await),
                None => Ok(CaptureStats::default()),
            }
        })
    }

    fn snooped(&self) -> HashMap<String, Snooped> {
        self.snooped.lock().map(|t| t.clone()).unwrap_or_default()
    }

    fn counters(&self, port: &str) -> Option<Counters> {
        common::proc_counters(port)
    }

    fn dnsmasq_start<'a>(&'a self, spec: &'a DnsmasqSpec) -> BoxFuture<'a, Result<u32, String>> {
        Box::pin(async move { self.dnsmasq.start(spec).await.map_err(text) })
    }

    fn dnsmasq_reload(&self, pid: u32) -> Result<(), String> {
        self.dnsmasq.reload(pid).map_err(text)
    }

    fn dnsmasq_kill(&self, pid: u32) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move { self.dnsmasq.kill(pid).await.map_err(text) })
    }

    fn netflow_start<'a>(&'a self, spec: &'a NetflowSpec) -> BoxFuture<'a, Result<u64, String>> {
        Box::pin(async move {
            if !self.reg().await.bridges.contains_key(&spec.bridge) {
                return Err(format!("unknown bridge: {}", spec.bridge));
            }
            self.netflow.start(&self.ovs, spec).await
        })
    }

    fn netflow_stop(&self, id: u64) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.netflow.stop(&self.ovs, id).await;
            Ok(())
        })
    }

    fn netflow_timeout(&self, seconds: u32) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(self.netflow.set_timeout(&self.ovs, seconds))
    }

    fn reset(&self) -> BoxFuture<'_, ()> {
        Box::pin(self.reset_inner())
    }
}
