//! Kernel interface names: the bridge of each (logical bridge, VLAN), helper ends of
//! veths, tunnel devices, and the `mega_tapN` generator — all within 15 characters.
//!
//! Names are derived from a hash of the logical name, so every server on a host maps
//! the same logical bridge to the same kernel bridges (as Open vSwitch would share
//! one `mega_bridge`), and a restarted server finds its bridges again.

use std::sync::atomic::{AtomicU64, Ordering};

/// The kernel's interface name limit (IFNAMSIZ − 1).
pub const IFNAMSIZ: usize = 15;

/// Prefix of generated tap names.
pub const TAP_PREFIX: &str = "mega_tap";

/// 32-bit FNV-1a of `s`.
pub fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// The kernel bridge carrying `vlan` of logical bridge `logical`: the logical bridge
/// itself for VLAN 0 (untagged), else `mb<hash>.<vlan>` (at most 15 characters).
pub fn vlan_bridge(logical: &str, vlan: u16) -> String {
    if vlan == 0 {
        logical.to_string()
    } else {
        format!("mb{:08x}.{vlan}", fnv1a(logical))
    }
}

/// The alias written on a kernel bridge, so `ip -d link` shows what it is.
pub fn bridge_alias(logical: &str, vlan: u16) -> String {
    format!("ferromega {logical} vlan {vlan}")
}

/// The bridge-side end of host tap `tap`'s veth.
pub fn host_tap_peer(tap: &str) -> String {
    format!("fmh{:08x}", fnv1a(tap))
}

/// A temporary name for the inner end of a container veth before it moves.
pub fn veth_temp(tap: &str) -> String {
    format!("fmc{:08x}", fnv1a(tap))
}

/// The device of tunnel `tunnel` for `vlan` (VLAN 0 uses the tunnel's own name).
pub fn tunnel_device(tunnel: &str, vlan: u16) -> String {
    if vlan == 0 {
        tunnel.to_string()
    } else {
        format!("vx{:07x}.{vlan}", fnv1a(tunnel) & 0x0fff_ffff)
    }
}

/// Hands out `mega_tapN` names, never the same number twice in a process lifetime,
/// skipping names `taken` says exist.
#[derive(Debug, Default)]
pub struct TapNames {
    next: AtomicU64,
}

impl TapNames {
    /// The next free name.
    pub fn next(&self, taken: impl Fn(&str) -> bool) -> String {
        loop {
            let n = self.next.fetch_add(1, Ordering::SeqCst);
            let name = format!("{TAP_PREFIX}{n}");
            if !taken(&name) {
                return name;
            }
        }
    }
}

/// Parses `aa:bb:cc:dd:ee:ff`.
pub fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in out.iter_mut() {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

/// Formats a MAC in lower case.
pub fn format_mac(m: &[u8]) -> String {
    m.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_fit_the_kernel_limit() {
        for name in [
            vlan_bridge("mega_bridge", 4095),
            vlan_bridge("a_fifteen_chars", 1),
            host_tap_peer("minitest_tap0"),
            veth_temp("mega_tap99999"),
            tunnel_device("mega_tap123456", 4095),
        ] {
            assert!(name.len() <= IFNAMSIZ, "{name}");
        }
        assert_eq!(vlan_bridge("mega_bridge", 0), "mega_bridge");
    }

    #[test]
    fn vlan_bridges_differ_per_logical_bridge_and_vlan() {
        assert_ne!(
            vlan_bridge("mega_bridge", 101),
            vlan_bridge("mega_bridge2", 101)
        );
        assert_ne!(
            vlan_bridge("mega_bridge", 101),
            vlan_bridge("mega_bridge", 102)
        );
        assert_eq!(vlan_bridge("mega_bridge", 7), vlan_bridge("mega_bridge", 7));
    }

    #[test]
    fn tap_names_skip_taken_ones_and_never_repeat() {
        let t = TapNames::default();
        assert_eq!(t.next(|n| n == "mega_tap0"), "mega_tap1");
        assert_eq!(t.next(|_| false), "mega_tap2");
    }

    #[test]
    fn macs_round_trip() {
        let m = parse_mac("B4:b6:76:00:01:ff").expect("mac");
        assert_eq!(format_mac(&m), "b4:b6:76:00:01:ff");
        assert_eq!(parse_mac("b4:b6:76:00:01"), None);
    }
}
