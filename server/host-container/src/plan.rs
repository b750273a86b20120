//! The mount plan: the steps that turn a container's root directory into its `/` — the
//! default filesystems (`/proc`, `/sys`, `/dev` with its nodes, `/dev/shm`, `/dev/pts`,
//! created when missing), the console, volumes, fifos and the masked `/proc` files — as
//! data built from a [`Spec`], then applied through [`Sys`] by the shim. minimega's
//! `containerShim` order (§5.3), with every mount private so nothing reaches the host.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::spec::{inside, Spec, SpecError};
use crate::sys::{Mount, MountFlag, Sys};

/// A failed step.
#[derive(Debug, Error)]
pub enum PlanError {
    /// The spec names a path outside the root.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A step failed.
    #[error("{what}: {source}")]
    Step {
        /// The step, in words.
        what: String,
        /// Why.
        source: io::Error,
    },
    /// A volume's host path is gone.
    #[error("volume host path {0} does not exist")]
    VolumeMissing(PathBuf),
}

/// One step of the plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Makes every mount of the new namespace private: nothing propagates to the host.
    PrivateMounts,
    /// `mkdir -p`.
    Mkdir(PathBuf),
    /// Creates an empty file (a bind target) unless something is there.
    Touch(PathBuf),
    /// A filesystem mount.
    Mount(Mount),
    /// A recursive bind mount, remounted read-only when asked.
    Bind {
        /// What to bind.
        source: PathBuf,
        /// Where.
        target: PathBuf,
        /// Remount read-only (and nosuid, nodev, noexec).
        readonly: bool,
    },
    /// A character device node (mode 0666) unless something is there.
    Mknod {
        /// The node.
        path: PathBuf,
        /// Major number.
        major: u64,
        /// Minor number.
        minor: u64,
    },
    /// A symlink `link` → `target` unless something is there.
    Symlink {
        /// Where the link points.
        target: PathBuf,
        /// The link.
        link: PathBuf,
    },
    /// A volume: the host path must exist; its target is made as a directory or a file
    /// to match, then bound.
    Volume {
        /// Host path.
        source: PathBuf,
        /// Target inside the root.
        target: PathBuf,
    },
    /// A step whose failure is only reported (a host feature that may be absent).
    Optional(Box<Step>),
}

fn mount(fstype: &str, target: PathBuf, flags: &[MountFlag], data: &str) -> Step {
    Step::Mount(Mount {
        source: fstype.to_string(),
        target,
        fstype: fstype.to_string(),
        flags: flags.to_vec(),
        data: data.to_string(),
    })
}

/// Device nodes every container gets: (name, major, minor).
const NODES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("tty", 5, 0),
    ("random", 1, 8),
    ("urandom", 1, 9),
];

/// The plan for `spec`, before preinit and pivot_root.
pub fn build(spec: &Spec) -> Result<Vec<Step>, PlanError> {
    use MountFlag::{NoDev, NoExec, NoSuid, ReadOnly, StrictAtime};
    let r = &spec.root;
    let dev = r.join("dev");
    let mut steps = vec![
        Step::PrivateMounts,
        Step::Bind {
            source: r.clone(),
            target: r.clone(),
            readonly: false,
        },
        Step::Mkdir(r.join("proc")),
        mount("proc", r.join("proc"), &[NoSuid, NoExec, NoDev], ""),
        Step::Mkdir(r.join("sys")),
        mount(
            "sysfs",
            r.join("sys"),
            &[ReadOnly, NoSuid, NoExec, NoDev],
            "",
        ),
        Step::Mkdir(dev.clone()),
        mount("tmpfs", dev.clone(), &[NoSuid, StrictAtime], "mode=755"),
        Step::Mkdir(dev.join("shm")),
        mount(
            "tmpfs",
            dev.join("shm"),
            &[NoSuid, NoDev, NoExec],
            "mode=1777,size=65536k",
        ),
        Step::Mkdir(dev.join("pts")),
        mount(
            "devpts",
            dev.join("pts"),
            &[NoSuid, NoExec],
            "newinstance,ptmxmode=0666,mode=0620,gid=5",
        ),
    ];
    steps.extend(NODES.iter().map(|(name, major, minor)| Step::Mknod {
        path: dev.join(name),
        major: *major,
        minor: *minor,
    }));
    steps.push(Step::Symlink {
        target: "pts/ptmx".into(),
        link: dev.join("ptmx"),
    });
    steps.push(Step::Touch(dev.join("console")));
    steps.push(Step::Bind {
        source: spec.console.clone(),
        target: dev.join("console"),
        readonly: false,
    });
    for (link, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        steps.push(Step::Symlink {
            target: target.into(),
            link: dev.join(link),
        });
    }
    for v in &spec.volumes {
        steps.push(Step::Volume {
            source: v.host.clone(),
            target: inside(r, &v.target)?,
        });
    }
    if !spec.fifos.is_empty() {
        steps.push(Step::Mkdir(dev.join("fifos")));
    }
    for fifo in &spec.fifos {
        let name = fifo.file_name().map(PathBuf::from).unwrap_or_default();
        let target = dev.join("fifos").join(name);
        steps.push(Step::Touch(target.clone()));
        steps.push(Step::Bind {
            source: fifo.clone(),
            target,
            readonly: false,
        });
    }
    steps.push(Step::Optional(Box::new(Step::Bind {
        source: spec.uuid_file.clone(),
        target: r.join("sys/devices/virtual/dmi/id/product_uuid"),
        readonly: false,
    })));
    steps.push(Step::Optional(Box::new(Step::Bind {
        source: dev.join("null"),
        target: r.join("proc/kcore"),
        readonly: false,
    })));
    for p in ["sys", "sysrq-trigger", "irq", "bus"] {
        let path = r.join("proc").join(p);
        steps.push(Step::Optional(Box::new(Step::Bind {
            source: path.clone(),
            target: path,
            readonly: true,
        })));
    }
    Ok(steps)
}

fn step_err(what: String) -> impl FnOnce(io::Error) -> PlanError {
    move |source| PlanError::Step { what, source }
}

fn absent(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_err()
}

fn touch(p: &Path) -> io::Result<()> {
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent)?;
    }
    if absent(p) {
        std::fs::File::create(p)?;
    }
    Ok(())
}

fn bind(sys: &dyn Sys, source: &Path, target: &Path, readonly: bool) -> io::Result<()> {
    use MountFlag::{Bind, NoDev, NoExec, NoSuid, ReadOnly, Recursive, Remount};
    let mut m = Mount {
        source: source.display().to_string(),
        target: target.to_path_buf(),
        fstype: String::new(),
        flags: vec![Bind, Recursive],
        data: String::new(),
    };
    sys.mount(&m)?;
    if readonly {
        m.source.clear();
        m.flags = vec![Bind, Remount, ReadOnly, NoSuid, NoDev, NoExec];
        sys.mount(&m)?;
    }
    Ok(())
}

/// Applies one step.
pub fn apply(step: &Step, sys: &dyn Sys) -> Result<(), PlanError> {
    match step {
        Step::PrivateMounts => sys
            .mount(&Mount {
                source: String::new(),
                target: "/".into(),
                fstype: String::new(),
                flags: vec![MountFlag::Recursive, MountFlag::Private],
                data: String::new(),
            })
            .map_err(step_err("make mounts private".into())),
        Step::Mkdir(p) => {
            std::fs::create_dir_all(p).map_err(step_err(format!("mkdir {}", p.display())))
        }
        Step::Touch(p) => touch(p).map_err(step_err(format!("create {}", p.display()))),
        Step::Mount(m) => sys.mount(m).map_err(step_err(format!(
            "mount {} on {}",
            m.fstype,
            m.target.display()
        ))),
        Step::Bind {
            source,
            target,
            readonly,
        } => bind(sys, source, target, *readonly).map_err(step_err(format!(
            "bind {} on {}",
            source.display(),
            target.display()
        ))),
        Step::Mknod { path, major, minor } if absent(path) => sys
            .mknod_char(path, *major, *minor)
            .map_err(step_err(format!("mknod {}", path.display()))),
        Step::Mknod { .. } => Ok(()),
        Step::Symlink { target, link } if absent(link) => std::os::unix::fs::symlink(target, link)
            .map_err(step_err(format!("symlink {}", link.display()))),
        Step::Symlink { .. } => Ok(()),
        Step::Volume { source, target } => {
            let meta =
                std::fs::metadata(source).map_err(|_| PlanError::VolumeMissing(source.clone()))?;
            let what = format!("volume {} on {}", source.display(), target.display());
            let made = if meta.is_dir() {
                std::fs::create_dir_all(target)
            } else {
                touch(target)
            };
            made.and_then(|()| bind(sys, source, target, false))
                .map_err(step_err(what))
        }
        Step::Optional(inner) => {
            if let Err(e) = apply(inner, sys) {
                tracing::debug!("optional container step: {e}");
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests;
