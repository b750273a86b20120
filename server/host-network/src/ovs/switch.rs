//! A private Open vSwitch: `ovsdb-server` and `ovs-vswitchd` started in a run directory
//! of their own (userspace datapath where the kernel has no openvswitch module), for
//! tests and for hosts without the system service. Dropping it stops both.

use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running ovsdb-server + ovs-vswitchd pair.
#[derive(Debug)]
pub struct PrivateSwitch {
    dir: PathBuf,
}

fn run(dir: &Path, program: &str, args: &[&str]) -> io::Result<()> {
    let out = Command::new(program)
        .args(args)
        .env("OVS_RUNDIR", dir)
        .env("OVS_LOGDIR", dir)
        .env("OVS_DBDIR", dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| io::Error::new(e.kind(), format!("{program}: {e}")))?;
    if out.status.success() {
        return Ok(());
    }
    Err(io::Error::other(format!(
        "{program} failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    )))
}

/// The schema Debian's openvswitch-common installs.
const SCHEMA: &str = "/usr/share/openvswitch/vswitch.ovsschema";

/// Whether process `pid` runs (exists and is not a zombie).
pub fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rsplit_once(") ").map(|(_, r)| !r.starts_with('Z')))
        .unwrap_or(false)
}

impl PrivateSwitch {
    /// Creates a fresh database in `dir` and starts both daemons there.
    pub fn start(dir: &Path) -> io::Result<PrivateSwitch> {
        std::fs::create_dir_all(dir)?;
        let s = PrivateSwitch {
            dir: dir.to_path_buf(),
        };
        let p = |name: &str| dir.join(name).display().to_string();
        let db = p("conf.db");
        let _ = std::fs::remove_file(&db);
        run(dir, "ovsdb-tool", &["create", &db, SCHEMA])?;
        run(
            dir,
            "ovsdb-server",
            &[
                &db,
                &format!("--remote=punix:{}", p("db.sock")),
                &format!("--pidfile={}", p("ovsdb-server.pid")),
                &format!("--log-file={}", p("ovsdb-server.log")),
                "--detach",
            ],
        )?;
        run(
            dir,
            "ovs-vsctl",
            &[&format!("--db={}", s.db()), "--no-wait", "init"],
        )?;
        run(
            dir,
            "ovs-vswitchd",
            &[
                &s.db(),
                &format!("--pidfile={}", p("ovs-vswitchd.pid")),
                &format!("--log-file={}", p("ovs-vswitchd.log")),
                "--detach",
            ],
        )?;
        Ok(s)
    }

    /// The database remote (`unix:<dir>/db.sock`) to give `--ovs-db`.
    pub fn db(&self) -> String {
        format!("unix:{}", self.dir.join("db.sock").display())
    }

    /// The PIDs of the two daemons that are still running.
    pub fn pids(&self) -> Vec<u32> {
        ["ovs-vswitchd.pid", "ovsdb-server.pid"]
            .iter()
            .filter_map(|f| std::fs::read_to_string(self.dir.join(f)).ok())
            .filter_map(|t| t.trim().parse().ok())
            .filter(|pid| alive(*pid))
            .collect()
    }
}

impl Drop for PrivateSwitch {
    fn drop(&mut self) {
        // The daemons remove their pid files as they start to exit: remember the PIDs.
        let pids = self.pids();
        let running = || -> Vec<u32> { pids.iter().copied().filter(|p| alive(*p)).collect() };
        for pid in &pids {
            let _ = crate::sys::signal(*pid, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && !running().is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
        let left = running();
        if !left.is_empty() {
            tracing::warn!("Open vSwitch daemons {left:?} ignored SIGTERM: killing them");
        }
        for pid in left {
            let _ = crate::sys::signal(pid, libc::SIGKILL);
        }
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline && !running().is_empty() {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
