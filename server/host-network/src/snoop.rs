//! IP snooping: ARP senders, IPv6 neighbour-solicitation sources and DHCP acks seen on
//! any interface fill a MAC → address table (the `ip`/`ip6` columns of `vm info`).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use ferromega_domain::network::Snooped;

use crate::bpf;
use crate::names::format_mac;
use crate::sys::PacketSocket;

/// Addresses by lower-case MAC.
pub type Table = Arc<Mutex<HashMap<String, Snooped>>>;

/// What one frame teaches: a MAC and an IPv4 or IPv6 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Learned {
    /// IPv4 address of a MAC.
    V4(String, Ipv4Addr),
    /// IPv6 address of a MAC.
    V6(String, Ipv6Addr),
}

fn u16_at(f: &[u8], i: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*f.get(i)?, *f.get(i + 1)?]))
}

/// Reads an ARP, IPv6 NS or DHCP ack frame.
pub fn parse(f: &[u8]) -> Option<Learned> {
    match u16_at(f, 12)? {
        0x0806 => {
            let sha = f.get(22..28)?;
            let spa: [u8; 4] = f.get(28..32)?.try_into().ok()?;
            let ip = Ipv4Addr::from(spa);
            (!ip.is_unspecified()).then(|| Learned::V4(format_mac(sha), ip))
        }
        0x86dd => {
            if *f.get(20)? != 58 || *f.get(54)? != 135 {
                return None;
            }
            let src: [u8; 16] = f.get(22..38)?.try_into().ok()?;
            let ip = Ipv6Addr::from(src);
            let link_local = (ip.segments()[0] & 0xffc0) == 0xfe80;
            let mac = format_mac(f.get(6..12)?);
            (!ip.is_unspecified() && !link_local).then_some(Learned::V6(mac, ip))
        }
        0x0800 => {
            let ihl = usize::from(*f.get(14)? & 0x0f) * 4;
            let bootp = 14 + ihl + 8;
            if *f.get(23)? != 17 || u16_at(f, 14 + ihl + 2)? != 68 || *f.get(bootp)? != 2 {
                return None;
            }
            if f.get(bootp + 236..bootp + 240)? != [99, 130, 83, 99] {
                return None;
            }
            let mut i = bootp + 240;
            let mut ack = false;
            while let Some(&code) = f.get(i) {
                match code {
                    0 => i += 1,
                    255 => break,
                    _ => {
                        let len = usize::from(*f.get(i + 1)?);
                        if code == 53 && len == 1 {
                            ack = *f.get(i + 2)? == 5;
                        }
                        i += 2 + len;
                    }
                }
            }
            let yi: [u8; 4] = f.get(bootp + 16..bootp + 20)?.try_into().ok()?;
            let ip = Ipv4Addr::from(yi);
            let mac = format_mac(f.get(bootp + 28..bootp + 34)?);
            (ack && !ip.is_unspecified()).then_some(Learned::V4(mac, ip))
        }
        _ => None,
    }
}

/// Records what a frame taught.
pub fn learn(table: &Table, l: Learned) {
    let Ok(mut t) = table.lock() else { return };
    match l {
        Learned::V4(mac, ip) => t.entry(mac).or_default().ip = ip.to_string(),
        Learned::V6(mac, ip) => t.entry(mac).or_default().ip6 = ip.to_string(),
    }
}

/// Starts snooping on every interface of the namespace; runs until the runtime stops.
pub fn start(table: Table) -> std::io::Result<()> {
    let sock = PacketSocket::open(0, false, &bpf::snoop_program())?;
    let fd = sock.into_async()?;
    tokio::spawn(async move {
        let mut buf = vec![0u8; 1600];
        loop {
            let Ok(mut guard) = fd.readable().await else {
                return;
            };
            loop {
                match fd.get_ref().recv(&mut buf) {
                    Ok(f) => {
                        if let Some(l) = parse(&buf[..f.caplen]) {
                            learn(&table, l);
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        guard.clear_ready();
                        break;
                    }
                    Err(e) => {
                        tracing::warn!("ip snooping stopped: {e}");
                        return;
                    }
                }
            }
        }
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn arp(sha: [u8; 6], spa: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0xff; 6];
        f.extend_from_slice(&sha);
        f.extend_from_slice(&[0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1]);
        f.extend_from_slice(&sha);
        f.extend_from_slice(&spa);
        f.extend_from_slice(&[0; 10]);
        f
    }

    #[test]
    fn arp_senders_are_learned_but_probes_are_not() {
        let mac = [0xb4, 0xb6, 0x76, 1, 2, 3];
        assert_eq!(
            parse(&arp(mac, [10, 0, 0, 5])),
            Some(Learned::V4(
                "b4:b6:76:01:02:03".into(),
                Ipv4Addr::new(10, 0, 0, 5)
            ))
        );
        assert_eq!(parse(&arp(mac, [0, 0, 0, 0])), None);
    }

    #[test]
    fn neighbour_solicitations_from_global_addresses_are_learned() {
        let mut f = vec![
            0x33, 0x33, 0xff, 0, 0, 1, 0, 0x1b, 0x21, 9, 9, 9, 0x86, 0xdd,
        ];
        let mut ip6 = vec![0x60, 0, 0, 0, 0, 32, 58, 255];
        let src: Ipv6Addr = "fd00::5".parse().expect("addr");
        ip6.extend_from_slice(&src.octets());
        ip6.extend_from_slice(&[0; 16]);
        f.extend_from_slice(&ip6);
        f.extend_from_slice(&[135, 0, 0, 0]);
        assert_eq!(
            parse(&f),
            Some(Learned::V6("00:1b:21:09:09:09".into(), src))
        );
        f[22] = 0xfe;
        f[23] = 0x80;
        assert_eq!(parse(&f), None);
    }
}
