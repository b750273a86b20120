//! ferromega-host-system: host programs (`shell`, `background`, `check`) and this process's
//! figures from /proc — the real `HostSystem` behind the domain's trait.

use std::process::Stdio;

use ferromega_domain::backends::{
    BoxFuture, HostStats, HostSystem, PipedProcess, ProcSample, ProgramOutput,
};

mod proc;

/// Programs ferromega uses, for `check`.
const EXTERNAL: &[&str] = &[
    "qemu-system-x86_64",
    "qemu-img",
    "dnsmasq",
    "ip",
    "tc",
    "mount",
];

/// Runs host programs with argument vectors (never a shell string) and reads /proc.
#[derive(Debug, Default)]
pub struct LinuxSystem;

/// Go's text for a program that is not in PATH, which scripts compare against.
fn not_found(program: &str) -> String {
    format!("exec: \"{program}\": executable file not found in $PATH")
}

fn spawn_error(program: &str, e: &std::io::Error) -> String {
    if e.kind() == std::io::ErrorKind::NotFound {
        not_found(program)
    } else {
        format!("exec: \"{program}\": {e}")
    }
}

/// Whether `program` resolves through PATH (or is a path to an existing file).
pub fn in_path(program: &str) -> bool {
    if program.contains('/') {
        return std::path::Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

fn status_field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(key).map(|v| v.trim().to_string()))
        .unwrap_or_default()
}

impl HostSystem for LinuxSystem {
    fn run<'a>(&'a self, argv: &'a [String]) -> BoxFuture<'a, Result<ProgramOutput, String>> {
        Box::pin(async move {
            let (program, rest) = argv.split_first().ok_or("no program given")?;
            let out = tokio::process::Command::new(program)
                .args(rest)
                .stdin(Stdio::null())
                .output()
                .await
                .map_err(|e| spawn_error(program, &e))?;
            Ok(ProgramOutput {
                stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
                code: out.status.code(),
            })
        })
    }

    fn spawn_background(&self, argv: &[String]) -> Result<u32, String> {
        let (program, rest) = argv.split_first().ok_or("no program given")?;
        let child = tokio::process::Command::new(program)
            .args(rest)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| spawn_error(program, &e))?;
        let pid = child.id().unwrap_or(0);
        let name = program.clone();
        tokio::spawn(async move {
            match child.wait_with_output().await {
                Ok(out) => tracing::info!(
                    "background {name} ({pid}) exited {}: {}{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
                Err(e) => tracing::warn!("background {name} ({pid}): {e}"),
            }
        });
        Ok(pid)
    }

    fn spawn_piped(&self, argv: &[String]) -> Result<PipedProcess, String> {
        let (program, rest) = argv.split_first().ok_or("no program given")?;
        let mut child = tokio::process::Command::new(program)
            .args(rest)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| spawn_error(program, &e))?;
        let pid = child.id().unwrap_or(0);
        let (stdin, stdout, stderr) =
            match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
                (Some(i), Some(o), Some(e)) => (i, o, e),
                _ => return Err(format!("{program}: no pipes")),
            };
        let (kill, killed) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let name = program.clone();
        tokio::spawn(async move {
            let mut errors = String::new();
            let mut stderr = stderr;
            let read_errors = async {
                use tokio::io::AsyncReadExt;
                let _ = stderr.read_to_string(&mut errors).await;
            };
            let wait = async {
                tokio::select! {
                    status = child.wait() => status.ok(),
                    _ = killed => {
                        let _ = child.kill().await;
                        None
                    }
                }
            };
            let (status, ()) = tokio::join!(wait, read_errors);
            tracing::info!("piped {name} ({pid}) ended ({status:?}) {}", errors.trim());
            let _ = done_tx.send(());
        });
        Ok(PipedProcess {
            pid,
            stdin: Box::pin(stdin),
            stdout: Box::pin(stdout),
            exited: Box::pin(async move {
                let _ = done_rx.await;
            }),
            kill,
        })
    }

    fn in_path(&self, program: &str) -> bool {
        in_path(program)
    }

    fn check(&self) -> BoxFuture<'_, Vec<String>> {
        Box::pin(async move {
            EXTERNAL
                .iter()
                .filter(|p| !in_path(p))
                .map(|p| format!("{p} not found in PATH"))
                .collect()
        })
    }

    fn process_figures(&self) -> Vec<(String, String)> {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        vec![
            ("version".to_string(), env!("CARGO_PKG_VERSION").to_string()),
            ("threads".to_string(), status_field(&status, "Threads:")),
            ("rss".to_string(), status_field(&status, "VmRSS:")),
            ("fds".to_string(), fd_count().to_string()),
        ]
    }

    fn process_report(&self) -> String {
        std::fs::read_to_string("/proc/self/status").unwrap_or_default()
    }

    fn thread_report(&self) -> String {
        let mut out = String::new();
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for t in tasks.filter_map(Result::ok) {
                let comm = std::fs::read_to_string(t.path().join("comm")).unwrap_or_default();
                let stat = std::fs::read_to_string(t.path().join("stat")).unwrap_or_default();
                let state = stat
                    .rsplit(')')
                    .next()
                    .unwrap_or("")
                    .split_whitespace()
                    .next();
                out.push_str(&format!(
                    "{} {} {}\n",
                    t.file_name().to_string_lossy(),
                    comm.trim(),
                    state.unwrap_or("?")
                ));
            }
        }
        out
    }

    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let fields: Vec<&str> = stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .split_whitespace()
            .collect();
        // After the command name: state is field 3; utime and stime are fields 14 and 15.
        let get = |i: usize| {
            fields
                .get(i)
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap_or(0)
        };
        get(11) + get(12)
    }

    fn host_stats(&self) -> HostStats {
        proc::host_stats()
    }

    fn process_sample(&self, pids: &[u32]) -> Vec<ProcSample> {
        pids.iter().filter_map(|p| proc::sample(*p)).collect()
    }

    fn clock_ticks_per_second(&self) -> u64 {
        proc::clock_ticks()
    }
}

fn fd_count() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn missing_program_gives_go_text() {
        let argv = vec!["definitelynotarealcommand".to_string()];
        let err = LinuxSystem.run(&argv).await.unwrap_err();
        assert_eq!(err, not_found("definitelynotarealcommand"));
    }

    #[tokio::test]
    async fn stdout_and_exit_code_are_captured() {
        let argv = vec!["echo".to_string(), "hello".to_string(), "world".to_string()];
        let out = LinuxSystem.run(&argv).await.unwrap();
        assert_eq!(out.stdout, "hello world\n");
        assert_eq!(out.code, Some(0));
    }

    #[test]
    fn process_figures_read_proc() {
        let figures = LinuxSystem.process_figures();
        let threads = &figures[1].1;
        assert!(threads.parse::<u32>().unwrap() >= 1);
    }
}
