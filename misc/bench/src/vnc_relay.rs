//! vnc-relay: VNC throughput through the console relay (ticket + WebSocket of a real
//! `ferromega serve`) against a direct connection to the same QEMU's VNC unix socket.
//!
//! One tiny VM boots and prints `/proc/uptime` in a loop on its VGA console (typed in
//! over VNC, unshifted keys only), so its screen scrolls all the time, as a busy desktop
//! would. Both sides run the same RFB client, the way noVNC does: handshake, 32-bit true
//! colour, Raw encoding only, then one incremental update request at a time, the next
//! sent when an update arrives. Rounds alternate direct and relay; the medians are
//! compared. The last line reads `ratio relay/direct = <x>`. (`--full` asks for whole
//! non-incremental screens of the guest before it boots instead: that measures QEMU's
//! refresh timer and round trips more than the relay's throughput.)

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use ferromega_client::Client;
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::Message;

mod common;

use common::{binary, ok, Server};

/// Compare VNC throughput through the relay with a direct socket.
#[derive(Debug, Parser)]
#[command(name = "vnc-relay")]
struct Opts {
    /// Seconds per round.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Rounds per side.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Ask for the whole screen (non-incremental) of a paused guest instead.
    #[arg(long)]
    full: bool,
    /// Folder with miniccc.kernel and miniccc.initrd (default target/images).
    #[arg(long)]
    images: Option<PathBuf>,
    /// The `ferromega` binary (default: next to this program).
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// A byte pipe to a VNC server: a unix socket, or the relay's WebSocket.
enum Pipe {
    Unix(tokio::net::UnixStream),
    Ws(
        Box<
            tokio_tungstenite::WebSocketStream<
                tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
            >,
        >,
        Vec<u8>,
    ),
}

impl Pipe {
    async fn send(&mut self, bytes: &[u8]) -> anyhow::Result<()> {
        match self {
            Pipe::Unix(s) => s.write_all(bytes).await?,
            Pipe::Ws(ws, _) => ws.send(Message::Binary(bytes.to_vec().into())).await?,
        }
        Ok(())
    }

    /// Reads exactly `n` bytes and throws them away (the pixels), or returns them.
    async fn read(&mut self, n: usize, keep: bool) -> anyhow::Result<Vec<u8>> {
        match self {
            Pipe::Unix(s) => {
                if keep {
                    let mut buf = vec![0; n];
                    s.read_exact(&mut buf).await?;
                    return Ok(buf);
                }
                let mut left = n;
                let mut sink = [0u8; 64 * 1024];
                while left > 0 {
                    let take = left.min(sink.len());
                    s.read_exact(&mut sink[..take]).await?;
                    left -= take;
                }
                Ok(Vec::new())
            }
            Pipe::Ws(ws, buf) => {
                while buf.len() < n {
                    match ws.next().await.context("relay closed")?? {
                        Message::Binary(b) => buf.extend_from_slice(&b),
                        Message::Close(_) => bail!("relay closed"),
                        _ => {}
                    }
                }
                let rest = buf.split_off(n);
                let got = std::mem::replace(buf, rest);
                Ok(if keep { got } else { Vec::new() })
            }
        }
    }
}

/// RFB 3.8 handshake (no security, shared), 32 bpp, Raw only; returns the screen size.
async fn handshake(p: &mut Pipe) -> anyhow::Result<(u16, u16)> {
    let version = p.read(12, true).await?;
    if &version[..4] != b"RFB " {
        bail!("not an RFB server: {version:?}");
    }
    p.send(b"RFB 003.008\n").await?;
    let n = p.read(1, true).await?[0] as usize;
    let types = p.read(n, true).await?;
    if !types.contains(&1) {
        bail!("no None security among {types:?}");
    }
    p.send(&[1]).await?;
    if p.read(4, true).await? != [0, 0, 0, 0] {
        bail!("security failed");
    }
    p.send(&[1]).await?;
    let init = p.read(24, true).await?;
    let w = u16::from_be_bytes([init[0], init[1]]);
    let h = u16::from_be_bytes([init[2], init[3]]);
    let name = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
    p.read(name, true).await?;
    // SetPixelFormat: 32 bpp, depth 24, little endian, true colour, 255/255/255, 16/8/0.
    let pf = [
        0u8, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0,
    ];
    p.send(&pf).await?;
    // SetEncodings: Raw only.
    p.send(&[2, 0, 0, 1, 0, 0, 0, 0]).await?;
    Ok((w, h))
}

fn request(w: u16, h: u16, incremental: bool) -> [u8; 10] {
    let [w0, w1] = w.to_be_bytes();
    let [h0, h1] = h.to_be_bytes();
    [3, u8::from(incremental), 0, 0, 0, 0, w0, w1, h0, h1]
}

/// Types `text` and Return on the guest's console (KeyEvents, press and release).
async fn type_line(p: &mut Pipe, text: &str) -> anyhow::Result<()> {
    let keys = text.chars().map(u32::from).chain([0xff0d]);
    for k in keys {
        for down in [1u8, 0] {
            let [a, b, c, d] = k.to_be_bytes();
            p.send(&[4, down, 0, 0, a, b, c, d]).await?;
        }
    }
    Ok(())
}

/// Reads one server message; returns the pixel bytes it carried.
async fn message(p: &mut Pipe) -> anyhow::Result<u64> {
    let t = p.read(1, true).await?[0];
    match t {
        0 => {
            let hdr = p.read(3, true).await?;
            let rects = u16::from_be_bytes([hdr[1], hdr[2]]);
            let mut bytes = 0u64;
            for _ in 0..rects {
                let r = p.read(12, true).await?;
                let w = u16::from_be_bytes([r[4], r[5]]) as usize;
                let h = u16::from_be_bytes([r[6], r[7]]) as usize;
                let enc = i32::from_be_bytes([r[8], r[9], r[10], r[11]]);
                match enc {
                    0 => {
                        p.read(w * h * 4, false).await?;
                        bytes += (w * h * 4) as u64 + 12;
                    }
                    -223 => {} // DesktopSize: no payload
                    e => bail!("unexpected encoding {e}"),
                }
            }
            Ok(bytes)
        }
        2 => Ok(0), // Bell
        1 => {
            let hdr = p.read(5, true).await?;
            let n = u16::from_be_bytes([hdr[3], hdr[4]]) as usize;
            p.read(n * 6, false).await?;
            Ok(0)
        }
        3 => {
            let hdr = p.read(7, true).await?;
            let n = u32::from_be_bytes([hdr[3], hdr[4], hdr[5], hdr[6]]) as usize;
            p.read(n, false).await?;
            Ok(0)
        }
        t => bail!("unexpected server message {t}"),
    }
}

/// Bytes per second of screen updates over `p` for `secs`, one request at a time.
async fn round(mut p: Pipe, secs: f64, incremental: bool) -> anyhow::Result<f64> {
    let (w, h) = handshake(&mut p).await?;
    // The first request is always whole: a client starts from the full screen.
    p.send(&request(w, h, false)).await?;
    let req = request(w, h, incremental);
    while message(&mut p).await? == 0 {}
    p.send(&req).await?;
    let start = Instant::now();
    let mut bytes = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        let got = message(&mut p).await?;
        if got > 0 {
            bytes += got;
            p.send(&req).await?;
        }
    }
    Ok(bytes as f64 / start.elapsed().as_secs_f64())
}

async fn relay_pipe(addr: &str) -> anyhow::Result<Pipe> {
    let http = format!("http://{addr}/api/v1/namespaces/minimega/vms/bench0/console");
    let resp = reqwest::Client::new().post(&http).send().await?;
    if !resp.status().is_success() {
        bail!("console ticket: {}", resp.text().await?);
    }
    let t: ferromega_api::events::ConsoleTicket = resp.json().await?;
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}{}", t.url)).await?;
    Ok(Pipe::Ws(Box::new(ws), Vec::new()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let bin = binary(opts.bin)?;
    let images = opts
        .images
        .unwrap_or_else(|| PathBuf::from("target/images"));
    if !images.join("miniccc.kernel").is_file() {
        bail!(
            "no guest image in {0}: run misc/images/build {0}",
            images.display()
        );
    }
    let images = std::fs::canonicalize(&images)?;
    let server = Server::start(&bin).await?;
    let (addr, base) = (server.addr.clone(), server.base().to_path_buf());
    let c = Client::new(&addr);
    let kernel = images.join("miniccc.kernel");
    let initrd = images.join("miniccc.initrd");
    ok(&c, &format!("vm config kernel {}", kernel.display())).await?;
    ok(&c, &format!("vm config initrd {}", initrd.display())).await?;
    ok(&c, "vm config memory 128").await?;
    ok(
        &c,
        "vm config append console=ttyS0 no_timer_check quiet panic=-1",
    )
    .await?;
    ok(&c, "vm launch kvm bench0").await?;
    let sock: PathBuf = Path::new(&base).join("0/vnc");
    if !opts.full {
        ok(&c, "vm start bench0").await?;
        let log = base.join("0/qemu.log");
        let deadline = Instant::now() + Duration::from_secs(180);
        while !std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("ferromega-guest: ready")
        {
            if Instant::now() > deadline {
                bail!(
                    "the guest did not boot: no `ferromega-guest: ready` in {}",
                    log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut p = Pipe::Unix(tokio::net::UnixStream::connect(&sock).await?);
        handshake(&mut p).await?;
        type_line(&mut p, "while true; do cat /proc/uptime; done").await?;
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let mut direct = Vec::new();
    let mut relay = Vec::new();
    for i in 0..opts.rounds {
        let d = round(
            Pipe::Unix(tokio::net::UnixStream::connect(&sock).await?),
            opts.seconds,
            !opts.full,
        )
        .await?;
        let r = round(relay_pipe(&addr).await?, opts.seconds, !opts.full).await?;
        println!(
            "round {}: direct {:.1} MB/s, relay {:.1} MB/s",
            i + 1,
            d / 1e6,
            r / 1e6
        );
        direct.push(d);
        relay.push(r);
    }
    let (d, r) = (median(direct), median(relay));
    println!("direct (unix socket): {:.1} MB/s (median)", d / 1e6);
    println!("relay (ticket + WebSocket): {:.1} MB/s (median)", r / 1e6);
    let _ = c.command("minimega", "clear all").await;
    println!("ratio relay/direct = {:.2}", r / d);
    Ok(())
}
