//! The NetFlow exporter of Linux bridges: one `softflowd` per kernel bridge of a logical
//! bridge (its untagged bridge and one per VLAN), listening promiscuously on it (so it
//! sees the frames the bridge forwards). VLAN bridges come and go, so a watcher looks
//! every second and starts or stops `softflowd`s to match.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::time::Duration;

use ferromega_domain::backends::BoxFuture;
use tokio::process::Child;
use tokio::sync::oneshot;

use super::Exporter;
use crate::bridges::parse_alias;

/// The argument vector of the `softflowd` exporting device `dev` to
/// `127.0.0.1:<port>`, with its files in `dir`.
pub fn argv(dev: &str, port: u16, timeout: u32, dir: &Path) -> Vec<String> {
    let file = |ext: &str| dir.join(format!("{dev}.{ext}")).display().to_string();
    vec![
        "-d".into(),
        "-v".into(),
        "5".into(),
        "-i".into(),
        dev.into(),
        "-n".into(),
        format!("127.0.0.1:{port}"),
        "-p".into(),
        file("pid"),
        "-c".into(),
        file("ctl"),
        "-t".into(),
        format!("maxlife={timeout}"),
        "-t".into(),
        "expint=1".into(),
    ]
}

/// The kernel bridges carrying logical bridge `logical`, read from `/sys/class/net`
/// (`net` is a parameter so tests can use a folder of their own).
pub fn kernel_bridges(net: &Path, logical: &str) -> BTreeSet<String> {
    let Ok(dir) = std::fs::read_dir(net) else {
        return BTreeSet::new();
    };
    dir.filter_map(Result::ok)
        .filter(|e| e.path().join("bridge").exists())
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let alias = std::fs::read_to_string(e.path().join("ifalias")).unwrap_or_default();
            let ours = parse_alias(alias.trim()).is_some_and(|(b, _)| b == logical);
            (ours || name == logical).then_some(name)
        })
        .collect()
}

struct Watcher {
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

/// The `softflowd`s of every exported bridge.
#[derive(Default)]
pub struct Softflowd {
    watchers: Mutex<HashMap<String, Watcher>>,
}

fn spawn(dev: &str, port: u16, timeout: u32, dir: &Path) -> Result<Child, String> {
    let log = std::fs::File::create(dir.join(format!("{dev}.log")))
        .map_err(|e| format!("softflowd log: {e}"))?;
    tokio::process::Command::new("softflowd")
        .args(argv(dev, port, timeout, dir))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => {
                "netflow on Linux bridges needs softflowd (apt-get install softflowd)".to_string()
            }
            _ => format!("softflowd: {e}"),
        })
}

async fn terminate(mut c: Child) {
    if let Some(pid) = c.id() {
        // SIGTERM: softflowd expires and exports its flows before it exits.
        let _ = crate::sys::signal(pid, libc::SIGTERM);
    }
    if tokio::time::timeout(Duration::from_secs(5), c.wait())
        .await
        .is_err()
    {
        let _ = c.kill().await;
    }
}

/// Starts the first `softflowd`s and checks they survive their start-up.
async fn first(
    logical: &str,
    port: u16,
    timeout: u32,
    dir: &Path,
) -> Result<HashMap<String, Child>, String> {
    let mut kids = HashMap::new();
    for dev in kernel_bridges(Path::new("/sys/class/net"), logical) {
        match spawn(&dev, port, timeout, dir) {
            Ok(c) => drop(kids.insert(dev, c)),
            Err(e) => {
                for (_, c) in kids {
                    terminate(c).await;
                }
                return Err(e);
            }
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dead: Vec<String> = kids
        .iter_mut()
        .filter_map(|(d, c)| c.try_wait().ok().flatten().map(|_| d))
        .cloned()
        .collect();
    if let Some(dev) = dead.first() {
        let text = std::fs::read_to_string(dir.join(format!("{dev}.log"))).unwrap_or_default();
        for (_, c) in kids {
            terminate(c).await;
        }
        return Err(format!(
            "softflowd on {dev} exited: {}",
            text.trim().replace('\n', "; ")
        ));
    }
    Ok(kids)
}

impl Softflowd {
    async fn start(&self, logical: &str, port: u16, timeout: u32) -> Result<(), String> {
        let dir = run_dir(logical);
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut kids = first(logical, port, timeout, &dir).await?;
        let (stop, mut stopped) = oneshot::channel::<()>();
        let name = logical.to_string();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
                let now = kernel_bridges(Path::new("/sys/class/net"), &name);
                let gone: Vec<String> = kids.keys().filter(|d| !now.contains(*d)).cloned().collect();
                for d in gone {
                    if let Some(c) = kids.remove(&d) {
                        terminate(c).await;
                    }
                }
                let new: Vec<String> = now.into_iter().filter(|d| !kids.contains_key(d)).collect();
                for d in &new {
                    match spawn(d, port, timeout, &dir) {
                        Ok(c) => drop(kids.insert(d.clone(), c)),
                        Err(e) => tracing::warn!("netflow of {name} on {d}: {e}"),
                    }
                }
            }
            for (_, c) in kids.drain() {
                terminate(c).await;
            }
            let _ = std::fs::remove_dir_all(&dir);
        });
        let old = self
            .watchers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(logical.to_string(), Watcher { stop, task });
        if let Some(w) = old {
            stop_watcher(w).await;
        }
        Ok(())
    }
}

async fn stop_watcher(w: Watcher) {
    let _ = w.stop.send(());
    let _ = w.task.await;
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
            let w = self
                .watchers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(bridge);
            if let Some(w) = w {
                stop_watcher(w).await;
            }
        })
    }

    fn retime<'a>(
        &'a self,
        bridge: &'a str,
        port: u16,
        timeout: u32,
    ) -> BoxFuture<'a, Result<(), String>> {
        // softflowd cannot change its timeouts while it runs: restart it (it exports
        // what it holds as it stops).
        Box::pin(self.start(bridge, port, timeout))
    }
}

/// The folder `softflowd` keeps its files in for `logical` (for tests' cleanup checks).
pub fn run_dir(logical: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "ferromega-netflow-{}-{}",
        std::process::id(),
        crate::names::fnv1a(logical)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn softflowd_exports_v5_to_the_local_collector_in_the_foreground() {
        let a = argv("mega_bridge", 4000, 10, Path::new("/r"));
        assert_eq!(
            a.join(" "),
            "-d -v 5 -i mega_bridge -n 127.0.0.1:4000 -p /r/mega_bridge.pid \
             -c /r/mega_bridge.ctl -t maxlife=10 -t expint=1"
        );
    }

    #[test]
    fn kernel_bridges_are_found_by_name_and_alias() {
        let d = tempfile::tempdir().expect("tmp");
        let mk = |name: &str, bridge: bool, alias: &str| {
            let p = d.path().join(name);
            std::fs::create_dir_all(&p).expect("dir");
            if bridge {
                std::fs::create_dir_all(p.join("bridge")).expect("bridge");
            }
            std::fs::write(p.join("ifalias"), alias).expect("alias");
        };
        mk("mega_bridge", true, "ferromega mega_bridge vlan 0\n");
        mk("mb01234567.5", true, "ferromega mega_bridge vlan 5\n");
        mk("mb89abcdef.5", true, "ferromega other vlan 5\n");
        mk("mega_tap0", false, "ferromega mega_bridge vlan 5\n");
        let got: Vec<String> = kernel_bridges(d.path(), "mega_bridge").into_iter().collect();
        assert_eq!(got, vec!["mb01234567.5", "mega_bridge"]);
    }
}
