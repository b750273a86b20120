//! The vocabulary the domain and the host network share: where a port attaches, what a
//! qos, a capture, a bridge and a dnsmasq look like (the trait is `backends::HostNetwork`).

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Where a port is plugged: a logical bridge (`mega_bridge`) and a VLAN (0 = untagged).
/// How VLANs are isolated (one kernel bridge per VLAN, OVS tags…) is the backend's business.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Attach {
    /// Logical bridge name, as users see it.
    pub bridge: String,
    /// VLAN number, 0 for untagged.
    pub vlan: u16,
}

/// How a host tap gets its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostTapIp {
    /// No address.
    None,
    /// A static address in CIDR form (`10.0.0.1/24`; a bare address is a /32… as `ip` does).
    Static(String),
    /// Ask a DHCP server on the VLAN.
    Dhcp,
}

/// A host tap: an interface of this host plugged into a bridge VLAN (`tap create`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostTapSpec {
    /// Interface name; None picks the next free `mega_tapN`.
    pub name: Option<String>,
    /// Where it plugs in.
    pub attach: Attach,
    /// Its address.
    pub ip: HostTapIp,
}

/// Tunnel encapsulations of `bridge tunnel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TunnelKind {
    /// VXLAN (UDP 4789), VNI = VLAN.
    Vxlan,
    /// GRE (gretap), key = VLAN.
    Gre,
}

impl TunnelKind {
    /// The keyword of the command language.
    pub fn as_str(self) -> &'static str {
        match self {
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Gre => "gre",
        }
    }
}

/// One logical bridge as `bridge` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BridgeInfo {
    /// Logical name.
    pub name: String,
    /// Whether it existed before this server used it (never deleted then).
    pub preexisting: bool,
    /// VLANs in use on it.
    pub vlans: Vec<u16>,
    /// Trunk interfaces.
    pub trunks: Vec<String>,
    /// Tunnel names.
    pub tunnels: Vec<String>,
}

/// Traffic shaping of one port, applied to traffic towards the VM (the port's egress).
///
/// minimega 2.4 keeps `rate` apart from `loss`/`delay` (setting one kind clears the other).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qos {
    /// Rate: amount and unit (`kbit`, `mbit`, `gbit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<(u64, String)>,
    /// Loss in percent, as typed (`5`, `0.50`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<String>,
    /// Delay, as a Go duration (`100ms`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
}

impl Qos {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.rate.is_none() && self.loss.is_none() && self.delay.is_none()
    }
}

impl fmt::Display for Qos {
    /// minimega's order: rate, loss, delay (`rate 1mbit`, `loss 5 delay 100ms`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if let Some((n, unit)) = &self.rate {
            parts.push(format!("rate {n}{unit}"));
        }
        if let Some(l) = &self.loss {
            parts.push(format!("loss {l}"));
        }
        if let Some(d) = &self.delay {
            parts.push(format!("delay {d}"));
        }
        f.write_str(&parts.join(" "))
    }
}

/// What a capture listens to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureTarget {
    /// One interface (a VM's tap), both directions.
    Interface(String),
    /// Every port of a logical bridge, all its VLANs (each frame once, as it enters).
    Bridge(String),
}

/// A pcap capture to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureSpec {
    /// What to listen to.
    pub target: CaptureTarget,
    /// The pcap file to write (created or truncated).
    pub path: PathBuf,
    /// Bytes kept of each frame.
    pub snaplen: u32,
    /// BPF expression (tcpdump syntax), empty for everything.
    pub filter: String,
}

/// Figures of a capture so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Frames written.
    pub packets: u64,
    /// Frames the kernel dropped because the reader was too slow.
    pub drops: u64,
}

/// Where a NetFlow capture writes what the bridge's exporter sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetflowSink {
    /// A file (created or truncated), gzipped when asked.
    File {
        /// The file.
        path: PathBuf,
        /// Gzip it.
        gzip: bool,
    },
    /// A TCP or UDP socket at `addr` (`host:port`).
    Socket {
        /// TCP (true) or UDP.
        tcp: bool,
        /// `host:port`.
        addr: String,
    },
}

/// A NetFlow capture to start on a logical bridge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetflowSpec {
    /// The logical bridge.
    pub bridge: String,
    /// Where records go.
    pub sink: NetflowSink,
    /// One text line per flow (minimega's ascii mode) instead of the raw datagrams.
    pub ascii: bool,
}

/// A dnsmasq to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DnsmasqSpec {
    /// Its directory: pid file, leases, `hosts/`, `dhcp-hosts/`, `dhcp-opts/`.
    pub dir: PathBuf,
    /// Listen address and DHCP range, when given.
    pub dhcp: Option<(String, String, String)>,
    /// An extra configuration file.
    pub config: Option<String>,
}

/// Addresses seen for one MAC on the bridges (ARP, neighbour solicitations, DHCP acks).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snooped {
    /// IPv4 address, empty if unknown.
    pub ip: String,
    /// IPv6 address (not link-local), empty if unknown.
    pub ip6: String,
}

/// Byte counters of a port as the host sees them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Bytes the host received on the port (sent by the VM).
    pub rx_bytes: u64,
    /// Bytes the host sent on the port (received by the VM).
    pub tx_bytes: u64,
}

/// Microseconds of a Go duration (`100ms`, `1.5s`, `1m30s`; units ns us µs ms s m h);
/// None when it does not parse. A leading `-` gives a negative result.
pub fn parse_go_duration(s: &str) -> Option<i64> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest.is_empty() {
        return None;
    }
    let mut micros = 0f64;
    while !rest.is_empty() {
        let num_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
        let n: f64 = rest[..num_len].parse().ok()?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let factor = match &rest[..unit_len] {
            "ns" => 0.001,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1.0,
            "ms" => 1e3,
            "s" => 1e6,
            "m" => 60e6,
            "h" => 3600e6,
            _ => return None,
        };
        micros += n * factor;
        rest = &rest[unit_len..];
    }
    let m = micros as i64;
    Some(if neg { -m } else { m })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qos_displays_in_minimega_order() {
        let q = Qos {
            rate: None,
            loss: Some("5".into()),
            delay: Some("100ms".into()),
        };
        assert_eq!(q.to_string(), "loss 5 delay 100ms");
        let r = Qos {
            rate: Some((1, "mbit".into())),
            ..Qos::default()
        };
        assert_eq!(r.to_string(), "rate 1mbit");
    }

    #[test]
    fn go_durations_parse_to_microseconds() {
        assert_eq!(parse_go_duration("100ms"), Some(100_000));
        assert_eq!(parse_go_duration("1m30s"), Some(90_000_000));
        assert_eq!(parse_go_duration("1.5s"), Some(1_500_000));
        assert_eq!(parse_go_duration("-5ms"), Some(-5_000));
        assert_eq!(parse_go_duration("100xbit"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
