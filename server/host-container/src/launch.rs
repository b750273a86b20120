//! Launching a container (minimega §5.2: cgroups, overlay, fifos, pty, the shim cloned
//! into new namespaces, the handshake, frozen before init runs), adopting one a previous
//! server left running, and releasing what a dead one left behind. On any launch error
//! everything made so far is undone: no process, cgroup or mount remains.

use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferromega_domain::backends::Launched;
use ferromega_domain::vm::registry::Vm;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{oneshot, watch};

use crate::cgroup::{Cgroup, Freezer, Hierarchy, Limits};
use crate::console::{Console, PtyStream};
use crate::overlay::{self, Overlay};
use crate::runtime::{Instance, Shared};
use crate::shim::SHIM_ARG;
use crate::spec::{self, SPEC_FILE};
use crate::state::Record;
use crate::sys::{self, Ended, ShimFds, CONSOLE_KEEP_FD};
use crate::watch::{kill_all, release_cgroup, spawn_watcher, wait_reaped, Watch};

/// How long the shim may take to set the container up (many launch at once).
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// What a launch has made so far, to undo on failure.
#[derive(Default)]
struct Partial {
    cgroup: Option<Cgroup>,
    overlay: Option<PathBuf>,
    pid: Option<u32>,
}

impl Partial {
    async fn undo(self, shared: &Shared, h: &Hierarchy) {
        if let Some(cg) = &self.cgroup {
            if let Err(e) = kill_all(cg, self.pid).await {
                tracing::warn!("undoing a container launch: {e}");
            }
        } else if let Some(pid) = self.pid {
            let _ = sys::kill(pid);
        }
        if let Some(pid) = self.pid {
            wait_reaped(pid).await;
        }
        if let Some(cg) = &self.cgroup {
            release_cgroup(h, cg).await;
        }
        if let Some(target) = &self.overlay {
            if let Err(e) = overlay::unmount(&shared.sys, target, &overlay::host_mountinfo()) {
                tracing::warn!("undoing a container launch: {e}");
            }
        }
    }
}

/// Launches `vm` with its files in `dir`, frozen before its init runs.
pub(crate) async fn launch(shared: &Arc<Shared>, vm: &Vm, dir: &Path) -> Result<Launched, String> {
    let h = shared.hierarchy()?;
    spec::validate(vm).map_err(|e| e.to_string())?;
    release_leftovers(shared, dir).await?;
    let mut partial = Partial::default();
    match start(shared, h, vm, dir, &mut partial).await {
        Ok(launched) => Ok(launched),
        Err(e) => {
            partial.undo(shared, h).await;
            Err(e)
        }
    }
}

fn text<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Makes the container's files: fifos and the UUID file.
fn instance_files(vm: &Vm, dir: &Path) -> Result<(), String> {
    for i in 0..vm.config.fifos {
        let p = spec::fifo_path(dir, i);
        let _ = std::fs::remove_file(&p);
        sys::mkfifo(&p).map_err(|e| format!("mkfifo {}: {e}", p.display()))?;
    }
    let uuid = dir.join("uuid");
    let _ = std::fs::remove_file(&uuid);
    std::fs::write(&uuid, format!("{}\n", vm.uuid)).map_err(|e| format!("{}: {e}", uuid.display()))
}

async fn start(
    shared: &Arc<Shared>,
    h: &Hierarchy,
    vm: &Vm,
    dir: &Path,
    partial: &mut Partial,
) -> Result<Launched, String> {
    let c = &vm.config;
    let limits = Limits {
        memory_mb: c.memory,
        vcpus: c.vcpus,
    };
    let cg = h.create(vm.id, limits).map_err(text)?;
    partial.cgroup = Some(cg.clone());
    let root = if c.snapshot {
        let o = Overlay::for_instance(Path::new(&c.filesystem), dir);
        partial.overlay = Some(o.target.clone());
        o.mount(&shared.sys, &overlay::host_mountinfo())
            .map_err(text)?;
        o.target
    } else {
        PathBuf::from(&c.filesystem)
    };
    instance_files(vm, dir)?;
    let pty = sys::open_pty().map_err(|e| format!("cannot open a pty: {e}"))?;
    let spec = spec::build(vm, dir, &root, &pty.slave_path);
    let spec_path = dir.join(SPEC_FILE);
    let json = serde_json::to_vec_pretty(&spec).map_err(text)?;
    std::fs::write(&spec_path, json).map_err(|e| format!("{}: {e}", spec_path.display()))?;

    let (ours, theirs) = std::os::unix::net::UnixStream::pair().map_err(text)?;
    let argv = [
        "ferromega".to_string(),
        SHIM_ARG.to_string(),
        dir.display().to_string(),
    ];
    let fds = ShimFds {
        stdio: pty.slave.as_fd(),
        sync: theirs.as_fd(),
        keep: pty.master.as_fd(),
    };
    let pid = sys::spawn_in_namespaces(&shared.shim, &argv, fds)
        .map_err(|e| format!("cannot clone the container: {e}"))?;
    partial.pid = Some(pid);
    drop(theirs);
    drop(pty.slave);
    let pidfd = sys::pidfd_open(pid).map_err(|e| format!("pidfd_open {pid}: {e}"))?;
    cg.add(pid).map_err(text)?;

    ours.set_nonblocking(true).map_err(text)?;
    let stream = tokio::net::UnixStream::from_std(ours).map_err(text)?;
    let (rd, mut wr) = stream.into_split();
    let mut rd = BufReader::new(rd);
    handshake(&mut rd, &mut wr, pid, &cg, c.memory).await?;
    cg.freeze(true).await.map_err(text)?;
    wr.write_all(b"go\n")
        .await
        .map_err(|e| format!("container handshake: {e}"))?;

    let console = PtyStream::new(pty.master)
        .and_then(|p| Console::serve(p, &dir.join("console")))
        .map_err(|e| format!("console: {e}"))?;
    let record = Record {
        pid,
        start_time: sys::start_time(pid).unwrap_or(0),
        cgroup: cg.clone(),
        overlay: partial.overlay.clone(),
        memory_mb: c.memory,
    };
    record
        .save(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    Ok(register(
        shared,
        vm,
        dir,
        &record,
        Some(console),
        Watch {
            pidfd,
            ours: true,
            handshake: Some(rd),
        },
        false,
    ))
}

/// Sends `cgroups`, waits for `ready` (or the shim's error, or its death).
async fn handshake(
    rd: &mut BufReader<OwnedReadHalf>,
    wr: &mut OwnedWriteHalf,
    pid: u32,
    cg: &Cgroup,
    memory_mb: u64,
) -> Result<(), String> {
    let mut line = String::new();
    let exchange = async {
        wr.write_all(b"cgroups\n").await?;
        rd.read_line(&mut line).await
    };
    match tokio::time::timeout(READY_TIMEOUT, exchange).await {
        Err(_) => Err(format!(
            "container did not get ready within {} s",
            READY_TIMEOUT.as_secs()
        )),
        Ok(Ok(_)) if line.trim() == "ready" => Ok(()),
        Ok(Ok(_)) if line.starts_with("error: ") => {
            Err(line.trim_end().trim_start_matches("error: ").to_string())
        }
        Ok(_) => Err(died(pid, cg, memory_mb).await),
    }
}

/// Why the shim died before it was ready.
async fn died(pid: u32, cg: &Cgroup, memory_mb: u64) -> String {
    let ended = wait_reaped(pid).await;
    if cg.oom_kills() > 0 {
        return format!(
            "container ran out of memory while starting: memory {memory_mb} MB is too small"
        );
    }
    match ended {
        Ended::Exited(n) => format!("container setup exited with status {n}"),
        Ended::Signaled(s) => format!("container setup killed by signal {s}"),
        Ended::Running | Ended::Unknown => "container setup ended".to_string(),
    }
}

/// Registers a running container and starts watching it.
fn register(
    shared: &Arc<Shared>,
    vm: &Vm,
    dir: &Path,
    record: &Record,
    console: Option<Console>,
    watch: Watch,
    running: bool,
) -> Launched {
    let (done_tx, done_rx) = watch::channel(false);
    let (status_tx, status_rx) = oneshot::channel();
    let inst = Arc::new(Instance {
        pid: record.pid,
        cgroup: record.cgroup.clone(),
        overlay: record.overlay.clone(),
        dir: dir.to_path_buf(),
        memory_mb: record.memory_mb,
        console: Mutex::new(console),
        killing: AtomicBool::new(false),
        done: done_rx,
    });
    shared.instances().insert(vm.id, inst.clone());
    spawn_watcher(shared.clone(), vm.id, inst, watch, status_tx, done_tx);
    Launched {
        pid: record.pid,
        exited: status_rx,
        running,
    }
}

/// Takes over the container a previous server left running in `dir`.
pub(crate) async fn recover(shared: &Arc<Shared>, vm: &Vm, dir: &Path) -> Result<Launched, String> {
    let record = Record::load(dir)?;
    if !record.alive() {
        return Err(format!("container init {} is gone", record.pid));
    }
    let pidfd = sys::pidfd_open(record.pid).map_err(|e| format!("pidfd_open: {e}"))?;
    let console = sys::pidfd_getfd(pidfd.as_fd(), CONSOLE_KEEP_FD)
        .and_then(PtyStream::new)
        .and_then(|p| Console::serve(p, &dir.join("console")));
    let console = match console {
        Ok(c) => Some(c),
        Err(e) => {
            tracing::warn!("{}: console not recovered: {e}", vm.name);
            None
        }
    };
    let running = record.cgroup.freezer().map_err(text)? == Freezer::Thawed;
    let watch = Watch {
        pidfd,
        ours: false,
        handshake: None,
    };
    Ok(register(shared, vm, dir, &record, console, watch, running))
}

/// Releases what a previous run of the instance in `dir` left: its process (if it is
/// still the recorded one), cgroup and overlay.
pub(crate) async fn release_leftovers(shared: &Shared, dir: &Path) -> Result<(), String> {
    if let Ok(record) = Record::load(dir) {
        let live = record.alive().then_some(record.pid);
        kill_all(&record.cgroup, live).await?;
        if let Ok(h) = shared.hierarchy() {
            release_cgroup(h, &record.cgroup).await;
        } else {
            let _ = record.cgroup.remove();
        }
        Record::remove(dir);
    }
    let _ = std::fs::remove_file(dir.join("console"));
    overlay::unmount(&shared.sys, &dir.join("fs"), &overlay::host_mountinfo()).map_err(text)
}
