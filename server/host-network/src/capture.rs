//! Packet captures to classic pcap files: one packet socket per capture, read on the
//! tokio runtime, filtered in the kernel (BPF) and, for bridges, by port.
//!
//! A bridge capture listens on every interface but keeps only frames *entering* a port
//! of the logical bridge (every VLAN), so each frame crossing the bridge is written once.

use std::collections::HashMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use ferromega_domain::network::CaptureStats;
use thiserror::Error;
use tokio::sync::oneshot;

use crate::bpf::{self, SockFilter};
use crate::sys::PacketSocket;

/// Ports of logical bridges: interface index → logical bridge name.
pub type PortMap = Arc<RwLock<HashMap<u32, String>>>;

/// Why a capture could not start.
#[derive(Debug, Error)]
pub enum CaptureError {
    /// The filter does not compile.
    #[error(transparent)]
    Filter(#[from] bpf::BpfError),
    /// The file cannot be written.
    #[error("cannot write capture file {path}: {source}")]
    File {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The packet socket failed.
    #[error("packet socket: {0}")]
    Socket(std::io::Error),
}

/// A running capture: stop it to get its figures.
#[derive(Debug)]
pub struct Capture {
    stop: oneshot::Sender<()>,
    done: tokio::task::JoinHandle<CaptureStats>,
}

impl Capture {
    /// Stops the capture, flushes its file and returns its figures.
    pub async fn stop(self) -> CaptureStats {
        let _ = self.stop.send(());
        self.done.await.unwrap_or_default()
    }
}

/// The 24-byte pcap file header (microsecond timestamps, Ethernet).
pub fn file_header(snaplen: u32) -> [u8; 24] {
    let mut h = [0u8; 24];
    h[0..4].copy_from_slice(&0xa1b2_c3d4_u32.to_le_bytes());
    h[4..6].copy_from_slice(&2u16.to_le_bytes());
    h[6..8].copy_from_slice(&4u16.to_le_bytes());
    h[16..20].copy_from_slice(&snaplen.to_le_bytes());
    h[20..24].copy_from_slice(&1u32.to_le_bytes());
    h
}

/// The 16-byte header of one record.
pub fn record_header(t: SystemTime, caplen: usize, len: usize) -> [u8; 16] {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut h = [0u8; 16];
    h[0..4].copy_from_slice(&(d.as_secs() as u32).to_le_bytes());
    h[4..8].copy_from_slice(&d.subsec_micros().to_le_bytes());
    h[8..12].copy_from_slice(&(caplen as u32).to_le_bytes());
    h[12..16].copy_from_slice(&(len as u32).to_le_bytes());
    h
}

/// What a capture keeps.
pub enum Scope {
    /// Everything on one interface, both directions.
    Interface(u32),
    /// Frames entering ports of this logical bridge.
    Bridge(String, PortMap),
}

/// Starts capturing into `path` (created or truncated).
pub async fn start(
    scope: Scope,
    path: &Path,
    snaplen: u32,
    filter: &str,
) -> Result<Capture, CaptureError> {
    let prog = if filter.trim().is_empty() {
        vec![SockFilter::ret(262_144)]
    } else {
        bpf::compile(filter).await?
    };
    let file_err = |source| CaptureError::File {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(file_err)?;
    run(scope, file, path, snaplen, &prog)
}

/// Starts capturing everything `scope` keeps into `file` (a pipe to another program),
/// unfiltered.
pub fn start_to(
    scope: Scope,
    file: std::fs::File,
    path: &Path,
    snaplen: u32,
) -> Result<Capture, CaptureError> {
    run(scope, file, path, snaplen, &[SockFilter::ret(262_144)])
}

fn run(
    scope: Scope,
    file: std::fs::File,
    path: &Path,
    snaplen: u32,
    prog: &[SockFilter],
) -> Result<Capture, CaptureError> {
    let file_err = |source| CaptureError::File {
        path: path.display().to_string(),
        source,
    };
    let mut out = BufWriter::with_capacity(1 << 20, file);
    out.write_all(&file_header(snaplen)).map_err(file_err)?;
    out.flush().map_err(file_err)?;
    let ifindex = match &scope {
        Scope::Interface(i) => *i,
        Scope::Bridge(..) => 0,
    };
    let sock = PacketSocket::open(ifindex, matches!(scope, Scope::Bridge(..)), prog)
        .map_err(CaptureError::Socket)?;
    let _ = sock.set_rcvbuf(4 << 20);
    let fd = sock.into_async().map_err(CaptureError::Socket)?;
    let (stop, mut stopped) = oneshot::channel();
    let done = tokio::spawn(async move {
        let mut stats = CaptureStats::default();
        let mut buf = vec![0u8; snaplen.clamp(1, 262_144) as usize];
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                ready = fd.readable() => {
                    let Ok(mut guard) = ready else { break };
                    loop {
                        match fd.get_ref().recv(&mut buf) {
                            Ok(f) => {
                                if let Scope::Bridge(name, ports) = &scope {
                                    let ours = ports
                                        .read()
                                        .map(|p| p.get(&f.ifindex) == Some(name))
                                        .unwrap_or(false);
                                    if !ours || f.outgoing {
                                        continue;
                                    }
                                }
                                let h = record_header(SystemTime::now(), f.caplen, f.len);
                                if out.write_all(&h).and_then(|_| out.write_all(&buf[..f.caplen])).is_err() {
                                    break;
                                }
                                stats.packets += 1;
                            }
                            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                                guard.clear_ready();
                                break;
                            }
                            Err(e) => {
                                tracing::warn!("capture read: {e}");
                                guard.clear_ready();
                                break;
                            }
                        }
                    }
                    let _ = out.flush();
                }
            }
        }
        let _ = out.flush();
        stats.drops = fd.get_ref().drops().unwrap_or(0);
        // Closing a packet socket waits for an RCU grace period; do it off the
        // stopper's path so stopping many captures does not add those up.
        tokio::task::spawn_blocking(move || drop(fd));
        stats
    });
    Ok(Capture { stop, done })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pcap_headers_are_little_endian_classic_pcap() {
        let h = file_header(1600);
        assert_eq!(&h[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32::from_le_bytes([h[16], h[17], h[18], h[19]]), 1600);
        assert_eq!(u32::from_le_bytes([h[20], h[21], h[22], h[23]]), 1);
        let t = UNIX_EPOCH + std::time::Duration::from_micros(5_000_007);
        let r = record_header(t, 60, 1514);
        assert_eq!(u32::from_le_bytes([r[0], r[1], r[2], r[3]]), 5);
        assert_eq!(u32::from_le_bytes([r[4], r[5], r[6], r[7]]), 7);
        assert_eq!(u32::from_le_bytes([r[12], r[13], r[14], r[15]]), 1514);
    }
}
