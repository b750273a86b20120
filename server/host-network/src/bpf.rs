//! Classic BPF: the address-snooping program, and capture filters compiled from tcpdump
//! expressions (`tcpdump -ddd`, the same compiler libpcap users get).

use std::io::Write;

use thiserror::Error;

/// One classic BPF instruction (`struct sock_filter`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockFilter {
    /// Opcode.
    pub code: u16,
    /// Jump offset when true.
    pub jt: u8,
    /// Jump offset when false.
    pub jf: u8,
    /// Operand.
    pub k: u32,
}

impl SockFilter {
    const fn new(code: u16, jt: u8, jf: u8, k: u32) -> Self {
        SockFilter { code, jt, jf, k }
    }

    /// `ret #k`: keep `k` bytes of the frame (0 drops it).
    pub const fn ret(k: u32) -> Self {
        SockFilter::new(0x06, 0, 0, k)
    }
}

/// Why a filter expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BpfError {
    /// tcpdump is not installed.
    #[error("a capture filter needs tcpdump to compile it (install tcpdump)")]
    NoCompiler,
    /// The expression does not compile.
    #[error("invalid BPF filter `{expr}`: {reason}")]
    Invalid {
        /// The expression.
        expr: String,
        /// tcpdump's message.
        reason: String,
    },
}

/// Accepts ARP, IPv6 neighbour solicitations and IPv4 UDP to port 68 (DHCP replies).
pub fn snoop_program() -> Vec<SockFilter> {
    const LDH: u16 = 0x28; // ldh [k]
    const LDB: u16 = 0x30; // ldb [k]
    const JEQ: u16 = 0x15; // jeq #k
    const LDXMSH: u16 = 0xb1; // ldxb 4*([k]&0xf)
    const LDHIND: u16 = 0x48; // ldh [x+k]
    vec![
        SockFilter::new(LDH, 0, 0, 12),      // 0: ethertype
        SockFilter::new(JEQ, 11, 0, 0x0806), // 1: ARP → accept
        SockFilter::new(JEQ, 0, 4, 0x86dd),  // 2: IPv6? else → 7
        SockFilter::new(LDB, 0, 0, 20),      // 3: next header
        SockFilter::new(JEQ, 0, 9, 58),      // 4: ICMPv6? else drop
        SockFilter::new(LDB, 0, 0, 54),      // 5: ICMPv6 type
        SockFilter::new(JEQ, 6, 7, 135),     // 6: NS → accept, else drop
        SockFilter::new(JEQ, 0, 6, 0x0800),  // 7: IPv4? else drop
        SockFilter::new(LDB, 0, 0, 23),      // 8: protocol
        SockFilter::new(JEQ, 0, 4, 17),      // 9: UDP? else drop
        SockFilter::new(LDXMSH, 0, 0, 14),   // 10: x = IP header length
        SockFilter::new(LDHIND, 0, 0, 16),   // 11: UDP destination port
        SockFilter::new(JEQ, 0, 1, 68),      // 12: 68 → accept, else drop
        SockFilter::ret(0xffff),             // 13: accept
        SockFilter::ret(0),                  // 14: drop
    ]
}

/// Parses `tcpdump -ddd` output: a count, then `code jt jf k` per line.
pub fn parse_ddd(text: &str) -> Option<Vec<SockFilter>> {
    let mut lines = text.lines().map(str::trim).filter(|l| !l.is_empty());
    let n: usize = lines.next()?.parse().ok()?;
    let prog: Vec<SockFilter> = lines
        .map(|l| {
            let f: Vec<u32> = l
                .split_whitespace()
                .map(|w| w.parse().ok())
                .collect::<Option<Vec<u32>>>()?;
            match f.as_slice() {
                [code, jt, jf, k] => Some(SockFilter::new(
                    u16::try_from(*code).ok()?,
                    u8::try_from(*jt).ok()?,
                    u8::try_from(*jf).ok()?,
                    *k,
                )),
                _ => None,
            }
        })
        .collect::<Option<Vec<_>>>()?;
    (prog.len() == n && n > 0).then_some(prog)
}

/// Compiles a tcpdump expression for Ethernet frames. The expression is handed to
/// tcpdump in a file (`-F`), never as arguments it could mistake for options.
pub async fn compile(expr: &str) -> Result<Vec<SockFilter>, BpfError> {
    let invalid = |reason: String| BpfError::Invalid {
        expr: expr.to_string(),
        reason,
    };
    let mut file = tempfile_in_tmp().map_err(|e| invalid(e.to_string()))?;
    file.1
        .write_all(expr.as_bytes())
        .map_err(|e| invalid(e.to_string()))?;
    let out = tokio::process::Command::new("tcpdump")
        .args(["-ddd", "-y", "EN10MB", "-F"])
        .arg(&file.0)
        .output()
        .await;
    let _ = std::fs::remove_file(&file.0);
    drop(file);
    let out = match out {
        Ok(o) => o,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(BpfError::NoCompiler),
        Err(e) => return Err(invalid(e.to_string())),
    };
    if !out.status.success() {
        let msg = String::from_utf8_lossy(&out.stderr);
        let msg = msg.trim().trim_start_matches("tcpdump: ");
        return Err(invalid(msg.to_string()));
    }
    parse_ddd(&String::from_utf8_lossy(&out.stdout))
        .ok_or_else(|| invalid("unreadable tcpdump output".to_string()))
}

/// A new private file under the temp directory, and its path.
fn tempfile_in_tmp() -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let path = std::env::temp_dir().join(format!("ferromega-bpf-{}-{n}", std::process::id()));
    let f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    Ok((path, f))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ddd_output_parses() {
        let p = parse_ddd("2\n40 0 0 12\n6 0 0 262144\n").expect("program");
        assert_eq!(p[0], SockFilter::new(40, 0, 0, 12));
        assert_eq!(p[1], SockFilter::ret(262_144));
        assert_eq!(parse_ddd("3\n40 0 0 12\n"), None);
    }

    #[test]
    fn snoop_jumps_stay_inside_the_program() {
        let p = snoop_program();
        for (pc, i) in p.iter().enumerate() {
            if i.code == 0x15 {
                assert!(pc + 1 + usize::from(i.jt) < p.len());
                assert!(pc + 1 + usize::from(i.jf) < p.len());
            }
        }
    }
}
