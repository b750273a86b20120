//! `capture`: pcap captures of VM NICs and bridges and NetFlow captures of bridges, owned
//! by namespaces, their settings (snaplen, BPF filter, netflow mode/gzip/timeout),
//! listing, delete and clear. The host network runs the NetFlow exporter and collector.

use std::path::PathBuf;

use ferromega_api::{Args, Response};

use crate::engine::bool_choice;
use crate::network::{CaptureSpec, CaptureTarget, NetflowSink, NetflowSpec};
use crate::ops::net::check_ifname;
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// minimega's default NetFlow active timeout, in seconds.
const NETFLOW_TIMEOUT: u32 = 10;

/// One running capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaptureRec {
    /// The host network's id of the capture.
    pub(crate) id: u64,
    /// Namespace that owns it.
    pub(crate) namespace: String,
    /// Logical bridge.
    pub(crate) bridge: String,
    /// `<vm name>:<index>` for VM captures, empty for bridges.
    pub(crate) interface: String,
    /// The VM it captures, if any.
    pub(crate) vm_id: Option<u64>,
    /// File written (for a NetFlow socket: `<tcp|udp>:<host:port>`).
    pub(crate) path: PathBuf,
    /// For NetFlow captures: the mode (`raw`, `ascii`) and whether the file is gzipped.
    pub(crate) netflow: Option<(String, bool)>,
}

impl ControlPlane {
    fn capture_config(&self, ns: &str) -> crate::ops::net::CaptureConfig {
        lock(&self.inner.net)
            .capture_config
            .get(ns)
            .cloned()
            .unwrap_or_default()
    }

    fn update_capture_config(&self, ns: &str, f: impl FnOnce(&mut crate::ops::net::CaptureConfig)) {
        let mut st = lock(&self.inner.net);
        f(st.capture_config.entry(ns.to_string()).or_default());
    }

    pub(crate) fn capture(&self, ns: &str) -> DomainResult<Response> {
        let rows = lock(&self.inner.net)
            .captures
            .iter()
            .filter(|c| c.namespace == ns)
            .map(|c| {
                let (kind, mode, compress) = match &c.netflow {
                    Some((mode, gzip)) => ("netflow", mode.clone(), gzip.to_string()),
                    None => ("pcap", String::new(), String::new()),
                };
                vec![
                    c.bridge.clone(),
                    kind.to_string(),
                    c.interface.clone(),
                    mode,
                    compress,
                    c.path.display().to_string(),
                ]
            })
            .collect();
        Ok(self.table(
            &["bridge", "type", "interface", "mode", "compress", "path"],
            rows,
        ))
    }

    pub(crate) fn capture_pcap_snaplen(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        match args.string("size") {
            None => Ok(self.text(self.capture_config(ns).snaplen.to_string())),
            Some(s) => {
                let n: u32 = s.parse().map_err(|_| {
                    DomainError::invalid(format!(
                        "strconv.ParseUint: parsing {s:?}: invalid syntax"
                    ))
                })?;
                let n = if n == 0 { 1600 } else { n };
                self.update_capture_config(ns, |c| c.snaplen = n);
                Ok(self.ok())
            }
        }
    }

    pub(crate) fn capture_pcap_filter(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        match args.string("bpf") {
            None => Ok(self.text(self.capture_config(ns).filter)),
            Some(f) => {
                self.update_capture_config(ns, |c| c.filter = f.to_string());
                Ok(self.ok())
            }
        }
    }

    pub(crate) fn capture_netflow_mode(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let mode = ["raw", "ascii"].into_iter().find(|m| args.flag(m));
        match mode {
            None => Ok(self.text(self.capture_config(ns).netflow_mode)),
            Some(m) => {
                self.update_capture_config(ns, |c| c.netflow_mode = m.to_string());
                Ok(self.ok())
            }
        }
    }

    pub(crate) fn capture_netflow_gzip(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        match bool_choice(args) {
            None => Ok(self.text(self.capture_config(ns).netflow_gzip.to_string())),
            Some(v) => {
                self.update_capture_config(ns, |c| c.netflow_gzip = v);
                Ok(self.ok())
            }
        }
    }

    pub(crate) async fn capture_netflow_timeout(&self, args: &Args) -> DomainResult<Response> {
        let Some(t) = args.string("timeout") else {
            let now = lock(&self.inner.net).netflow_timeout;
            return Ok(self.text(now.unwrap_or(NETFLOW_TIMEOUT).to_string()));
        };
        let t: u32 = t
            .parse()
            .ok()
            .filter(|t| *t > 0)
            .ok_or_else(|| DomainError::invalid("invalid timeout parameter"))?;
        let net = self.network()?;
        net.netflow_timeout(t).await.map_err(DomainError::Host)?;
        lock(&self.inner.net).netflow_timeout = Some(t);
        Ok(self.ok())
    }

    pub(crate) async fn capture_netflow_bridge(
        &self,
        ns: &str,
        args: &Args,
    ) -> DomainResult<Response> {
        let bridge = args.string("bridge").unwrap_or_default();
        check_ifname("bridge", bridge)?;
        let cfg = self.capture_config(ns);
        let ascii = cfg.netflow_mode == "ascii";
        let (sink, path) = match args.string("hostname:port") {
            Some(addr) => {
                let tcp = args.flag("tcp");
                let proto = if tcp { "tcp" } else { "udp" };
                let sink = NetflowSink::Socket {
                    tcp,
                    addr: addr.to_string(),
                };
                (sink, PathBuf::from(format!("{proto}:{addr}")))
            }
            None => {
                let path = self.files_path(args.string("filename").unwrap_or_default());
                let sink = NetflowSink::File {
                    path: path.clone(),
                    gzip: cfg.netflow_gzip,
                };
                (sink, path)
            }
        };
        let gzip = matches!(sink, NetflowSink::File { gzip: true, .. });
        let spec = NetflowSpec {
            bridge: bridge.to_string(),
            sink,
            ascii,
        };
        let net = self.network()?;
        let id = net.netflow_start(&spec).await.map_err(DomainError::Host)?;
        lock(&self.inner.net).captures.push(CaptureRec {
            id,
            namespace: ns.to_string(),
            bridge: bridge.to_string(),
            interface: String::new(),
            vm_id: None,
            path,
            netflow: Some((cfg.netflow_mode, gzip)),
        });
        Ok(self.ok())
    }

    pub(crate) async fn capture_netflow_delete_bridge(
        &self,
        ns: &str,
        args: &Args,
    ) -> DomainResult<Response> {
        let name = args.string("name").unwrap_or_default().to_string();
        let all = name == "all";
        let pick = |c: &CaptureRec| c.netflow.is_some() && (all || c.bridge == name);
        let found = lock(&self.inner.net)
            .captures
            .iter()
            .any(|c| c.namespace == ns && pick(c));
        if !found && !all {
            return Err(DomainError::NotFound(format!(
                "no netflow capture on bridge {name}"
            )));
        }
        self.captures_stop(ns, pick).await;
        Ok(self.ok())
    }

    pub(crate) async fn capture_pcap_vm(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let name = args.string("vm").unwrap_or_default();
        let iface = args.string("interface").unwrap_or_default();
        let vm = self
            .with_ns(ns, |n| n.find_vm(name).cloned())
            .ok_or_else(|| DomainError::NotFound(format!("vm not found: {name}")))?;
        let no_such = || DomainError::NotFound(format!("no such interface {iface}"));
        let i: usize = iface.parse().map_err(|_| no_such())?;
        let nic = vm.config.networks.get(i).ok_or_else(no_such)?;
        let net = self.network()?;
        let tap = vm.taps.get(i).cloned().unwrap_or_default();
        if tap.is_empty() || !net.interface_exists(&tap) {
            return Err(DomainError::Conflict(format!(
                "vm {name} has no tap for interface {i} (not launched?)"
            )));
        }
        let cfg = self.capture_config(ns);
        let path = self.files_path(args.string("filename").unwrap_or_default());
        let spec = CaptureSpec {
            target: CaptureTarget::Interface(tap),
            path: path.clone(),
            snaplen: cfg.snaplen,
            filter: cfg.filter,
        };
        let id = net.capture_start(&spec).await.map_err(DomainError::Host)?;
        lock(&self.inner.net).captures.push(CaptureRec {
            id,
            namespace: ns.to_string(),
            bridge: nic.bridge.clone(),
            interface: format!("{}:{i}", vm.name),
            vm_id: Some(vm.id),
            path,
            netflow: None,
        });
        Ok(self.ok())
    }

    pub(crate) async fn capture_pcap_bridge(
        &self,
        ns: &str,
        args: &Args,
    ) -> DomainResult<Response> {
        let bridge = args.string("bridge").unwrap_or_default();
        check_ifname("bridge", bridge)?;
        let net = self.network()?;
        let cfg = self.capture_config(ns);
        let path = PathBuf::from(args.string("filename").unwrap_or_default());
        let spec = CaptureSpec {
            target: CaptureTarget::Bridge(bridge.to_string()),
            path: path.clone(),
            snaplen: cfg.snaplen,
            filter: cfg.filter,
        };
        let id = net.capture_start(&spec).await.map_err(DomainError::Host)?;
        lock(&self.inner.net).captures.push(CaptureRec {
            id,
            namespace: ns.to_string(),
            bridge: bridge.to_string(),
            interface: String::new(),
            vm_id: None,
            path,
            netflow: None,
        });
        Ok(self.ok())
    }

    pub(crate) async fn capture_pcap_delete_vm(
        &self,
        ns: &str,
        args: &Args,
    ) -> DomainResult<Response> {
        let name = args.string("vm").unwrap_or_default();
        if name == "all" {
            self.captures_stop(ns, |c| c.vm_id.is_some()).await;
            return Ok(self.ok());
        }
        let vm = self
            .with_ns(ns, |n| n.find_vm(name).cloned())
            .ok_or_else(|| DomainError::NotFound(format!("vm not found: {name}")))?;
        self.captures_stop(ns, |c| c.vm_id == Some(vm.id)).await;
        Ok(self.ok())
    }

    pub(crate) async fn capture_pcap_delete_bridge(
        &self,
        ns: &str,
        args: &Args,
    ) -> DomainResult<Response> {
        let bridge = args.string("bridge").unwrap_or_default().to_string();
        let all = bridge == "all";
        let pick = |c: &CaptureRec| {
            c.vm_id.is_none() && c.netflow.is_none() && (all || c.bridge == bridge)
        };
        let found = lock(&self.inner.net)
            .captures
            .iter()
            .any(|c| c.namespace == ns && pick(c));
        if !found && !all {
            return Err(DomainError::NotFound(format!(
                "no capture on bridge {bridge}"
            )));
        }
        self.captures_stop(ns, pick).await;
        Ok(self.ok())
    }

    pub(crate) async fn clear_capture(&self, ns: &str) -> DomainResult<Response> {
        // As in minimega, the type argument is ignored: every capture of the namespace stops.
        self.captures_stop(ns, |_| true).await;
        Ok(self.ok())
    }

    /// Stops the namespace's captures that `pick` selects and forgets them.
    pub(crate) async fn captures_stop(&self, ns: &str, pick: impl Fn(&CaptureRec) -> bool) {
        let stopped: Vec<CaptureRec> = {
            let mut st = lock(&self.inner.net);
            let (gone, keep) = std::mem::take(&mut st.captures)
                .into_iter()
                .partition(|c| c.namespace == ns && pick(c));
            st.captures = keep;
            gone
        };
        self.captures_end(stopped).await;
    }

    /// Stops every capture of VM `id` (its taps are going away).
    pub(crate) async fn captures_of_vm_stop(&self, id: u64) {
        let stopped: Vec<CaptureRec> = {
            let mut st = lock(&self.inner.net);
            let (gone, keep) = std::mem::take(&mut st.captures)
                .into_iter()
                .partition(|c| c.vm_id == Some(id));
            st.captures = keep;
            gone
        };
        self.captures_end(stopped).await;
    }

    async fn captures_end(&self, stopped: Vec<CaptureRec>) {
        let Some(net) = self.inner.backends.network.clone() else {
            return;
        };
        for c in stopped {
            if c.netflow.is_some() {
                if let Err(e) = net.netflow_stop(c.id).await {
                    tracing::warn!("stopping netflow capture {}: {e}", c.path.display());
                }
                continue;
            }
            match net.capture_stop(c.id).await {
                Ok(s) => tracing::info!(
                    "capture {} stopped: {} packets, {} dropped",
                    c.path.display(),
                    s.packets,
                    s.drops
                ),
                Err(e) => tracing::warn!("stopping capture {}: {e}", c.path.display()),
            }
        }
    }
}
