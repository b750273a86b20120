//! The NetFlow exporter of Linux bridges: `softflowd` reading a pcap stream from a named
//! pipe, fed by a bridge capture of the logical bridge (every frame entering one of its
//! ports, all VLANs, once).
//!
//! Why not `softflowd -i <bridge>`: with Debian 12's libpcap it never wakes for packets
//! on a live interface (it polls with no timeout and the ring block never retires), and
//! a logical bridge is several kernel bridges anyway. Reading a stream, softflowd only
//! looks at its flows after thousands of packets, but exports everything it holds when
//! the stream ends. So the stream is rotated every active-timeout seconds: a new
//! softflowd takes over and the old one's stream ends, which exports its flows. The
//! last one's stream ends when the bridge's last capture stops.

use std::collections::HashMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ferromega_domain::backends::BoxFuture;
use tokio::process::Child;
use tokio::sync::oneshot;

use super::Exporter;
use crate::capture::{self, Capture, PortMap, Scope};

/// Bytes kept of each frame: enough for the IP and transport headers.
const SNAPLEN: u32 = 256;

/// The argument vector of the `softflowd` reading `pipe` and exporting NetFlow v5 to
/// `127.0.0.1:<port>`, with its files in `dir`.
pub fn argv(pipe: &Path, port: u16, timeout: u32, dir: &Path) -> Vec<String> {
    let file = |name: &str| dir.join(name).display().to_string();
    vec![
        "-v".into(),
        "5".into(),
        "-r".into(),
        pipe.display().to_string(),
        "-n".into(),
        format!("127.0.0.1:{port}"),
        "-p".into(),
        file("softflowd.pid"),
        // No control socket: reading a stream, softflowd would block accepting on it.
        "-c".into(),
        "none".into(),
        "-t".into(),
        format!("maxlife={timeout}"),
    ]
}

/// The folder of the `n`th exporter of `logical` (pipe, pid file, log).
pub fn run_dir(logical: &str, n: u64) -> PathBuf {
    std::env::temp_dir().join(format!(
        "ferromega-netflow-{}-{:08x}-{n}",
        std::process::id(),
        crate::names::fnv1a(logical)
    ))
}

/// One softflowd and the capture feeding it.
struct Flowd {
    child: Child,
    capture: Capture,
    dir: PathBuf,
}

/// The task rotating a bridge's softflowds.
struct Rotator {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// The `softflowd`s of the exported bridges.
pub struct Softflowd {
    ports: PortMap,
    running: Mutex<HashMap<String, Rotator>>,
}

impl Softflowd {
    /// Exporters that find bridge ports in `ports` (the Linux backend's port map).
    pub fn new(ports: PortMap) -> Self {
        Softflowd {
            ports,
            running: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Rotator>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts exporting `logical`, rotating every `timeout` seconds.
    async fn start(&self, logical: &str, port: u16, timeout: u32) -> Result<(), String> {
        let first = start_flowd(&self.ports, logical, port, timeout, 0).await?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let (ports, name) = (self.ports.clone(), logical.to_string());
        let task = tokio::spawn(async move {
            let mut cur = first;
            for n in 1.. {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(Duration::from_secs(u64::from(timeout))) => {}
                }
                match start_flowd(&ports, &name, port, timeout, n).await {
                    Ok(next) => end(std::mem::replace(&mut cur, next)).await,
                    Err(e) => tracing::warn!("netflow of {name}: {e}"),
                }
            }
            end(cur).await;
        });
        let old = self
            .lock()
            .insert(logical.to_string(), Rotator { stop, task });
        if let Some(old) = old {
            halt(old).await;
        }
        Ok(())
    }
}

/// Stops a rotator and its softflowd (which exports what it holds).
async fn halt(r: Rotator) {
    let _ = r.stop.send(());
    let _ = r.task.await;
}

/// Starts the `n`th softflowd of `logical` with a bridge capture feeding it.
async fn start_flowd(
    ports: &PortMap,
    logical: &str,
    port: u16,
    timeout: u32,
    n: u64,
) -> Result<Flowd, String> {
    let dir = run_dir(logical, n);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let pipe = dir.join("frames.pcap");
    let started = async {
        crate::sys::mkfifo(&pipe).map_err(|e| format!("{}: {e}", pipe.display()))?;
        let log = std::fs::File::create(dir.join("softflowd.log"))
            .map_err(|e| format!("softflowd log: {e}"))?;
        let mut child = tokio::process::Command::new("softflowd")
            .args(argv(&pipe, port, timeout, &dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::NotFound => {
                    "netflow on Linux bridges needs softflowd (apt-get install softflowd)"
                        .to_string()
                }
                _ => format!("softflowd: {e}"),
            })?;
        let file = match open_pipe(&pipe, &mut child, &dir).await {
            Ok(f) => f,
            Err(e) => {
                let _ = child.kill().await;
                return Err(e);
            }
        };
        let scope = Scope::Bridge(logical.to_string(), ports.clone());
        match capture::start_to(scope, file, &pipe, SNAPLEN) {
            Ok(capture) => Ok(Flowd {
                child,
                capture,
                dir: dir.clone(),
            }),
            Err(e) => {
                let _ = child.kill().await;
                Err(e.to_string())
            }
        }
    };
    let f = started.await;
    if f.is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    f
}

/// Opens the write end of `pipe` once softflowd has opened its read end; fails when
/// softflowd exits first (its log says why) or does not open it within three seconds.
async fn open_pipe(pipe: &Path, child: &mut Child, dir: &Path) -> Result<std::fs::File, String> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        // Without a reader a non-blocking open fails (ENXIO) instead of waiting.
        let probe = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(pipe);
        if probe.is_ok() {
            // A reader is there, so a blocking open returns at once.
            return std::fs::OpenOptions::new()
                .write(true)
                .open(pipe)
                .map_err(|e| format!("{}: {e}", pipe.display()));
        }
        if let Ok(Some(status)) = child.try_wait() {
            let log = std::fs::read_to_string(dir.join("softflowd.log")).unwrap_or_default();
            return Err(format!(
                "softflowd exited ({status}): {}",
                log.trim().replace('\n', "; ")
            ));
        }
        if Instant::now() > deadline {
            return Err("softflowd did not open its input".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Ends the stream (softflowd then exports what it holds and exits) and cleans up.
async fn end(mut f: Flowd) {
    f.capture.stop().await;
    if tokio::time::timeout(Duration::from_secs(5), f.child.wait())
        .await
        .is_err()
    {
        tracing::warn!("softflowd did not exit at the end of its input: killed");
        let _ = f.child.kill().await;
    }
    let _ = std::fs::remove_dir_all(&f.dir);
}

impl Exporter for Softflowd {
    fn export<'a>(
        &'a self,
        bridge: &'a str,
        port: u16,
        timeout: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(self.start(bridge, port, timeout))
    }

    fn unexport<'a>(&'a self, bridge: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let r = self.lock().remove(bridge);
            if let Some(r) = r {
                halt(r).await;
            }
        })
    }

    fn retime<'a>(
        &'a self,
        bridge: &'a str,
        port: u16,
        timeout: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        // softflowd cannot change its timeouts while it runs: start a new one (the old
        // one exports what it holds as it stops).
        Box::pin(self.start(bridge, port, timeout))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softflowd_reads_the_pipe_and_exports_v5_to_the_local_collector() {
        let a = argv(Path::new("/r/frames.pcap"), 4000, 10, Path::new("/r"));
        assert_eq!(
            a.join(" "),
            "-v 5 -r /r/frames.pcap -n 127.0.0.1:4000 -p /r/softflowd.pid \
             -c none -t maxlife=10"
        );
        assert_ne!(run_dir("mega_bridge", 1), run_dir("mega_bridge", 2));
    }
}
