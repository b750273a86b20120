//! ContainerRuntime: the real `VmRuntime` for `container` VMs — launch (frozen, BUILDING),
//! resume/pause through the freezer, kill (thaw, SIGKILL the cgroup, wait until empty),
//! destroy (overlay, cgroups), and recover after a server restart.
//!
//! ```text
//!   launch ──► frozen (BUILDING) ──resume──► thawed (RUNNING) ◄──resume── frozen (PAUSED)
//!                  │                           │   └──pause──────────────────►┘
//!                  └──────kill / init exits────┴──► released: cgroup, overlay, console
//! ```
//!
//! Containers are children of the server but in their own session, so they survive a
//! server that is killed: their record (`<instance>/container.json`) lets the next server
//! adopt them, and their init keeps a duplicate of the pty master (fd 100) that the next
//! server takes back with `pidfd_getfd`, so the console survives too (without the
//! scrollback from before the restart).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferromega_domain::backends::{BoxFuture, Launched, VmRuntime};
use ferromega_domain::vm::registry::Vm;
use tokio::sync::watch;

use crate::cgroup::{detect, group_name, Cgroup, Hierarchy};
use crate::console::Console;
use crate::launch;
use crate::sys::RealSys;
use crate::watch::kill_all;

/// How a server's containers are set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The server's base directory (it names the server's cgroup group).
    pub base: PathBuf,
    /// A cgroup mount root to use (minimega's `-cgroup`) instead of the server's own
    /// cgroups (`/proc/self/cgroup`).
    pub cgroup_root: Option<PathBuf>,
    /// The program run as the shim with [`crate::shim::SHIM_ARG`]: the `ferromega`
    /// binary, `/proc/self/exe` in the server.
    pub shim: PathBuf,
}

/// A running container the runtime drives.
pub(crate) struct Instance {
    /// PID of init.
    pub pid: u32,
    /// Its cgroup.
    pub cgroup: Cgroup,
    /// The overlay mount point, if any.
    pub overlay: Option<PathBuf>,
    /// The instance directory.
    pub dir: PathBuf,
    /// Memory limit, MB.
    pub memory_mb: u64,
    /// The console relay (None when it could not be recovered).
    pub console: Mutex<Option<Console>>,
    /// Set by `kill`: the exit that follows is clean.
    pub killing: AtomicBool,
    /// True once the exit watcher has released everything.
    pub done: watch::Receiver<bool>,
}

/// What the runtime's tasks share.
pub(crate) struct Shared {
    /// Where cgroups go (or why they cannot).
    pub hierarchy: Result<Hierarchy, String>,
    /// System calls.
    pub sys: RealSys,
    /// The shim program.
    pub shim: PathBuf,
    /// Running containers by VM id.
    pub instances: Mutex<HashMap<u64, Arc<Instance>>>,
}

impl Shared {
    pub(crate) fn hierarchy(&self) -> Result<&Hierarchy, String> {
        self.hierarchy.as_ref().map_err(Clone::clone)
    }

    pub(crate) fn instances(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Instance>>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn instance(&self, vm: &Vm) -> Result<Arc<Instance>, String> {
        self.instances()
            .get(&vm.id)
            .cloned()
            .ok_or_else(|| format!("vm not running: {}", vm.id))
    }
}

/// The container runtime of a server.
pub struct ContainerRuntime {
    shared: Arc<Shared>,
}

fn cgroup_hierarchy(opts: &Options) -> Result<Hierarchy, String> {
    let parents = match &opts.cgroup_root {
        Some(root) => detect::from_root(root),
        None => {
            let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
            let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
            detect::detect(&own, &mounts)
        }
    }
    .map_err(|e| format!("cgroups are not initialized, cannot continue: {e}"))?;
    let base = std::fs::canonicalize(&opts.base).unwrap_or_else(|_| opts.base.clone());
    Ok(Hierarchy::new(parents, group_name(&base)))
}

impl ContainerRuntime {
    /// A runtime for a server on `opts.base`. Problems with cgroups are reported by each
    /// launch (minimega's `cgroups are not initialized, cannot continue`), not here.
    pub fn new(opts: Options) -> Self {
        let hierarchy = cgroup_hierarchy(&opts);
        if let Err(e) = &hierarchy {
            tracing::warn!("containers: {e}");
        }
        ContainerRuntime {
            shared: Arc::new(Shared {
                hierarchy,
                sys: RealSys,
                shim: opts.shim,
                instances: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// The server's cgroup group directories (for leak checks).
    pub fn group_dirs(&self) -> Vec<PathBuf> {
        self.shared
            .hierarchy()
            .map(Hierarchy::group_dirs)
            .unwrap_or_default()
    }
}

impl VmRuntime for ContainerRuntime {
    fn launch<'a>(&'a self, vm: &'a Vm, dir: &'a Path) -> BoxFuture<'a, Result<Launched, String>> {
        Box::pin(launch::launch(&self.shared, vm, dir))
    }

    fn recover<'a>(&'a self, vm: &'a Vm, dir: &'a Path) -> BoxFuture<'a, Result<Launched, String>> {
        Box::pin(launch::recover(&self.shared, vm, dir))
    }

    fn resume<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let inst = self.shared.instance(vm)?;
            inst.cgroup.freeze(false).await.map_err(|e| e.to_string())
        })
    }

    fn pause<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let inst = self.shared.instance(vm)?;
            inst.cgroup.freeze(true).await.map_err(|e| e.to_string())
        })
    }

    fn kill<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let Ok(inst) = self.shared.instance(vm) else {
                return Ok(());
            };
            inst.killing.store(true, Ordering::SeqCst);
            kill_all(&inst.cgroup, Some(inst.pid)).await?;
            let mut done = inst.done.clone();
            let ended = async move { done.wait_for(|d| *d).await.map(drop) };
            match tokio::time::timeout(Duration::from_secs(10), ended).await {
                Ok(_) => Ok(()),
                Err(_) => Err(format!("container {} did not end after SIGKILL", inst.pid)),
            }
        })
    }

    fn destroy<'a>(&'a self, vm: &'a Vm, dir: &'a Path) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if self.shared.instance(vm).is_ok() {
                self.kill(vm).await?;
            }
            launch::release_leftovers(&self.shared, dir).await
        })
    }

    fn processes(&self, vm: &Vm) -> Vec<u32> {
        match self.shared.instance(vm) {
            Ok(inst) => inst.cgroup.pids().into_iter().take(100).collect(),
            Err(_) => Vec::new(),
        }
    }
}
