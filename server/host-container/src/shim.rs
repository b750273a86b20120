//! The container shim: the hidden `ferromega __container-shim <instance>` mode, run as
//! PID 1 of the container's new namespaces (minimega's `CONTAINER` argv mode). It starts
//! a new session (the pty is its stdio and `/dev/console`), waits until the server has put it into its
//! cgroups, applies the mount plan, runs preinit, pivots into the root, checks init,
//! drops capabilities, reports ready, and — once the server has frozen its cgroup and
//! said go — execs init, which therefore first runs at `vm start`.
//!
//! Handshake on the socket at fd 3 (one line each):
//!
//! ```text
//!   server                         shim
//!     │ ── "cgroups" ─────────────► │  (joined; the shim may now fork preinit)
//!     │ ◄──────── "ready" / "error: …" │
//!   freeze
//!     │ ── "go" ──────────────────► │  exec init (runs when thawed);
//!     │ ◄──────── "error: …" / EOF ─ │  on exec failure / close-on-exec
//! ```

use std::io::{self, BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::plan::{self, PlanError};
use crate::spec::{Spec, SPEC_FILE};
use crate::sys::{self, RealSys, Sys};

/// The argv word that selects the shim mode of the `ferromega` binary.
pub const SHIM_ARG: &str = "__container-shim";

/// Capabilities init keeps (minimega's list): CHOWN, DAC_OVERRIDE, DAC_READ_SEARCH,
/// FOWNER, FSETID, KILL, SETGID, SETUID, SETPCAP, NET_BIND_SERVICE, NET_ADMIN, NET_RAW,
/// SYS_CHROOT, MKNOD, AUDIT_WRITE, AUDIT_CONTROL, SETFCAP.
const KEEP_CAPS: &[u32] = &[0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 13, 18, 27, 29, 30, 31];

/// Why the shim could not start init.
#[derive(Debug, Error)]
pub enum ShimError {
    /// Wrong argv.
    #[error("usage: ferromega {SHIM_ARG} <instance dir>")]
    Usage,
    /// The server's side of the handshake.
    #[error("handshake with the server: {0}")]
    Handshake(String),
    /// The spec file.
    #[error("cannot read {0}: {1}")]
    Spec(PathBuf, String),
    /// The new session.
    #[error("setsid: {0}")]
    Session(io::Error),
    /// sethostname.
    #[error("cannot set hostname {0:?}: {1}")]
    Hostname(String, io::Error),
    /// A mount step.
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// preinit failed.
    #[error("preinit {0}: {1}")]
    Preinit(String, String),
    /// pivot_root.
    #[error("cannot pivot into {0}: {1}")]
    Pivot(PathBuf, io::Error),
    /// init is missing.
    #[error("init {0} does not exist in the container filesystem")]
    NoInit(String),
    /// init is not executable.
    #[error("init {0} is not executable: {1}")]
    Init(String, io::Error),
    /// Capabilities.
    #[error("cannot drop capabilities: {0}")]
    Caps(io::Error),
    /// Signal dispositions.
    #[error("cannot reset signals: {0}")]
    Signals(io::Error),
    /// exec of init.
    #[error("cannot exec init {0}: {1}")]
    Exec(String, io::Error),
}

/// Runs the shim; never returns (execs init or exits 1 after reporting the error on the
/// handshake socket and the console).
pub fn main() -> ! {
    let mut sync = match sys::inherited_sync_socket() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("ferromega container shim: no handshake socket: {e}");
            std::process::exit(126)
        }
    };
    let err = match std::env::args_os().nth(2) {
        Some(dir) => run(Path::new(&dir), &mut sync, &RealSys),
        None => ShimError::Usage,
    };
    let _ = writeln!(sync, "error: {err}");
    eprintln!("ferromega container: {err}");
    std::process::exit(1)
}

/// Sets the container up and execs init; returns only the reason it could not.
fn run(dir: &Path, sync: &mut UnixStream, sys: &dyn Sys) -> ShimError {
    match setup(dir, sync, sys) {
        Ok(init) => {
            let e = sys::exec(&init);
            ShimError::Exec(init.first().cloned().unwrap_or_default(), e)
        }
        Err(e) => e,
    }
}

fn expect_line(reader: &mut impl BufRead, want: &str) -> Result<(), ShimError> {
    let mut line = String::new();
    match reader.read_line(&mut line) {
        Ok(0) => Err(ShimError::Handshake("server went away".into())),
        Ok(_) if line.trim() == want => Ok(()),
        Ok(_) => Err(ShimError::Handshake(format!(
            "expected {want:?}, got {:?}",
            line.trim()
        ))),
        Err(e) => Err(ShimError::Handshake(e.to_string())),
    }
}

fn setup(dir: &Path, sync: &mut UnixStream, sys: &dyn Sys) -> Result<Vec<String>, ShimError> {
    sys::new_session().map_err(ShimError::Session)?;
    let mut reader = BufReader::new(
        sync.try_clone()
            .map_err(|e| ShimError::Handshake(e.to_string()))?,
    );
    expect_line(&mut reader, "cgroups")?;
    let path = dir.join(SPEC_FILE);
    let spec: Spec = std::fs::read(&path)
        .map_err(|e| e.to_string())
        .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        .map_err(|e| ShimError::Spec(path.clone(), e))?;
    sys.set_hostname(&spec.hostname)
        .map_err(|e| ShimError::Hostname(spec.hostname.clone(), e))?;
    for step in plan::build(&spec)? {
        plan::apply(&step, sys)?;
    }
    if !spec.preinit.is_empty() {
        preinit(&spec.preinit)?;
    }
    sys.pivot_root(&spec.root)
        .map_err(|e| ShimError::Pivot(spec.root.clone(), e))?;
    let init = spec.init.first().cloned().unwrap_or_default();
    sys::executable(Path::new(&init)).map_err(|e| match e.kind() {
        io::ErrorKind::NotFound => ShimError::NoInit(init.clone()),
        _ => ShimError::Init(init.clone(), e),
    })?;
    sys::drop_bounding_caps(KEEP_CAPS).map_err(ShimError::Caps)?;
    sys::reset_signals().map_err(ShimError::Signals)?;
    writeln!(sync, "ready").map_err(|e| ShimError::Handshake(e.to_string()))?;
    expect_line(&mut reader, "go")?;
    Ok(spec.init)
}

/// Runs preinit (a host path, with the host's view of files plus the new namespaces),
/// its own path as its only argument, and waits for it to succeed.
fn preinit(path: &str) -> Result<(), ShimError> {
    let status = std::process::Command::new(path)
        .arg(path)
        .status()
        .map_err(|e| ShimError::Preinit(path.to_string(), e.to_string()))?;
    if status.success() {
        Ok(())
    } else {
        Err(ShimError::Preinit(path.to_string(), status.to_string()))
    }
}
