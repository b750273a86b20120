//! VM NICs on the host network: taps and MACs at launch, `vm net connect/disconnect`,
//! address snooping, and the network state the server owns (per namespace and per host);
//! host taps and bridges are in `bridge.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use ferromega_api::{Args, Response};

use crate::backends::HostNetwork;
use crate::network::Attach;
use crate::ops::capture::CaptureRec;
use crate::ops::dnsmasq::DnsmasqRec;
use crate::ops::vm_lifecycle::Action;
use crate::vm::netspec::DEFAULT_BRIDGE;
use crate::vm::registry::{Vm, VmType};
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// A host tap of a namespace (`tap create`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct HostTap {
    /// Namespace that created it.
    pub(crate) namespace: String,
    /// Logical bridge.
    pub(crate) bridge: String,
    /// VLAN.
    pub(crate) vlan: u16,
}

/// Capture settings of one namespace (`capture pcap snaplen|filter`, `capture netflow …`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CaptureConfig {
    /// Snaplen of new pcap captures.
    pub(crate) snaplen: u32,
    /// BPF filter of new pcap captures.
    pub(crate) filter: String,
    /// Netflow output mode, `raw` or `ascii`.
    pub(crate) netflow_mode: String,
    /// Whether netflow files are gzipped.
    pub(crate) netflow_gzip: bool,
}

impl Default for CaptureConfig {
    fn default() -> Self {
        CaptureConfig {
            snaplen: 1600,
            filter: String::new(),
            netflow_mode: "raw".to_string(),
            netflow_gzip: false,
        }
    }
}

/// What the server owns on the host network besides VM NICs.
#[derive(Debug, Default)]
pub(crate) struct NetState {
    /// Host taps by name.
    pub(crate) host_taps: BTreeMap<String, HostTap>,
    /// Running captures.
    pub(crate) captures: Vec<CaptureRec>,
    /// Capture settings by namespace.
    pub(crate) capture_config: BTreeMap<String, CaptureConfig>,
    /// Running dnsmasqs by id.
    pub(crate) dnsmasq: BTreeMap<u64, DnsmasqRec>,
    /// Next dnsmasq id.
    pub(crate) next_dnsmasq: u64,
    /// NIC bandwidth figures (`host` rx/tx).
    pub(crate) bandwidth: crate::ops::bandwidth::Bandwidth,
    /// Active timeout of NetFlow exporters set by `capture netflow timeout` (None: 10 s).
    pub(crate) netflow_timeout: Option<u32>,
}

/// Registered OUIs that generated MACs start with (minimega picks a random valid vendor
/// prefix, so guests see plausible hardware).
const OUIS: &[[u8; 3]] = &[
    [0x00, 0x1b, 0x21], // Intel
    [0x00, 0x15, 0x17], // Intel
    [0xb4, 0xb6, 0x76], // Intel
    [0x00, 0x50, 0x56], // VMware
    [0x00, 0x16, 0x3e], // Xensource
    [0x08, 0x00, 0x27], // PCS Systemtechnik
    [0x00, 0x1c, 0x42], // Parallels
    [0x00, 0x26, 0xb9], // Dell
];

/// A random MAC with a registered OUI.
pub(crate) fn random_mac() -> String {
    let r = *uuid::Uuid::new_v4().as_bytes();
    let oui = OUIS[usize::from(r[0]) % OUIS.len()];
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        oui[0], oui[1], oui[2], r[1], r[2], r[3]
    )
}

/// A NIC's attachment: None when disconnected (empty bridge).
fn attach_of(bridge: &str, vlan: u16) -> Option<Attach> {
    (!bridge.is_empty()).then(|| Attach {
        bridge: bridge.to_string(),
        vlan,
    })
}

/// Checks a bridge or interface name as the kernel will: 1–15 characters, no `/`,
/// whitespace or `:`.
pub(crate) fn check_ifname(kind: &str, name: &str) -> DomainResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && c != '/' && c != ':');
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid(format!(
            "invalid {kind} name `{name}`: at most 15 characters, no '/', ':' or spaces"
        )))
    }
}

impl ControlPlane {
    /// The host network, or an error saying there is none.
    pub(crate) fn network(&self) -> DomainResult<Arc<dyn HostNetwork>> {
        self.inner
            .backends
            .network
            .clone()
            .ok_or_else(|| DomainError::Host("no network backend on this host".into()))
    }

    /// Gives a VM about to launch what its NICs need: MACs where none were given and,
    /// for KVM, a tap per NIC (created once, kept across kill and restart). Returns the
    /// VM as it is now recorded.
    pub(crate) async fn nics_prepare(&self, ns: &str, vm: &Vm) -> Result<Vm, String> {
        self.bandwidth_sampler_start();
        let mut vm = vm.clone();
        for nic in vm.config.networks.iter_mut() {
            if nic.mac.is_empty() {
                nic.mac = random_mac();
            }
        }
        vm.taps.resize(vm.config.networks.len(), String::new());
        if let (VmType::Kvm, Some(net)) = (vm.vm_type, self.inner.backends.network.clone()) {
            for (i, nic) in vm.config.networks.iter().enumerate() {
                if !vm.taps[i].is_empty() && net.interface_exists(&vm.taps[i]) {
                    continue;
                }
                let attach = attach_of(&nic.bridge, nic.vlan);
                vm.taps[i] = net
                    .tap_create(attach.as_ref())
                    .await
                    .map_err(|e| format!("unable to create tap: {e}"))?;
            }
        }
        self.store_nics(ns, &vm);
        Ok(vm)
    }

    /// Launches `vm` through `rt` with its NICs: taps and MACs before (KVM), veths into
    /// the container's network namespace after (a container whose NICs fail is killed).
    pub(crate) async fn launch_with_nics(
        &self,
        ns: &str,
        vm: &Vm,
        rt: &dyn crate::backends::VmRuntime,
        dir: &std::path::Path,
    ) -> Result<crate::backends::Launched, String> {
        let vm = self.nics_prepare(ns, vm).await?;
        let launched = rt.launch(&vm, dir).await?;
        if vm.vm_type == VmType::Container {
            if let Err(e) = self.nics_attach_container(ns, &vm, launched.pid).await {
                if let Err(k) = rt.kill(&vm).await {
                    tracing::warn!("killing {} after its NICs failed: {k}", vm.name);
                }
                return Err(e);
            }
        }
        Ok(launched)
    }

    /// Plugs a started container's NICs in: one veth per NIC into the namespace of
    /// `pid`, named `eth<i>` inside.
    pub(crate) async fn nics_attach_container(
        &self,
        ns: &str,
        vm: &Vm,
        pid: u32,
    ) -> Result<(), String> {
        let Some(net) = self.inner.backends.network.clone() else {
            return Ok(());
        };
        let mut vm = vm.clone();
        // The veths of an earlier run went with its network namespace.
        for old in vm.taps.iter().filter(|t| !t.is_empty()) {
            if let Err(e) = net.port_destroy(old).await {
                tracing::warn!("forgetting {old}: {e}");
            }
        }
        vm.taps.resize(vm.config.networks.len(), String::new());
        for (i, nic) in vm.config.networks.iter().enumerate() {
            let attach = attach_of(&nic.bridge, nic.vlan);
            vm.taps[i] = net
                .veth_attach(pid, &format!("eth{i}"), &nic.mac, attach.as_ref())
                .await
                .map_err(|e| format!("unable to create veth: {e}"))?;
            if let Some(q) = vm.qos.get(&i).filter(|q| !q.is_empty()) {
                net.qos_apply(&vm.taps[i], q).await?;
            }
        }
        self.store_nics(ns, &vm);
        Ok(())
    }

    /// Records a VM's NIC config and taps and persists the VM.
    fn store_nics(&self, ns: &str, vm: &Vm) {
        let stored = self.with_ns(ns, |n| {
            let v = n.vms.get_mut(&vm.id)?;
            v.config.networks = vm.config.networks.clone();
            v.taps = vm.taps.clone();
            Some(v.clone())
        });
        if let Some(v) = stored {
            self.persist(&v);
        }
    }

    /// Deletes a flushed VM's taps and stops its captures.
    pub(crate) async fn nics_destroy(&self, vm: &Vm) {
        self.captures_of_vm_stop(vm.id).await;
        let Some(net) = self.inner.backends.network.clone() else {
            return;
        };
        for tap in vm.taps.iter().filter(|t| !t.is_empty()) {
            if let Err(e) = net.port_destroy(tap).await {
                tracing::warn!("removing tap {tap} of {}: {e}", vm.name);
            }
        }
    }

    /// Fills every VM's snooped addresses from the bridges (before `vm info`).
    pub(crate) fn refresh_ips(&self, ns: &str) {
        let Some(net) = self.inner.backends.network.clone() else {
            return;
        };
        let seen = net.snooped();
        self.with_ns(ns, |n| {
            for vm in n.vms.values_mut() {
                vm.ips = vm
                    .config
                    .networks
                    .iter()
                    .map(|nic| {
                        seen.get(&nic.mac)
                            .map(|s| (s.ip.clone(), s.ip6.clone()))
                            .unwrap_or_default()
                    })
                    .collect();
            }
        });
    }

    /// The NIC index argument of `vm net` for a VM with `len` NICs.
    fn nic_index(arg: &str, len: usize) -> Result<usize, String> {
        let pos: usize = arg
            .parse()
            .map_err(|_| format!("invalid tap index specified: {arg}"))?;
        if pos >= len {
            return Err(format!("no network {pos}, VM only has {len} networks"));
        }
        Ok(pos)
    }

    pub(crate) async fn vm_net_connect(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or_default();
        let pos = args.string("tap").unwrap_or_default().to_string();
        let vlan_arg = args.string("vlan").unwrap_or_default().to_string();
        let bridge_arg = args.string("bridge").map(str::to_string);
        if let Some(b) = &bridge_arg {
            check_ifname("bridge", b)?;
        }
        let (vlan, alias) = {
            let mut vlans = lock(&self.inner.vlans);
            let (vlan, created) = vlans
                .lookup_new(ns, &vlan_arg)
                .map_err(DomainError::invalid)?;
            if created {
                self.write_vlans_file(&vlans);
            }
            let alias = vlan_arg.parse::<i64>().is_err().then(|| {
                if vlan_arg.contains(crate::vlans::ALIAS_SEP) {
                    vlan_arg.clone()
                } else {
                    format!("{ns}{}{vlan_arg}", crate::vlans::ALIAS_SEP)
                }
            });
            (vlan, alias)
        };
        let ns_owned = ns.to_string();
        self.for_targets(ns, target, async move |cp: &ControlPlane, vm: Vm, _| {
            let i = Self::nic_index(&pos, vm.config.networks.len())?;
            let current = &vm.config.networks[i].bridge;
            let bridge = match &bridge_arg {
                Some(b) => b.clone(),
                None if current.is_empty() => DEFAULT_BRIDGE.to_string(),
                None => current.clone(),
            };
            let attach = Attach { bridge, vlan };
            cp.nic_move(&ns_owned, &vm, i, Some(attach), alias.clone())
                .await?;
            Ok(Action::Done)
        })
        .await
    }

    pub(crate) async fn vm_net_disconnect(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or_default();
        let pos = args.string("tap").unwrap_or_default().to_string();
        let ns_owned = ns.to_string();
        self.for_targets(ns, target, async move |cp: &ControlPlane, vm: Vm, _| {
            let i = Self::nic_index(&pos, vm.config.networks.len())?;
            cp.nic_move(&ns_owned, &vm, i, None, None).await?;
            Ok(Action::Done)
        })
        .await
    }

    /// Moves NIC `i` of `vm` to `attach` (None: disconnects it): the live port when the
    /// VM has one on the host, and always the recorded config.
    async fn nic_move(
        &self,
        ns: &str,
        vm: &Vm,
        i: usize,
        attach: Option<Attach>,
        alias: Option<String>,
    ) -> Result<(), String> {
        let tap = vm.taps.get(i).cloned().unwrap_or_default();
        if let Some(net) = self.inner.backends.network.clone() {
            if !tap.is_empty() && net.interface_exists(&tap) {
                match &attach {
                    Some(a) => net.port_connect(&tap, a).await?,
                    None => net.port_disconnect(&tap).await?,
                }
            }
        }
        let stored = self.with_ns(ns, |n| {
            let v = n.vms.get_mut(&vm.id)?;
            let nic = v.config.networks.get_mut(i)?;
            match &attach {
                Some(a) => {
                    nic.bridge = a.bridge.clone();
                    nic.vlan = a.vlan;
                    nic.alias = alias;
                }
                None => nic.bridge = String::new(),
            }
            Some(v.clone())
        });
        if let Some(v) = stored {
            self.persist(&v);
        }
        Ok(())
    }

    /// Releases what a destroyed namespace owned on the network: captures, host taps.
    pub(crate) async fn net_teardown_namespace(&self, ns: &str) {
        self.captures_stop(ns, |_| true).await;
        let _ = self.clear_tap(ns).await;
        lock(&self.inner.net).capture_config.remove(ns);
    }

    /// `clear all` and shutdown: every dnsmasq stops, and everything the server made on
    /// the host network goes.
    pub(crate) async fn net_reset(&self) {
        self.dnsmasq_kill_all().await;
        let names: Vec<String> = lock(&self.inner.net).host_taps.keys().cloned().collect();
        let _ = self.host_taps_destroy(&names).await;
        if let Some(net) = self.inner.backends.network.clone() {
            net.reset().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_macs_are_valid_and_use_known_ouis() {
        for _ in 0..50 {
            let m = random_mac();
            assert!(crate::vm::netspec::is_mac(&m), "{m}");
            let oui: Vec<u8> = m
                .split(':')
                .take(3)
                .map(|b| u8::from_str_radix(b, 16).unwrap_or(0))
                .collect();
            assert!(OUIS.iter().any(|o| o[..] == oui[..]), "{m}");
        }
    }

    #[test]
    fn interface_names_follow_kernel_rules() {
        assert!(check_ifname("bridge", "mega_bridge").is_ok());
        assert!(check_ifname("bridge", "a_name_too_long_").is_err());
        assert!(check_ifname("bridge", "a/b").is_err());
        assert!(check_ifname("bridge", "").is_err());
    }
}
