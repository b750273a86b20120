//! Discovery of peers on the local segment (minimega's `-degree`/`-context`): while this
//! host has fewer peers than its degree it broadcasts `ferromega:<context>:<host>:<port>`
//! on UDP with an exponential, jittered back-off (1 s up to 128 s); a host of the same
//! context that hears it dials the sender's HTTP port at the datagram's source address.
//! Dialing still needs the cluster secret: discovery only says where to knock.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use ferromega_domain::ControlPlane;
use tokio::net::UdpSocket;

/// The longest pause between announcements (minimega's).
const MAX_BACKOFF: Duration = Duration::from_secs(128);

/// An announcement's text.
fn announcement(context: &str, host: &str, http_port: u16) -> String {
    format!("ferromega:{context}:{host}:{http_port}")
}

/// (host, HTTP port) of an announcement of `context`, if it is one.
fn parse(text: &str, context: &str) -> Option<(String, u16)> {
    let rest = text.strip_prefix("ferromega:")?;
    let (port, rest) = rest.rsplit_once(':').map(|(r, p)| (p, r))?;
    let (ctx, host) = rest.rsplit_once(':')?;
    (ctx == context).then(|| Some((host.to_string(), port.parse().ok()?)))?
}

/// A pause of about `base`, jittered by up to half of it.
fn jitter(base: Duration) -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base + base.mul_f64(f64::from(nanos % 1000) / 2000.0)
}

/// Runs discovery on UDP `port` until the server stops; `http_port` is where this host's
/// API listens.
pub async fn run(cp: ControlPlane, port: u16, http_port: u16) {
    let sock = match UdpSocket::bind((Ipv4Addr::UNSPECIFIED, port)).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("discovery: cannot bind UDP port {port}: {e}");
            return;
        }
    };
    if let Err(e) = sock.set_broadcast(true) {
        tracing::error!("discovery: cannot broadcast: {e}");
        return;
    }
    let context = cp.mesh_context();
    let me = cp.host().to_string();
    let hello = announcement(&context, &me, http_port);
    let mut backoff = Duration::from_secs(1);
    let mut quit = cp.quit_signal();
    let mut buf = [0u8; 512];
    loop {
        tokio::select! {
            // The guard `wait_for` returns must not live across the other arms' awaits.
            _ = async { drop(quit.wait_for(|q| *q).await) } => return,
            _ = tokio::time::sleep(jitter(backoff)) => {
                if cp.mesh_wants_peers() {
                    let to = SocketAddr::from((Ipv4Addr::BROADCAST, port));
                    if let Err(e) = sock.send_to(hello.as_bytes(), to).await {
                        tracing::warn!("discovery: cannot announce: {e}");
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                } else {
                    backoff = Duration::from_secs(1);
                }
            }
            r = sock.recv_from(&mut buf) => {
                let Ok((n, from)) = r else { continue };
                let text = String::from_utf8_lossy(&buf[..n]);
                let Some((host, http)) = parse(&text, &context) else { continue };
                if host == me || cp.mesh_peers().contains(&host) {
                    continue;
                }
                let addr = SocketAddr::new(from.ip(), http).to_string();
                match cp.mesh_dial_found(&addr).await {
                    Ok(name) => tracing::info!("discovery: {name} at {addr} joined"),
                    Err(e) => tracing::warn!("discovery: {host} at {addr}: {e}"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_of_this_context_parse_and_others_do_not() {
        let a = announcement("lab", "h2", 9001);
        assert_eq!(parse(&a, "lab"), Some(("h2".to_string(), 9001)));
        assert_eq!(parse(&a, "other"), None);
        assert_eq!(parse("meshage:lab:h2", "lab"), None);
        assert_eq!(parse("ferromega:lab:h2:port", "lab"), None);
        assert_eq!(
            parse(&announcement("", "h3", 1), ""),
            Some(("h3".to_string(), 1))
        );
    }
}
