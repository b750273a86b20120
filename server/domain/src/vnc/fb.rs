//! Framebuffer recording (reference §8.3): over its own RFB connection, ask for 32-bit
//! raw pixels and a screen update every 100 ms, and write everything the server sends as
//! a gzip stream of chunks `"<ns since previous chunk> <length>\r\n" <bytes> "\r\n"` —
//! minimega's format, which its `rfbplay` reads.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use flate2::write::GzEncoder;
use flate2::Compression;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::rfb::{self, ServerInit};

/// How often an update is requested (≈10 frames a second).
pub const PERIOD: Duration = Duration::from_millis(100);

/// Appends one chunk.
fn write_chunk<W: Write>(w: &mut W, delta_ns: u64, bytes: &[u8]) -> std::io::Result<()> {
    write!(w, "{delta_ns} {}\r\n", bytes.len())?;
    w.write_all(bytes)?;
    w.write_all(b"\r\n")
}

/// Records until `stop` fires or the server closes; returns the bytes recorded. The
/// connection must be past the handshake (`init` is what it said).
pub async fn record<S, W>(
    conn: S,
    init: ServerInit,
    out: W,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) -> Result<u64, String>
where
    S: AsyncRead + AsyncWrite,
    W: Write,
{
    let (mut rd, mut wr) = tokio::io::split(conn);
    let mut gz = GzEncoder::new(out, Compression::default());
    let io = |e: std::io::Error| format!("fb recording: {e}");
    let mut setup = rfb::set_pixel_format_rgb32();
    setup.extend(rfb::set_encodings(&[rfb::RAW, rfb::DESKTOP_SIZE]));
    wr.write_all(&setup).await.map_err(io)?;
    let mut tick = tokio::time::interval(PERIOD);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut buf = vec![0u8; 64 * 1024];
    let mut prev = Instant::now();
    let mut total = 0u64;
    let mut first = true;
    let result = loop {
        tokio::select! {
            _ = &mut stop => break Ok(()),
            _ = tick.tick() => {
                // The first request is for the whole screen, then only what changed.
                let req = rfb::update_request(!first, init.width, init.height);
                first = false;
                if let Err(e) = wr.write_all(&req).await {
                    break Err(io(e));
                }
            }
            n = rd.read(&mut buf) => match n {
                Ok(0) => break Ok(()),
                Ok(n) => {
                    let now = Instant::now();
                    let delta = now.duration_since(prev).as_nanos() as u64;
                    prev = now;
                    if let Err(e) = write_chunk(&mut gz, delta, &buf[..n]) {
                        break Err(io(e));
                    }
                    total += n as u64;
                }
                Err(e) => break Err(io(e)),
            }
        }
    };
    gz.finish().map_err(io)?;
    result.map(|()| total)
}

/// Reads an fb recording back into its chunks (delta ns, bytes).
pub fn read_chunks<R: Read>(gzipped: R) -> Result<Vec<(u64, Vec<u8>)>, String> {
    let mut raw = Vec::new();
    flate2::read::GzDecoder::new(gzipped)
        .read_to_end(&mut raw)
        .map_err(|e| format!("fb recording: {e}"))?;
    let bad = || "fb recording: malformed chunk".to_string();
    let mut chunks = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        let end = raw[at..]
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(bad)?;
        let header = std::str::from_utf8(&raw[at..at + end]).map_err(|_| bad())?;
        let (delta, len) = header.split_once(' ').ok_or_else(bad)?;
        let delta: u64 = delta.parse().map_err(|_| bad())?;
        let len: usize = len.parse().map_err(|_| bad())?;
        let start = at + end + 2;
        let body = raw.get(start..start + len).ok_or_else(bad)?;
        if raw.get(start + len..start + len + 2) != Some(b"\r\n") {
            return Err(bad());
        }
        chunks.push((delta, body.to_vec()));
        at = start + len + 2;
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn server_bytes_become_gzipped_chunks() {
        let (client, mut server) = tokio::io::duplex(1 << 16);
        let init = ServerInit {
            width: 640,
            height: 480,
            name: "QEMU".into(),
        };
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(record(client, init, Vec::new(), stop_rx));
        // SetPixelFormat (20) + SetEncodings with two (12), then a full update request.
        let mut got = vec![0u8; 42];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[..20], rfb::set_pixel_format_rgb32().as_slice());
        assert_eq!(
            &got[20..32],
            rfb::set_encodings(&[rfb::RAW, rfb::DESKTOP_SIZE]).as_slice()
        );
        assert_eq!(&got[32..], rfb::update_request(false, 640, 480).as_slice());
        server.write_all(b"update one").await.unwrap();
        // The next request is incremental.
        let mut req = [0u8; 10];
        server.read_exact(&mut req).await.unwrap();
        assert_eq!(req.to_vec(), rfb::update_request(true, 640, 480));
        server.write_all(b"two").await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        stop_tx.send(()).unwrap();
        let n = task.await.unwrap().unwrap();
        assert_eq!(n, 13);
    }

    #[test]
    fn chunks_read_back() {
        let mut gz = GzEncoder::new(Vec::new(), Compression::default());
        write_chunk(&mut gz, 5, b"abc").unwrap();
        write_chunk(&mut gz, 100_000_000, b"\r\n\r\n").unwrap();
        let bytes = gz.finish().unwrap();
        assert_eq!(
            read_chunks(bytes.as_slice()).unwrap(),
            vec![(5, b"abc".to_vec()), (100_000_000, b"\r\n\r\n".to_vec())]
        );
        assert!(read_chunks(&b"not gzip"[..]).is_err());
    }
}
