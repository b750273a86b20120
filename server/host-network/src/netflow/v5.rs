//! NetFlow v5 datagrams: the parser (a 24-byte header, then 48-byte records) and
//! minimega's ASCII rendering of a record.

use std::net::Ipv4Addr;

use thiserror::Error;

/// Why a datagram is not NetFlow v5.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Shorter than a header.
    #[error("netflow datagram of {0} bytes is shorter than a v5 header")]
    Short(usize),
    /// Another version.
    #[error("netflow version {0} is not 5")]
    Version(u16),
    /// Fewer bytes than the header's record count says.
    #[error("netflow v5 datagram says {count} records but holds {bytes} bytes")]
    Truncated {
        /// Records announced.
        count: u16,
        /// Bytes present.
        bytes: usize,
    },
}

/// The header of a v5 datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// Records that follow.
    pub count: u16,
    /// Milliseconds since the exporter started.
    pub sys_uptime: u32,
    /// Export time, seconds since the epoch.
    pub unix_secs: u32,
    /// Export time, nanoseconds part.
    pub unix_nsecs: u32,
    /// Sequence number of the first record.
    pub sequence: u32,
}

/// One flow record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record {
    /// Source address.
    pub src: Ipv4Addr,
    /// Destination address.
    pub dst: Ipv4Addr,
    /// Packets in the flow.
    pub packets: u32,
    /// Layer-3 bytes in the flow.
    pub bytes: u32,
    /// sys_uptime at the flow's first packet.
    pub first: u32,
    /// sys_uptime at its last packet.
    pub last: u32,
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// IP protocol number.
    pub protocol: u8,
}

/// A parsed datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    /// Its header.
    pub header: Header,
    /// Its records.
    pub records: Vec<Record>,
}

/// Header and record sizes.
pub const HEADER_LEN: usize = 24;
/// Size of one record.
pub const RECORD_LEN: usize = 48;

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// Parses one datagram.
pub fn parse(b: &[u8]) -> Result<Packet, ParseError> {
    if b.len() < HEADER_LEN {
        return Err(ParseError::Short(b.len()));
    }
    let version = u16_at(b, 0);
    if version != 5 {
        return Err(ParseError::Version(version));
    }
    let header = Header {
        count: u16_at(b, 2),
        sys_uptime: u32_at(b, 4),
        unix_secs: u32_at(b, 8),
        unix_nsecs: u32_at(b, 12),
        sequence: u32_at(b, 16),
    };
    let need = HEADER_LEN + usize::from(header.count) * RECORD_LEN;
    if b.len() < need {
        return Err(ParseError::Truncated {
            count: header.count,
            bytes: b.len(),
        });
    }
    let records = b[HEADER_LEN..need]
        .chunks_exact(RECORD_LEN)
        .map(|r| Record {
            src: Ipv4Addr::from(u32_at(r, 0)),
            dst: Ipv4Addr::from(u32_at(r, 4)),
            packets: u32_at(r, 16),
            bytes: u32_at(r, 20),
            first: u32_at(r, 24),
            last: u32_at(r, 28),
            src_port: u16_at(r, 32),
            dst_port: u16_at(r, 34),
            protocol: r[38],
        })
        .collect();
    Ok(Packet { header, records })
}

/// Seconds and milliseconds since the epoch at which `r` started.
pub fn start_millis(h: &Header, r: &Record) -> i64 {
    let export = i64::from(h.unix_secs) * 1000 + i64::from(h.unix_nsecs / 1_000_000);
    export - i64::from(h.sys_uptime.wrapping_sub(r.first))
}

/// RFC 3339 UTC time of `millis` since the epoch, to the second.
pub fn rfc3339(millis: i64) -> String {
    let secs = millis.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration of `ms` milliseconds as Go prints one (`0s`, `250ms`, `1.5s`, `2m3s`).
pub fn go_duration(ms: u32) -> String {
    if ms == 0 {
        return "0s".into();
    }
    if ms < 1000 {
        return format!("{ms}ms");
    }
    let (h, m) = (ms / 3_600_000, ms / 60_000 % 60);
    let s = ms % 60_000;
    let secs = if s.is_multiple_of(1000) {
        format!("{}s", s / 1000)
    } else {
        let frac = format!("{:03}", s % 1000);
        format!("{}.{}s", s / 1000, frac.trim_end_matches('0'))
    };
    match (h, m) {
        (0, 0) => secs,
        (0, m) => format!("{m}m{secs}"),
        (h, m) => format!("{h}h{m}m{secs}"),
    }
}

/// minimega's ASCII line of one record: start, duration, protocol, `src:port`, `<->`,
/// `dst:port`, packets, bytes, tab-separated.
pub fn ascii_line(h: &Header, r: &Record) -> String {
    format!(
        "{}\t{}\t{}\t{}:{}\t<->\t{}:{}\t{}\t{}\n",
        rfc3339(start_millis(h, r)),
        go_duration(r.last.wrapping_sub(r.first)),
        r.protocol,
        r.src,
        r.src_port,
        r.dst,
        r.dst_port,
        r.packets,
        r.bytes
    )
}

/// Builds a datagram (for tests of the collector and of consumers).
pub fn encode(h: &Header, records: &[Record]) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_LEN + records.len() * RECORD_LEN);
    b.extend_from_slice(&5u16.to_be_bytes());
    b.extend_from_slice(&(records.len() as u16).to_be_bytes());
    for v in [h.sys_uptime, h.unix_secs, h.unix_nsecs, h.sequence] {
        b.extend_from_slice(&v.to_be_bytes());
    }
    b.extend_from_slice(&[0; 4]);
    for r in records {
        let mut rec = [0u8; RECORD_LEN];
        rec[0..4].copy_from_slice(&r.src.octets());
        rec[4..8].copy_from_slice(&r.dst.octets());
        rec[16..20].copy_from_slice(&r.packets.to_be_bytes());
        rec[20..24].copy_from_slice(&r.bytes.to_be_bytes());
        rec[24..28].copy_from_slice(&r.first.to_be_bytes());
        rec[28..32].copy_from_slice(&r.last.to_be_bytes());
        rec[32..34].copy_from_slice(&r.src_port.to_be_bytes());
        rec[34..36].copy_from_slice(&r.dst_port.to_be_bytes());
        rec[38] = r.protocol;
        b.extend_from_slice(&rec);
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (Header, Record) {
        let h = Header {
            count: 1,
            sys_uptime: 10_000,
            unix_secs: 1_700_000_000,
            unix_nsecs: 0,
            sequence: 7,
        };
        let r = Record {
            src: Ipv4Addr::new(10, 0, 0, 1),
            dst: Ipv4Addr::new(10, 0, 0, 2),
            packets: 3,
            bytes: 252,
            first: 8_500,
            last: 10_000,
            src_port: 0,
            dst_port: 2048,
            protocol: 1,
        };
        (h, r)
    }

    #[test]
    fn datagrams_round_trip_through_the_parser() {
        let (h, r) = sample();
        let b = encode(&h, &[r, r]);
        assert_eq!(b.len(), HEADER_LEN + 2 * RECORD_LEN);
        let p = parse(&b).expect("v5");
        assert_eq!(p.records, vec![r, r]);
        assert_eq!(p.header.sequence, 7);
        assert_eq!(p.header.count, 2);
    }

    #[test]
    fn bad_datagrams_are_refused() {
        assert_eq!(parse(&[0; 10]), Err(ParseError::Short(10)));
        let (h, r) = sample();
        let mut b = encode(&h, &[r]);
        b[1] = 9;
        assert_eq!(parse(&b), Err(ParseError::Version(9)));
        let mut b = encode(&h, &[r]);
        b.truncate(50);
        assert!(matches!(
            parse(&b),
            Err(ParseError::Truncated { count: 1, .. })
        ));
    }

    #[test]
    fn ascii_lines_are_minimegas() {
        let (h, r) = sample();
        assert_eq!(
            ascii_line(&h, &r),
            "2023-11-14T22:13:18Z\t1.5s\t1\t10.0.0.1:0\t<->\t10.0.0.2:2048\t3\t252\n"
        );
    }

    #[test]
    fn durations_print_as_go_does() {
        assert_eq!(go_duration(0), "0s");
        assert_eq!(go_duration(250), "250ms");
        assert_eq!(go_duration(2000), "2s");
        assert_eq!(go_duration(123_450), "2m3.45s");
        assert_eq!(go_duration(3_600_000), "1h0m0s");
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00Z");
    }
}
