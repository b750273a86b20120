//! Watching a container end: its init's pidfd becomes readable, the server reaps it
//! (when it is the parent), releases the cgroup, overlay and console, and tells the
//! domain how it ended — clean (QUIT) or with the reason (ERROR).

use std::os::fd::OwnedFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferromega_domain::backends::ExitStatus;
use tokio::io::{AsyncReadExt, BufReader};
use tokio::net::unix::OwnedReadHalf;
use tokio::sync::{oneshot, watch};

use crate::cgroup::{Cgroup, Hierarchy};
use crate::overlay;
use crate::runtime::{Instance, Shared};
use crate::state::Record;
use crate::sys::{self, Ended};

/// What the exit watcher of one container holds.
pub(crate) struct Watch {
    /// init's pidfd.
    pub pidfd: OwnedFd,
    /// Whether the server is init's parent (can reap it and read its status).
    pub ours: bool,
    /// The handshake socket, on which the shim reports a failed exec of init.
    pub handshake: Option<BufReader<OwnedReadHalf>>,
}

/// SIGKILLs `init` and everything in `cg` (thawing it, or frozen tasks never die), and
/// waits until the cgroup is empty.
pub(crate) async fn kill_all(cg: &Cgroup, init: Option<u32>) -> Result<(), String> {
    if let Some(pid) = init {
        let _ = sys::kill(pid);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let _ = cg.set_frozen(false);
        let pids = cg.pids();
        if pids.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!("container processes {pids:?} survived SIGKILL"));
        }
        for pid in pids {
            let _ = sys::kill(pid);
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits (up to 5 s) for our child `pid` to end and reaps it.
pub(crate) async fn wait_reaped(pid: u32) -> Ended {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match sys::try_reap(pid) {
            Ended::Running if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            ended => return ended,
        }
    }
}

/// Removes a container's cgroup, retrying while the kernel still counts exiting tasks.
pub(crate) async fn release_cgroup(h: &Hierarchy, cg: &Cgroup) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match h.release(cg) {
            Ok(()) => return,
            Err(e) if Instant::now() > deadline => {
                tracing::warn!("cannot remove container cgroup: {e}");
                return;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

/// Waits until `pid` (behind `pidfd`) has ended.
async fn wait_exit(pidfd: OwnedFd, pid: u32) {
    match sys::register::<OwnedFd>(pidfd) {
        Ok(fd) => {
            let _ = fd.readable().await;
        }
        Err(e) => {
            tracing::warn!("pidfd of {pid}: {e}; polling /proc");
            while sys::start_time(pid).is_some() {
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        }
    }
}

/// The shim's last words on the handshake socket (`error: …` when exec of init failed).
async fn last_words(rd: Option<BufReader<OwnedReadHalf>>) -> Option<String> {
    let mut rd = rd?;
    let mut rest = String::new();
    let read = tokio::time::timeout(Duration::from_secs(1), rd.read_to_string(&mut rest));
    let _ = read.await;
    rest.lines()
        .find_map(|l| l.strip_prefix("error: "))
        .map(str::to_string)
}

/// How the domain should see the end of a container.
fn status(inst: &Instance, ended: Ended, words: Option<String>, oom: bool) -> ExitStatus {
    if inst.killing.load(Ordering::SeqCst) {
        return Ok(());
    }
    if let Some(w) = words {
        return Err(w);
    }
    let oom_text = || {
        format!(
            "container init killed: out of memory (memory limit {} MB)",
            inst.memory_mb
        )
    };
    match ended {
        Ended::Exited(0) => Ok(()),
        Ended::Exited(n) => Err(format!("container init exited with status {n}")),
        Ended::Signaled(s) if s == libc::SIGKILL && oom => Err(oom_text()),
        Ended::Signaled(s) if s == libc::SIGKILL => Ok(()),
        Ended::Signaled(s) => Err(format!("container init killed by signal {s}")),
        Ended::Unknown | Ended::Running if oom => Err(oom_text()),
        Ended::Unknown | Ended::Running => Ok(()),
    }
}

/// Releases everything of an ended container but its instance directory.
async fn release(shared: &Shared, inst: &Instance) {
    if let Err(e) = kill_all(&inst.cgroup, None).await {
        tracing::warn!("{e}");
    }
    if let Some(mut c) = inst
        .console
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    {
        c.close();
    }
    if let Ok(h) = shared.hierarchy() {
        release_cgroup(h, &inst.cgroup).await;
    }
    if let Some(target) = &inst.overlay {
        if let Err(e) = overlay::unmount(&shared.sys, target, &overlay::host_mountinfo()) {
            tracing::warn!("{e}");
        }
    }
    Record::remove(&inst.dir);
}

/// Watches container `id` until it ends, then releases it and reports how it ended.
pub(crate) fn spawn_watcher(
    shared: Arc<Shared>,
    id: u64,
    inst: Arc<Instance>,
    w: Watch,
    status_tx: oneshot::Sender<ExitStatus>,
    done_tx: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        wait_exit(w.pidfd, inst.pid).await;
        let ended = if w.ours {
            wait_reaped(inst.pid).await
        } else {
            Ended::Unknown
        };
        let words = last_words(w.handshake).await;
        let oom = inst.cgroup.oom_kills() > 0;
        release(&shared, &inst).await;
        {
            let mut map = shared.instances();
            if map.get(&id).is_some_and(|i| Arc::ptr_eq(i, &inst)) {
                map.remove(&id);
            }
        }
        let _ = done_tx.send(true);
        let _ = status_tx.send(status(&inst, ended, words, oom));
    });
}
