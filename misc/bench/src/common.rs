//! What several benchmarks share: finding the `ferromega` binary and the images, a
//! server on a temporary base, running a command line, and reading a process's resident
//! memory.

#![allow(dead_code, reason = "each benchmark uses part of it")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use ferromega_client::Client;

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
pub fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The server; its containers are cleared and it is stopped when dropped.
pub struct Server {
    /// The server process.
    pub child: Child,
    /// Its HTTP address.
    pub addr: String,
    _base: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        sigterm(&self.child);
        reap(&mut self.child, Instant::now() + Duration::from_secs(30));
    }
}

/// Sends SIGTERM to a server process: its graceful shutdown clears (kills) its VMs.
pub fn sigterm(child: &Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// Waits for a server process to exit until `deadline`, then kills it.
pub fn reap(child: &mut Child, deadline: Instant) {
    while Instant::now() < deadline && matches!(child.try_wait(), Ok(None)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

impl Server {
    /// The server's base directory.
    pub fn base(&self) -> &Path {
        self._base.path()
    }

    /// The server's files directory.
    pub fn files_dir(&self) -> PathBuf {
        self._base.path().join("files")
    }

    /// Starts `bin serve` on a free port over a temporary base.
    pub async fn start(bin: &Path) -> anyhow::Result<Server> {
        Server::start_with(bin, &[], |addr| Ok(Client::new(addr))).await
    }

    /// Starts `bin serve` with `extra` flags; `client` makes, from the address, the client
    /// that waits for it to answer (one that speaks TLS or carries credentials).
    pub async fn start_with(
        bin: &Path,
        extra: &[&std::ffi::OsStr],
        client: impl Fn(&str) -> anyhow::Result<Client>,
    ) -> anyhow::Result<Server> {
        let base = tempfile::Builder::new()
            .prefix("fm-bench-")
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
            // TCG as the other benchmarks: guests never boot under KVM on these machines.
            .args([
                "--addr",
                &addr,
                "--accel",
                "tcg",
                "--level",
                "error",
                "--logfile",
            ])
            .arg(base.path().join("server.log"))
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        let mut server = Server {
            child,
            addr,
            _base: base,
        };
        let client = client(&server.addr)?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.command("minimega", "version").await.is_err() {
            if let Some(status) = server.child.try_wait()? {
                let log =
                    std::fs::read_to_string(server.base().join("server.log")).unwrap_or_default();
                bail!("server exited ({status}): {}", log.trim());
            }
            if Instant::now() > deadline {
                bail!("server at {} did not answer within 30 s", server.addr);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(server)
    }
}

/// Runs a command line, failing on an error reply.
pub async fn ok(c: &Client, line: &str) -> anyhow::Result<()> {
    let reply = c.command("minimega", line).await?;
    for r in reply.batches.iter().flat_map(|b| &b.resp) {
        if !r.error.is_empty() {
            bail!("`{line}`: {}", r.error);
        }
    }
    Ok(())
}

/// The container image `minicccfs` in `flag`, `$FERROMEGA_IMAGES` or target/images.
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
