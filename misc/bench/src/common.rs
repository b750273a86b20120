//! What several benchmarks share: finding the `ferromega` binary, starting a server on a
//! free port over a temporary base, and reading a process's resident memory.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use anyhow::{bail, Context};

/// The `ferromega` binary: `flag`, else `$FERROMEGA_BIN`, else the one next to this
/// program (`cargo build --release --workspace` puts them side by side).
pub fn binary(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let bin = match flag.or_else(|| std::env::var_os("FERROMEGA_BIN").map(PathBuf::from)) {
        Some(p) => p,
        None => std::env::current_exe()?
            .parent()
            .context("no folder of this program")?
            .join("ferromega"),
    };
    if !bin.is_file() {
        bail!(
            "no ferromega binary at {} (cargo build --release --workspace, or pass --bin)",
            bin.display()
        );
    }
    Ok(bin)
}

/// Resident memory of process `pid` in KiB (`VmRSS`), 0 when it cannot be read.
#[allow(
    dead_code,
    reason = "the VM and container launch benchmarks use it; vnc-relay does not"
)]
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// `bin serve` on a free loopback port over a fresh temporary base named with `prefix`,
/// logging errors to `<base>/server.log`, with `extra` flags. Not waited for: the caller
/// knows what "ready" means to it. Returns the process, `127.0.0.1:<port>` and the base.
#[allow(
    dead_code,
    reason = "the container launch and tls-auth benchmarks use it; the others do not"
)]
pub fn spawn_serve(
    bin: &Path,
    prefix: &str,
    extra: &[&OsStr],
) -> anyhow::Result<(Child, String, tempfile::TempDir)> {
    let base = tempfile::Builder::new()
        .prefix(prefix)
        .tempdir()
        .context("cannot create a temporary base")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let addr = format!("127.0.0.1:{port}");
    let child = Command::new(bin)
        .arg("serve")
        .arg("--base")
        .arg(base.path())
        .args(["--addr", &addr, "--level", "error", "--logfile"])
        .arg(base.path().join("server.log"))
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))?;
    Ok((child, addr, base))
}
