//! The real `ferromega` binary: `serve` claims its base directory (pid file, minimega
//! socket), refuses a second server on the same base, answers `-e`, and stops cleanly
//! on SIGTERM and on `quit`.
//!
//! The binary belongs to `ferromega-daemon`, so `CARGO_BIN_EXE_ferromega` is not
//! available here. It is looked up next to this test executable
//! (`<target>/<profile>/ferromega`) after asking cargo to build it there (a no-op when
//! it is up to date; `cargo test --workspace` builds it anyway).

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ferromega_tests::host::free_port;
use ferromega_tests::workspace_root;

/// The `ferromega` binary of this build, built on first use.
fn ferromega_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("the test executable's path");
        // <target>/<profile>/deps/serve-<hash>
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("the test executable sits in <target>/<profile>/deps");
        let target_dir = profile_dir.parent().expect("a target directory");
        let bin = profile_dir.join("ferromega");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let mut build = Command::new(&cargo);
        build
            .current_dir(workspace_root())
            .args([
                "build",
                "--quiet",
                "-p",
                "ferromega-daemon",
                "--bin",
                "ferromega",
            ])
            .arg("--target-dir")
            .arg(target_dir);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let status = build.status();
        match status {
            Ok(s) if s.success() => {}
            other => assert!(
                bin.is_file(),
                "cannot build the ferromega binary ({cargo} build -p ferromega-daemon: \
                 {other:?}) and there is none at {}",
                bin.display()
            ),
        }
        assert!(bin.is_file(), "no ferromega binary at {}", bin.display());
        bin
    })
}

/// A `ferromega serve` process over a temporary base; killed by PID when dropped.
struct Server {
    child: Child,
    addr: String,
    base: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let dir = tempfile::Builder::new()
            .prefix("ferromega-serve-test-")
            .tempdir()
            .expect("a temporary directory");
        let base = dir.path().join("base");
        let log = dir.path().join("stderr.log");
        let addr = format!("127.0.0.1:{}", free_port());
        let child = Command::new(ferromega_bin())
            .arg("serve")
            .arg("--base")
            .arg(&base)
            .arg("--addr")
            .arg(&addr)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("a log file"))
            .spawn()
            .expect("start ferromega serve");
        let mut s = Server {
            child,
            addr,
            base,
            log,
            _dir: dir,
        };
        s.wait_ready();
        s
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("ferromega serve exited early ({status}): {}", self.stderr());
            }
            let http = std::net::TcpStream::connect(&self.addr).is_ok();
            if http && self.base.join("minimega").exists() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("ferromega serve not ready after 20 s: {}", self.stderr());
    }

    /// Waits for the process to exit; None if it is still running after `within`.
    fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// `ferromega --addr <addr> -e <line>`.
    fn execute(&self, line: &str) -> Output {
        Command::new(ferromega_bin())
            .arg("--addr")
            .arg(&self.addr)
            .arg("-e")
            .arg(line)
            .output()
            .expect("run ferromega -e")
    }

    /// Whether the server still answers `-e echo`.
    fn alive(&self) -> bool {
        let out = self.execute("echo alive");
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("alive")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{sig} {pid} failed");
}

#[test]
fn serve_writes_the_pid_file_and_the_minimega_socket() {
    let server = Server::start();
    let pid = std::fs::read_to_string(server.base.join("ferromega.pid")).expect("a pid file");
    assert_eq!(pid.trim(), server.pid().to_string());
    assert!(server.base.join("minimega").exists());
    assert!(server.base.join("files").is_dir());
    assert!(server.alive());
}

#[test]
fn a_second_server_on_the_same_base_is_refused() {
    let server = Server::start();
    let out = Command::new(ferromega_bin())
        .arg("serve")
        .arg("--base")
        .arg(&server.base)
        .arg("--addr")
        .arg(format!("127.0.0.1:{}", free_port()))
        .stdin(Stdio::null())
        .output()
        .expect("run a second ferromega serve");
    assert!(!out.status.success(), "the second server started");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "another ferromega (pid {}) is using {}; stop it or pass --force",
        server.pid(),
        server.base.display()
    );
    assert!(stderr.contains(&want), "stderr: {stderr}");
    // The first one is untouched.
    let pid = std::fs::read_to_string(server.base.join("ferromega.pid")).expect("pid file");
    assert_eq!(pid.trim(), server.pid().to_string());
    assert!(server.alive());
}

#[test]
fn dash_e_version_prints_the_ferromega_version() {
    let server = Server::start();
    let out = server.execute("version");
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let want = format!("ferromega {}", env!("CARGO_PKG_VERSION"));
    assert!(stdout.trim_end().ends_with(&want), "stdout: {stdout:?}");
}

#[test]
fn dash_e_reports_errors_and_a_failing_status() {
    let server = Server::start();
    let out = server.execute("vm bogus");
    assert!(!out.status.success());
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("invalid command: `vm bogus`"),
        "stdout: {stdout:?}"
    );
}

#[test]
fn sigterm_stops_the_server_cleanly() {
    let mut server = Server::start();
    signal(server.pid(), "TERM");
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits after SIGTERM");
    assert_eq!(status.code(), Some(0), "stderr: {}", server.stderr());
    assert!(!server.base.join("ferromega.pid").exists(), "pid file left");
    assert!(!server.base.join("minimega").exists(), "socket left");
}

#[test]
fn quit_via_dash_e_stops_the_server_cleanly() {
    let mut server = Server::start();
    let out = server.execute("quit");
    assert!(out.status.success(), "{out:?}");
    let status = server
        .wait_exit(Duration::from_secs(15))
        .expect("the server exits after quit");
    assert_eq!(status.code(), Some(0), "stderr: {}", server.stderr());
    assert!(!server.base.join("ferromega.pid").exists(), "pid file left");
    assert!(!server.base.join("minimega").exists(), "socket left");
}

#[test]
fn the_minimega_socket_of_the_real_server_answers() {
    let server = Server::start();
    let mut stream = std::os::unix::net::UnixStream::connect(server.base.join("minimega"))
        .expect("connect to <base>/minimega");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("a read timeout");
    stream
        .write_all(b"{\"Command\":\".annotate false echo hi\"}\n")
        .expect("send a request");
    let mut line = String::new();
    BufReader::new(&stream)
        .read_line(&mut line)
        .expect("read a reply");
    let reply: serde_json::Value = serde_json::from_str(&line).expect("a JSON reply");
    assert_eq!(reply["Rendered"], "hi");
    assert_eq!(reply["More"], false);
}

/// Sends `line` to a fresh server and checks it still answers (and answered in time).
fn survives(line: &str, within: Duration) {
    let server = Server::start();
    let reply = raw_http::post_command(&server.addr, line, within);
    assert!(
        reply.is_ok(),
        "no answer to a {}-byte line: {reply:?}\nstderr: {}",
        line.len(),
        server.stderr()
    );
    assert!(server.alive(), "the server died: {}", server.stderr());
}

/// A minimal blocking HTTP/1.1 POST of the command endpoint, so these tests need no
/// async runtime (the line may take the server down).
mod raw_http {
    use std::io::{Read, Write};
    use std::time::Duration;

    pub fn post_command(addr: &str, line: &str, within: Duration) -> Result<String, String> {
        let body = serde_json::json!({ "command": line }).to_string();
        let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(within))
            .map_err(|e| e.to_string())?;
        let req = format!(
            "POST /api/v1/namespaces/minimega/command HTTP/1.1\r\nHost: {addr}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
        let mut out = String::new();
        s.read_to_string(&mut out).map_err(|e| e.to_string())?;
        if out.starts_with("HTTP/1.1 200") {
            Ok(out)
        } else {
            Err(format!("reply: {out:?}"))
        }
    }
}

#[test]
fn deeply_nested_columns_do_not_crash_the_server() {
    let line = ".columns name ".repeat(1000) + "vm info";
    survives(&line, Duration::from_secs(30));
}

#[test]
fn ambiguous_nested_prefixes_compile_in_bounded_time() {
    let line = ".c t ".repeat(16) + "echo x";
    survives(&line, Duration::from_secs(5));
}
