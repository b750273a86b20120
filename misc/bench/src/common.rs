//! What several benchmarks share: finding the `ferromega` binary and the container image,
//! and reading a process's resident memory.

use std::path::PathBuf;

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

/// The `minicccfs` container image: in `flag`, else `$FERROMEGA_IMAGES`, else
/// target/images; canonical, checked.
#[allow(
    dead_code,
    reason = "the container launch and mesh benchmarks use it; the others do not"
)]
pub fn find_image(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    let dir = flag
        .or_else(|| std::env::var_os("FERROMEGA_IMAGES").map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("target/images"));
    let fs = dir.join("minicccfs");
    if !fs.join("init").is_file() {
        bail!(
            "{} missing: run `misc/images/build {}`",
            fs.display(),
            dir.display()
        );
    }
    Ok(std::fs::canonicalize(fs)?)
}
