//! dnsmasq processes: started in the foreground as children of the server (argv as
//! minimega builds it), watched, reloaded with SIGHUP and stopped with SIGTERM.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ferromega_domain::network::DnsmasqSpec;
use thiserror::Error;
use tokio::sync::watch;

use crate::sys;

/// Why a dnsmasq could not be started or stopped.
#[derive(Debug, Error)]
pub enum DnsmasqError {
    /// The program could not be run.
    #[error("cannot run dnsmasq: {0}")]
    Spawn(std::io::Error),
    /// It exited right away.
    #[error("dnsmasq failed to start: {0}")]
    Exited(String),
    /// Not a dnsmasq of this server.
    #[error("unknown dnsmasq pid {0}")]
    Unknown(u32),
    /// It would not stop.
    #[error("dnsmasq {0} did not stop")]
    Stuck(u32),
}

/// The argv (without the program) for `spec`, as minimega 2.4 runs it.
pub fn argv(spec: &DnsmasqSpec) -> Vec<String> {
    let d = |f: &str| spec.dir.join(f).display().to_string();
    let mut a = vec![
        "-u".to_string(),
        "root".to_string(),
        format!("--pid-file={}", d("dnsmasq.pid")),
        "-o".to_string(),
        "-k".to_string(),
        format!("--hostsdir={}", d("hosts")),
        format!("--dhcp-hostsdir={}", d("dhcp-hosts")),
        format!("--dhcp-optsdir={}", d("dhcp-opts")),
    ];
    if let Some((listen, min, max)) = &spec.dhcp {
        a.extend([
            "--except-interface".to_string(),
            "lo".to_string(),
            "--listen-address".to_string(),
            listen.clone(),
            "--bind-interfaces".to_string(),
            "--dhcp-range".to_string(),
            format!("{min},{max}"),
            format!("--dhcp-leasefile={}", d("dnsmasq.leases")),
            "--dhcp-lease-max=4294967295".to_string(),
        ]);
    }
    // Never read the host's /etc/dnsmasq.conf.
    a.push(format!(
        "--conf-file={}",
        spec.config.as_deref().unwrap_or("/dev/null")
    ));
    a
}

/// The dnsmasqs this server started, by PID: a flag that turns true when one exits.
#[derive(Debug, Default)]
pub struct Dnsmasqs {
    running: Mutex<HashMap<u32, watch::Receiver<bool>>>,
}

impl Dnsmasqs {
    /// Starts a dnsmasq and returns its PID once it has survived its start-up.
    pub async fn start(&self, spec: &DnsmasqSpec) -> Result<u32, DnsmasqError> {
        let log_path = spec.dir.join("dnsmasq.log");
        let log = std::fs::File::create(&log_path).map_err(DnsmasqError::Spawn)?;
        let mut child = tokio::process::Command::new("dnsmasq")
            .args(argv(spec))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(DnsmasqError::Spawn)?;
        let pid = child
            .id()
            .ok_or_else(|| DnsmasqError::Exited("no pid".into()))?;
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let _ = child.wait().await;
            let _ = tx.send(true);
        });
        let mut exited = rx.clone();
        let died = tokio::time::timeout(Duration::from_millis(700), exited.wait_for(|e| *e)).await;
        if died.is_ok() {
            let text = std::fs::read_to_string(&log_path).unwrap_or_default();
            return Err(DnsmasqError::Exited(text.trim().replace('\n', "; ")));
        }
        self.lock().insert(pid, rx);
        Ok(pid)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u32, watch::Receiver<bool>>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sends SIGHUP (re-read hosts and options).
    pub fn reload(&self, pid: u32) -> Result<(), DnsmasqError> {
        if !self.lock().contains_key(&pid) {
            return Err(DnsmasqError::Unknown(pid));
        }
        sys::signal(pid, libc::SIGHUP).map_err(DnsmasqError::Spawn)
    }

    /// Stops a dnsmasq: SIGTERM, then SIGKILL after 5 s.
    pub async fn kill(&self, pid: u32) -> Result<(), DnsmasqError> {
        let Some(mut exited) = self.lock().remove(&pid) else {
            return Err(DnsmasqError::Unknown(pid));
        };
        if *exited.borrow() {
            return Ok(());
        }
        let _ = sys::signal(pid, libc::SIGTERM);
        if tokio::time::timeout(Duration::from_secs(5), exited.wait_for(|e| *e))
            .await
            .is_ok()
        {
            return Ok(());
        }
        let _ = sys::signal(pid, libc::SIGKILL);
        tokio::time::timeout(Duration::from_secs(5), exited.wait_for(|e| *e))
            .await
            .map(drop)
            .map_err(|_| DnsmasqError::Stuck(pid))
    }

    /// Stops every dnsmasq still running.
    pub async fn kill_all(&self) {
        let pids: Vec<u32> = self.lock().keys().copied().collect();
        for pid in pids {
            if let Err(e) = self.kill(pid).await {
                tracing::warn!("{e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_follows_minimega_and_never_reads_the_host_config() {
        let spec = DnsmasqSpec {
            dir: "/b/dnsmasq_0".into(),
            dhcp: Some(("10.0.0.1".into(), "10.0.0.10".into(), "10.0.0.20".into())),
            config: None,
        };
        let a = argv(&spec);
        assert!(a.contains(&"--dhcp-range".to_string()));
        assert!(a.contains(&"10.0.0.10,10.0.0.20".to_string()));
        assert!(a.contains(&"--listen-address".to_string()));
        assert_eq!(a.last().map(String::as_str), Some("--conf-file=/dev/null"));
    }
}
