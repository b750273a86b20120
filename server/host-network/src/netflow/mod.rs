//! NetFlow captures: one collector per bridge (a loopback UDP socket, see
//! [`collector`]) fed by the bridge's exporter — Open vSwitch's own, or `softflowd` on
//! Linux bridges (see [`softflowd`]) — and fanned out to the captures' writers. The
//! exporter starts with a bridge's first capture and stops with its last.

pub mod collector;
pub mod softflowd;
pub mod v5;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use ferromega_domain::backends::BoxFuture;
use ferromega_domain::network::{NetflowSink, NetflowSpec};

use collector::{Collector, Writer};

/// minimega's default active timeout, in seconds.
pub const DEFAULT_TIMEOUT: u32 = 10;

/// Something that makes a bridge send NetFlow v5 to a loopback UDP port.
pub trait Exporter: Send + Sync {
    /// Starts exporting `bridge`'s flows to `127.0.0.1:<port>`.
    fn export<'a>(
        &'a self,
        bridge: &'a str,
        port: u16,
        timeout: u32,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Stops exporting `bridge`'s flows (sending what it holds first where it can).
    fn unexport<'a>(&'a self, bridge: &'a str) -> BoxFuture<'a, ()>;
    /// Changes the active timeout of `bridge`'s export to `127.0.0.1:<port>`.
    fn retime<'a>(
        &'a self,
        bridge: &'a str,
        port: u16,
        timeout: u32,
    ) -> BoxFuture<'a, Result<(), String>>;
}

/// The NetFlow captures of a backend.
pub struct Netflows {
    bridges: tokio::sync::Mutex<HashMap<String, Collector>>,
    next: AtomicU64,
    timeout: AtomicU32,
}

impl Default for Netflows {
    fn default() -> Self {
        Netflows {
            bridges: tokio::sync::Mutex::default(),
            next: AtomicU64::new(1),
            timeout: AtomicU32::new(DEFAULT_TIMEOUT),
        }
    }
}

fn open_error(sink: &NetflowSink, e: &std::io::Error) -> String {
    match sink {
        NetflowSink::File { path, .. } => {
            format!("cannot write netflow file {}: {e}", path.display())
        }
        NetflowSink::Socket { tcp, addr } => {
            let proto = if *tcp { "tcp" } else { "udp" };
            format!("cannot connect to {proto} {addr}: {e}")
        }
    }
}

impl Netflows {
    /// Starts a capture; the bridge's collector and exporter start with its first.
    pub async fn start(&self, ex: &dyn Exporter, spec: &NetflowSpec) -> Result<u64, String> {
        let writer =
            Writer::open(&spec.sink, spec.ascii).map_err(|e| open_error(&spec.sink, &e))?;
        let id = self.next.fetch_add(1, Ordering::SeqCst);
        let mut bridges = self.bridges.lock().await;
        if let Some(c) = bridges.get(&spec.bridge) {
            c.add(id, writer);
            return Ok(id);
        }
        let c = Collector::bind()
            .await
            .map_err(|e| format!("netflow collector: {e}"))?;
        let timeout = self.timeout.load(Ordering::SeqCst);
        if let Err(e) = ex.export(&spec.bridge, c.port(), timeout).await {
            writer.finish();
            c.stop().await;
            if let NetflowSink::File { path, .. } = &spec.sink {
                let _ = std::fs::remove_file(path);
            }
            return Err(e);
        }
        c.add(id, writer);
        bridges.insert(spec.bridge.clone(), c);
        Ok(id)
    }

    /// Stops capture `id` (an unknown id is not an error: its bridge went first).
    pub async fn stop(&self, ex: &dyn Exporter, id: u64) {
        let mut bridges = self.bridges.lock().await;
        let Some(bridge) = bridges
            .iter()
            .find(|(_, c)| c.has(id))
            .map(|(b, _)| b.clone())
        else {
            return;
        };
        let empty = bridges.get(&bridge).is_some_and(|c| {
            c.remove(id);
            c.is_empty()
        });
        if empty {
            ex.unexport(&bridge).await;
            if let Some(c) = bridges.remove(&bridge) {
                c.stop().await;
            }
        }
    }

    /// Stops every capture of `bridge` (it is going away).
    pub async fn stop_bridge(&self, ex: &dyn Exporter, bridge: &str) {
        let c = self.bridges.lock().await.remove(bridge);
        if let Some(c) = c {
            ex.unexport(bridge).await;
            c.stop().await;
        }
    }

    /// Stops every capture.
    pub async fn stop_all(&self, ex: &dyn Exporter) {
        let all: Vec<(String, Collector)> = self.bridges.lock().await.drain().collect();
        for (bridge, c) in all {
            ex.unexport(&bridge).await;
            c.stop().await;
        }
    }

    /// Sets the active timeout of every exporter, now and for later ones.
    pub async fn set_timeout(&self, ex: &dyn Exporter, seconds: u32) -> Result<(), String> {
        if seconds == 0 {
            return Err("invalid timeout parameter: it must be at least 1 second".into());
        }
        self.timeout.store(seconds, Ordering::SeqCst);
        let bridges = self.bridges.lock().await;
        for (b, c) in bridges.iter() {
            ex.retime(b, c.port(), seconds).await?;
        }
        Ok(())
    }
}
