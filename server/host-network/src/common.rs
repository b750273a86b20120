//! What both network backends (Linux bridges, Open vSwitch) share: the table of running
//! pcap captures, new `mega_tapN` taps, host tap addresses and port counters.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ferromega_domain::network::{Counters, HostTapIp};

use crate::capture::Capture;
use crate::names::TapNames;
use crate::netlink::Nl;
use crate::{dhcp, sys};

/// A running capture, the interface it listens on (None for Linux bridge captures) and,
/// for Open vSwitch bridge captures, the (bridge, port) of its mirror.
pub struct Running {
    /// The capture.
    pub capture: Capture,
    /// Its interface.
    pub port: Option<String>,
    /// Its mirror.
    pub mirror: Option<(String, String)>,
}

/// The running captures by id.
#[derive(Default)]
pub struct Captures {
    map: Mutex<HashMap<u64, Running>>,
    next: AtomicU64,
}

impl Captures {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Running>> {
        self.map.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a capture; returns its id.
    pub fn insert(&self, r: Running) -> u64 {
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        self.lock().insert(id, r);
        id
    }

    /// Takes capture `id` out.
    pub fn take(&self, id: u64) -> Option<Running> {
        self.lock().remove(&id)
    }

    /// Takes out the captures listening on `port`.
    pub fn take_on(&self, port: &str) -> Vec<Running> {
        let mut c = self.lock();
        let ids: Vec<u64> = c
            .iter()
            .filter(|(_, r)| r.port.as_deref() == Some(port))
            .map(|(id, _)| *id)
            .collect();
        ids.into_iter().filter_map(|id| c.remove(&id)).collect()
    }

    /// Takes out every capture.
    pub fn take_all(&self) -> Vec<Running> {
        self.lock().drain().map(|(_, r)| r).collect()
    }
}

/// The backend's netlink handle, connected on first use (which also starts the IP
/// snooping that fills `snooped`; without it, snooping is only logged as unavailable).
pub async fn netlink<'a>(
    cell: &'a tokio::sync::OnceCell<Nl>,
    snooped: &crate::snoop::Table,
) -> Result<&'a Nl, String> {
    cell.get_or_try_init(|| async {
        let nl = Nl::connect()?;
        if let Err(e) = crate::snoop::start(snooped.clone()) {
            tracing::warn!("ip snooping unavailable: {e}");
        }
        Ok::<Nl, crate::netlink::NlError>(nl)
    })
    .await
    .map_err(|e| e.to_string())
}

/// Creates a persistent tap with the next free `mega_tapN` name; returns the name.
pub fn new_tap(taps: &TapNames) -> Result<String, String> {
    let next = || taps.next(|n| sys::if_index(n).is_some());
    let mut name = next();
    let mut tries = 0;
    while let Err(e) = sys::tap_create(&name) {
        // EBUSY: another process took the name since we looked; take the next.
        tries += 1;
        if e.raw_os_error() != Some(libc::EBUSY) || tries > 16 {
            return Err(format!("creating tap {name}: {e}"));
        }
        name = next();
    }
    Ok(name)
}

/// Gives host tap `name` (interface `idx`) its address, static or from DHCP.
pub async fn host_tap_address(nl: &Nl, idx: u32, name: &str, ip: &HostTapIp) -> Result<(), String> {
    let (ip, prefix) = match ip {
        HostTapIp::None => return Ok(()),
        HostTapIp::Static(cidr) => parse_cidr(cidr)?,
        HostTapIp::Dhcp => dhcp::lease(name).await?,
    };
    nl.addr_add(idx, ip, prefix)
        .await
        .map_err(|e| e.to_string())
}

/// Parses `a.b.c.d[/len]` or an IPv6 address with optional prefix (default: host prefix).
pub fn parse_cidr(s: &str) -> Result<(std::net::IpAddr, u8), String> {
    let bad = || format!("invalid IP address: {s}");
    let (ip, len) = match s.split_once('/') {
        Some((ip, len)) => (ip, Some(len)),
        None => (s, None),
    };
    let ip: std::net::IpAddr = ip.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match len {
        Some(l) => l.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
        None => max,
    };
    Ok((ip, prefix))
}

/// Byte counters of `port` from `/proc/net/dev` (this network namespace's view).
pub fn proc_counters(port: &str) -> Option<Counters> {
    let text = std::fs::read_to_string("/proc/net/dev").ok()?;
    text.lines().find_map(|l| {
        let (name, rest) = l.split_once(':')?;
        if name.trim() != port {
            return None;
        }
        let f: Vec<u64> = rest
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        Some(Counters {
            rx_bytes: *f.first()?,
            tx_bytes: *f.get(8)?,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cidrs_default_to_host_prefixes() {
        assert_eq!(
            parse_cidr("192.168.100.1"),
            Ok(("192.168.100.1".parse().expect("ip"), 32))
        );
        assert_eq!(parse_cidr("10.0.0.1/24").map(|c| c.1), Ok(24));
        assert_eq!(parse_cidr("fd00::1/64").map(|c| c.1), Ok(64));
        assert!(parse_cidr("10.0.0.1/33").is_err());
        assert!(parse_cidr("nope").is_err());
    }
}
