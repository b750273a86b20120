//! QEMU processes: spawn (own process group, output to `qemu.log`), supervise, kill,
//! and find again after a server restart.

use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ferromega_domain::backends::ExitStatus;
use tokio::sync::{oneshot, watch};

/// A QEMU this server started.
pub struct Child {
    /// Its PID.
    pub pid: u32,
    child: tokio::process::Child,
}

/// The last lines QEMU wrote to `<dir>/qemu.log`, for error messages.
pub fn log_tail(dir: &Path) -> String {
    let text = std::fs::read_to_string(dir.join("qemu.log")).unwrap_or_default();
    let lines: Vec<&str> = text.lines().rev().take(5).collect();
    lines
        .into_iter()
        .rev()
        .collect::<Vec<_>>()
        .join(" ")
        .trim()
        .to_string()
}

/// Starts `bin argv…` in its own process group with its output in `<dir>/qemu.log`.
pub fn spawn(bin: &str, argv: &[String], dir: &Path) -> Result<Child, String> {
    let log = std::fs::File::create(dir.join("qemu.log")).map_err(|e| e.to_string())?;
    let log2 = log.try_clone().map_err(|e| e.to_string())?;
    let child = tokio::process::Command::new(bin)
        .args(argv)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log2)
        .process_group(0)
        .kill_on_drop(false)
        .spawn()
        .map_err(|e| format!("cannot start {bin}: {e}"))?;
    let pid = child.id().ok_or("qemu exited at once")?;
    Ok(Child { pid, child })
}

/// Waits for a child QEMU to end and reports how: killed by SIGKILL or exit 0 is clean.
pub fn supervise(
    mut child: Child,
    dir: PathBuf,
    status_tx: oneshot::Sender<ExitStatus>,
    exited_tx: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        let status = child.child.wait().await;
        let _ = exited_tx.send(true);
        let result = match status {
            Ok(s) if s.success() || s.signal() == Some(libc::SIGKILL) => Ok(()),
            Ok(s) => Err(format!("qemu killed: {s}: {}", log_tail(&dir))),
            Err(e) => Err(format!("qemu wait: {e}")),
        };
        let _ = status_tx.send(result);
    });
}

/// Watches a QEMU a previous server started (not our child): it has ended when its
/// `/proc` entry is gone.
pub fn watch_adopted(
    pid: u32,
    status_tx: oneshot::Sender<ExitStatus>,
    exited_tx: watch::Sender<bool>,
) {
    tokio::spawn(async move {
        let proc_dir = PathBuf::from(format!("/proc/{pid}"));
        while proc_dir.exists() && !is_zombie(pid) {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let _ = exited_tx.send(true);
        let _ = status_tx.send(Ok(()));
    });
}

fn is_zombie(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .and_then(|r| r.split_whitespace().next())
        == Some("Z")
}

/// The PID in `<dir>/qemu.pid` if that process is alive and is the QEMU of this
/// instance directory (its command line names the directory), so a reused PID is
/// never mistaken for our VM.
pub fn running_pid(dir: &Path) -> Result<u32, String> {
    let text =
        std::fs::read_to_string(dir.join("qemu.pid")).map_err(|e| format!("no qemu.pid: {e}"))?;
    let pid: u32 = text
        .trim()
        .parse()
        .map_err(|_| "bad qemu.pid".to_string())?;
    let cmdline =
        std::fs::read(format!("/proc/{pid}/cmdline")).map_err(|_| "qemu is gone".to_string())?;
    let needle = dir.join("qmp").to_string_lossy().into_owned();
    let cmdline = String::from_utf8_lossy(&cmdline);
    if is_zombie(pid) || !cmdline.contains(&needle) {
        return Err(format!("pid {pid} is not this VM's qemu"));
    }
    Ok(pid)
}

/// Sends SIGKILL to `pid`.
pub fn kill(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    #[expect(
        unsafe_code,
        reason = "kill(2) has no safe wrapper outside nix, which is fenced to host-container"
    )]
    // SAFETY: kill(2) takes plain integers and touches no memory of ours; the worst a
    // wrong pid can do is signal another process, which `running_pid` guards against.
    let r = unsafe { libc::kill(pid, libc::SIGKILL) };
    if r != 0 {
        tracing::debug!("kill {pid}: {}", std::io::Error::last_os_error());
    }
}
