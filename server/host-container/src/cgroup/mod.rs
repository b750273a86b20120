//! cgroups of containers: one per container below the server's group
//! (`<parent>/ferromega-<hash of base>/<id>`), with the memory limit, the CPU quota, the
//! devices whitelist (v1) and the freezer. Works on cgroup v1 (one directory per
//! controller) and v2 (one directory); every path derives from the parents given, so the
//! logic is tested against a temporary directory.
//!
//! Freezer states, as `vm start`/`vm stop` drive them:
//!
//! ```text
//!   create ──► THAWED ──freeze──► FREEZING ──► FROZEN
//!                 ▲                               │
//!                 └────────────thaw───────────────┘
//! ```

pub mod detect;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use detect::Parents;

/// Controllers a v1 host must have mounted.
pub const CONTROLLERS: &[&str] = &["memory", "cpu", "freezer"];
/// v1 controllers used when mounted.
pub const OPTIONAL_CONTROLLERS: &[&str] = &["devices"];

/// The CFS period the CPU quota is expressed in (minimega: one second).
const CPU_PERIOD_US: u64 = 1_000_000;

/// Devices a container may use (minimega's whitelist), in the v1 `devices.allow` syntax.
const DEVICES_ALLOW: &[&str] = &[
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 5:0 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c *:* m",
    "b *:* m",
    "c 5:1 rwm",
    "c 4:0 rwm",
    "c 4:1 rwm",
    "c 136:* rwm",
    "c 5:2 rwm",
    "c 10:200 rwm",
];

/// Errors of cgroups.
#[derive(Debug, Error)]
pub enum CgroupError {
    /// A v1 controller is not mounted.
    #[error("cgroup v1 controller {0} is not mounted")]
    Missing(String),
    /// Neither v1 controllers nor a unified hierarchy.
    #[error("no cgroup hierarchy is mounted")]
    NoHierarchy,
    /// A file or directory of the hierarchy.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// What failed.
        source: io::Error,
    },
    /// A state that was not reached in time.
    #[error("cgroup {0} did not reach {1}")]
    Timeout(PathBuf, &'static str),
    /// A memory limit of zero.
    #[error("memory must be at least 1 MB for a container")]
    NoMemory,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A cgroup version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Version {
    /// One hierarchy per controller.
    V1,
    /// The unified hierarchy.
    V2,
}

/// The limits of one container.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory in MB.
    pub memory_mb: u64,
    /// CPUs worth of time per period; 0 for no quota.
    pub vcpus: u64,
}

/// The files to write into a new cgroup: (controller, file, value), in order.
pub fn limit_files(version: Version, limits: Limits) -> Vec<(&'static str, &'static str, String)> {
    let bytes = limits.memory_mb.saturating_mul(1024 * 1024).to_string();
    let quota = limits.vcpus.saturating_mul(CPU_PERIOD_US);
    match version {
        Version::V1 => {
            let mut files = vec![
                ("memory", "memory.limit_in_bytes", bytes),
                ("cpu", "cpu.cfs_period_us", CPU_PERIOD_US.to_string()),
                (
                    "cpu",
                    "cpu.cfs_quota_us",
                    if quota == 0 {
                        "-1".to_string()
                    } else {
                        quota.to_string()
                    },
                ),
                ("devices", "devices.deny", "a".to_string()),
            ];
            files.extend(
                DEVICES_ALLOW
                    .iter()
                    .map(|d| ("devices", "devices.allow", d.to_string())),
            );
            files
        }
        Version::V2 => vec![
            ("memory", "memory.max", bytes),
            (
                "cpu",
                "cpu.max",
                if quota == 0 {
                    format!("max {CPU_PERIOD_US}")
                } else {
                    format!("{quota} {CPU_PERIOD_US}")
                },
            ),
        ],
    }
}

/// The freezer state of a cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freezer {
    /// Running.
    Thawed,
    /// On the way to frozen.
    Freezing,
    /// Every task frozen.
    Frozen,
}

/// One container's cgroup: its directory in each controller (v1) or its one directory
/// (`unified`, v2). Stored in the container's record so a restarted server finds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cgroup {
    /// Version of the hierarchy.
    pub version: Version,
    /// Controller (or `unified`) → directory.
    pub dirs: BTreeMap<String, PathBuf>,
}

fn write(path: &Path, value: &str) -> Result<(), CgroupError> {
    std::fs::write(path, value).map_err(io_err(path))
}

fn read(path: &Path) -> Result<String, CgroupError> {
    std::fs::read_to_string(path).map_err(io_err(path))
}

/// The `key N` value of a flat-keyed file (`memory.events`, `memory.oom_control`).
fn keyed(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok()).flatten()
    })
}

impl Cgroup {
    /// The directory holding `controller`'s files.
    fn dir(&self, controller: &str) -> Option<&Path> {
        match self.version {
            Version::V1 => self.dirs.get(controller),
            Version::V2 => self.dirs.get("unified"),
        }
        .map(PathBuf::as_path)
    }

    /// The directory whose `cgroup.procs` lists the container's processes.
    fn procs_dir(&self) -> Option<&Path> {
        self.dir("freezer")
    }

    /// Moves `pid` into every directory of the cgroup.
    pub fn add(&self, pid: u32) -> Result<(), CgroupError> {
        for dir in self.dirs.values() {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    /// The processes in the cgroup.
    pub fn pids(&self) -> Vec<u32> {
        let Some(dir) = self.procs_dir() else {
            return Vec::new();
        };
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    }

    /// Asks the freezer to freeze (`FROZEN`) or thaw every task.
    pub fn set_frozen(&self, frozen: bool) -> Result<(), CgroupError> {
        let dir = self.dir("freezer").ok_or(CgroupError::NoHierarchy)?;
        match self.version {
            Version::V1 => write(
                &dir.join("freezer.state"),
                if frozen { "FROZEN" } else { "THAWED" },
            ),
            Version::V2 => write(&dir.join("cgroup.freeze"), if frozen { "1" } else { "0" }),
        }
    }

    /// The freezer's current state.
    pub fn freezer(&self) -> Result<Freezer, CgroupError> {
        let dir = self.dir("freezer").ok_or(CgroupError::NoHierarchy)?;
        match self.version {
            Version::V1 => Ok(match read(&dir.join("freezer.state"))?.trim() {
                "FROZEN" => Freezer::Frozen,
                "FREEZING" => Freezer::Freezing,
                _ => Freezer::Thawed,
            }),
            Version::V2 => {
                let events = read(&dir.join("cgroup.events"))?;
                let want = read(&dir.join("cgroup.freeze"))?;
                Ok(match (keyed(&events, "frozen"), want.trim()) {
                    (Some(1), _) => Freezer::Frozen,
                    (_, "1") => Freezer::Freezing,
                    _ => Freezer::Thawed,
                })
            }
        }
    }

    /// Freezes or thaws and waits until the freezer says so.
    pub async fn freeze(&self, frozen: bool) -> Result<(), CgroupError> {
        self.set_frozen(frozen)?;
        let (want, name) = if frozen {
            (Freezer::Frozen, "FROZEN")
        } else {
            (Freezer::Thawed, "THAWED")
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if self.freezer()? == want {
                return Ok(());
            }
            if Instant::now() > deadline {
                let dir = self.dir("freezer").unwrap_or(Path::new("?"));
                return Err(CgroupError::Timeout(dir.to_path_buf(), name));
            }
            // v1 re-tries stragglers when the state is written again.
            if frozen && self.version == Version::V1 {
                let _ = self.set_frozen(true);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// How many processes the out-of-memory killer has killed in the cgroup.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = self.dir("memory") else {
            return 0;
        };
        let file = match self.version {
            Version::V1 => "memory.oom_control",
            Version::V2 => "memory.events",
        };
        std::fs::read_to_string(dir.join(file))
            .ok()
            .and_then(|t| keyed(&t, "oom_kill"))
            .unwrap_or(0)
    }

    /// The memory limit in bytes, as the kernel holds it.
    pub fn memory_limit(&self) -> Option<u64> {
        let dir = self.dir("memory")?;
        let file = match self.version {
            Version::V1 => "memory.limit_in_bytes",
            Version::V2 => "memory.max",
        };
        std::fs::read_to_string(dir.join(file))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Removes the cgroup's directories (they must be empty of tasks); ones already gone
    /// are fine.
    pub fn remove(&self) -> Result<(), CgroupError> {
        // v1 keeps a removed memory cgroup alive (offline) while page cache is still
        // charged to it; reclaiming first lets the kernel free it at once, so hundreds of
        // launches do not pile up offline cgroups that slow every later one.
        if self.version == Version::V1 {
            let force = self
                .dirs
                .get("memory")
                .map(|d| d.join("memory.force_empty"));
            if let Some(f) = force.filter(|f| f.exists()) {
                let _ = std::fs::write(f, "0");
            }
        }
        for dir in self.dirs.values() {
            match std::fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(dir)(e)),
            }
        }
        Ok(())
    }

    /// Whether any directory of the cgroup still exists.
    pub fn exists(&self) -> bool {
        self.dirs.values().any(|d| d.exists())
    }
}

/// A server's place in the cgroup hierarchy: the parents and its group name.
#[derive(Debug)]
pub struct Hierarchy {
    parents: Parents,
    group: String,
    /// Serialises making and removing the shared group directories.
    lock: Mutex<()>,
}

/// The name of a server's group directory: `ferromega-` and a hash of its base
/// directory, so servers with different bases never share cgroups and a restarted
/// server finds its own.
pub fn group_name(base: &Path) -> String {
    let hash = base
        .as_os_str()
        .as_encoded_bytes()
        .iter()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("ferromega-{:08x}", hash as u32)
}

impl Hierarchy {
    /// A hierarchy making cgroups in `parents/<group>/<id>`.
    pub fn new(parents: Parents, group: String) -> Self {
        Hierarchy {
            parents,
            group,
            lock: Mutex::new(()),
        }
    }

    /// The parents containers' groups go below.
    pub fn parents(&self) -> &Parents {
        &self.parents
    }

    fn guard(&self) -> std::sync::MutexGuard<'_, ()> {
        self.lock.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Makes container `id`'s cgroup with `limits`. A stale directory of the same id (a
    /// crashed server's) is emptied and replaced. On error nothing is left behind.
    pub fn create(&self, id: u64, limits: Limits) -> Result<Cgroup, CgroupError> {
        if limits.memory_mb == 0 {
            return Err(CgroupError::NoMemory);
        }
        let _g = self.guard();
        let version = self.parents.version;
        let mut cg = Cgroup {
            version,
            dirs: BTreeMap::new(),
        };
        let made = (|| {
            for (ctrl, parent) in &self.parents.dirs {
                let group = parent.join(&self.group);
                std::fs::create_dir_all(&group).map_err(io_err(&group))?;
                if version == Version::V2 {
                    enable_controllers(parent)?;
                    enable_controllers(&group)?;
                }
                let dir = group.join(id.to_string());
                if dir.exists() {
                    clear_stale(version, &dir);
                }
                std::fs::create_dir(&dir).map_err(io_err(&dir))?;
                cg.dirs.insert(ctrl.clone(), dir);
            }
            for (ctrl, file, value) in limit_files(version, limits) {
                let Some(dir) = cg.dir(ctrl) else { continue };
                write(&dir.join(file), &value)?;
            }
            Ok(())
        })();
        match made {
            Ok(()) => Ok(cg),
            Err(e) => {
                let _ = cg.remove();
                self.remove_groups_locked();
                Err(e)
            }
        }
    }

    /// Removes a container's cgroup, and the server's group directories once empty.
    pub fn release(&self, cg: &Cgroup) -> Result<(), CgroupError> {
        let _g = self.guard();
        let r = cg.remove();
        self.remove_groups_locked();
        r
    }

    /// The server's group directories (tests and leak checks look for them).
    pub fn group_dirs(&self) -> Vec<PathBuf> {
        self.parents
            .dirs
            .values()
            .map(|p| p.join(&self.group))
            .collect()
    }

    fn remove_groups_locked(&self) {
        for g in self.group_dirs() {
            // Fails while other containers' cgroups are in it; that is fine.
            let _ = std::fs::remove_dir(g);
        }
    }
}

/// Enables the memory and cpu controllers for `dir`'s children (v2).
fn enable_controllers(dir: &Path) -> Result<(), CgroupError> {
    let path = dir.join("cgroup.subtree_control");
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    let missing: Vec<String> = ["memory", "cpu"]
        .iter()
        .filter(|c| !current.split_whitespace().any(|x| x == **c))
        .map(|c| format!("+{c}"))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    std::fs::write(&path, missing.join(" ")).map_err(|e| CgroupError::Io {
        path: path.clone(),
        source: io::Error::new(
            e.kind(),
            format!(
                "{e} (cgroup v2 needs a delegated cgroup whose processes sit in a leaf: \
                 pass --cgroup)"
            ),
        ),
    })
}

/// Kills what is left in a stale cgroup directory and removes it (best effort).
fn clear_stale(version: Version, dir: &Path) {
    let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    if version == Version::V1 {
        let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    } else {
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    }
    for pid in procs.lines().filter_map(|l| l.trim().parse().ok()) {
        let _ = crate::sys::kill(pid);
    }
    for _ in 0..50 {
        if std::fs::remove_dir(dir).is_ok() || !dir.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[cfg(test)]
mod tests;
