//! The host-test harness: the real `ferromega` binary started on a free port over a
//! temporary base, the images it needs, and the checks every host test shares. Every
//! precondition fails loudly with the command that fixes it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferromega_api::{Args, Response};
use ferromega_client::Client;

/// The workspace root.
pub use crate::workspace_root as workspace;

/// The `ferromega` binary next to the running test (built by `cargo build --workspace`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target dir")
        .join("ferromega");
    assert!(
        bin.is_file(),
        "{} missing: run `cargo build --workspace` first",
        bin.display()
    );
    bin
}

/// The images folder: `$FERROMEGA_IMAGES`, else `target/images`.
pub fn images_dir() -> PathBuf {
    std::env::var_os("FERROMEGA_IMAGES")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/images"))
}

/// The guest image folder, checked, with QEMU present.
pub fn guest_images() -> PathBuf {
    assert!(
        Command::new("qemu-system-x86_64")
            .arg("--version")
            .output()
            .is_ok(),
        "qemu-system-x86_64 missing: apt-get install qemu-system-x86 qemu-utils"
    );
    let dir = images_dir();
    for f in ["miniccc.kernel", "miniccc.initrd"] {
        assert!(
            dir.join(f).is_file(),
            "{} missing: run `misc/images/build {}`",
            dir.join(f).display(),
            dir.display()
        );
    }
    dir
}

/// The `vm config` lines of the test guest in `images` (kernel, initrd, a serial
/// console, 128 MiB).
pub fn guest_config(images: &Path) -> Vec<String> {
    let i = |f: &str| images.join(f).display().to_string();
    vec![
        format!("vm config kernel {}", i("miniccc.kernel")),
        format!("vm config initrd {}", i("miniccc.initrd")),
        "vm config append console=ttyS0 no_timer_check quiet panic=-1".into(),
        "vm config memory 128".into(),
    ]
}

/// Builds `ferromega-agent` as a static binary (the container image has no libc).
pub fn static_agent() -> PathBuf {
    let target = workspace().join("target").join("cc-agent");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "ferromega-agent",
            "--target",
            "x86_64-unknown-linux-gnu",
        ])
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_TARGET_DIR", &target)
        .current_dir(workspace())
        .status()
        .expect("cargo runs");
    assert!(status.success(), "building the static agent failed");
    target.join("x86_64-unknown-linux-gnu/release/ferromega-agent")
}

/// A copy of the container image `image` in `dir`, with a freshly built agent in it.
pub fn image_with_agent(image: &Path, dir: &Path) -> PathBuf {
    let fs = dir.join("minicccfs");
    let status = Command::new("cp")
        .arg("-a")
        .arg(image)
        .arg(&fs)
        .status()
        .expect("cp runs");
    assert!(status.success(), "copying the container image failed");
    std::fs::copy(static_agent(), fs.join("usr/bin/ferromega-agent"))
        .expect("copying the agent into the image");
    fs
}

/// The SHA-256 of a file, in hex (from `sha256sum`).
pub fn sha256(path: &Path) -> String {
    let out = Command::new("sha256sum")
        .arg(path)
        .output()
        .expect("sha256sum runs");
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// A `ferromega serve --accel tcg` on `base`, listening on `addr`, logging to
/// `<base>.log` (appended, so a restarted server's log follows the first one's). On drop
/// it gets SIGTERM first, so its graceful shutdown removes its VMs and containers (a
/// failing test leaves none behind); `crash` kills it as a crash would.
pub struct Server {
    /// The server process.
    pub child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
}

impl Server {
    /// Starts a server on `base` and waits until it listens on `addr`.
    pub fn start(base: &Path, addr: &str) -> Server {
        Server::start_with(base, addr, &[])
    }

    /// Starts a server on `base` with `extra` flags (`--network ovs` …) and waits until
    /// it listens on `addr`.
    pub fn start_with(base: &Path, addr: &str, extra: &[&str]) -> Server {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(base.with_extension("log"))
            .expect("server log");
        let child = Command::new(binary())
            .args(["serve", "--base"])
            .arg(base)
            .args(["--addr", addr, "--accel", "tcg", "--level", "info"])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start ferromega serve");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "server did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            addr: addr.to_string(),
        }
    }

    /// A client of the server.
    pub fn client(&self) -> Client {
        Client::new(&self.addr)
    }

    /// Kills the server with SIGKILL, as a crash would, and reaps it.
    pub fn crash(mut self) {
        self.child.kill().expect("kill server");
        self.child.wait().expect("reap server");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        terminate(&mut self.child, Duration::from_secs(30));
    }
}

/// Stops a server process as an operator would: SIGTERM (its graceful shutdown tears its
/// VMs down), then SIGKILL when it is still there after `grace`. Whether it stopped on
/// SIGTERM (or had already exited).
pub fn terminate(child: &mut std::process::Child, grace: Duration) -> bool {
    if let Ok(None) = child.try_wait() {
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        return false;
    }
    let _ = child.wait();
    true
}

/// Runs a line in namespace minimega; every response must succeed.
pub async fn ok(c: &Client, line: &str) -> Vec<Response> {
    let reply = c.command("minimega", line).await.expect("command");
    let resps: Vec<Response> = reply.batches.into_iter().flat_map(|b| b.resp).collect();
    for r in &resps {
        assert!(r.error.is_empty(), "`{line}` failed: {}", r.error);
    }
    resps
}

/// The value of `column` for VM `name` in `vm info`.
pub async fn info(c: &Client, name: &str, column: &str) -> String {
    let r = c
        .invoke("vm_info", "minimega", &Args::default())
        .await
        .expect("vm info");
    let t = &r[0];
    let col = t.header.iter().position(|h| h == column).expect("column");
    let namecol = t
        .header
        .iter()
        .position(|h| h == "name")
        .expect("name column");
    t.tabular
        .iter()
        .find(|row| row[namecol] == name)
        .map(|row| row[col].clone())
        .unwrap_or_else(|| panic!("no vm {name}"))
}

/// Whether the PNG bytes hold more than one colour.
pub fn png_is_not_blank(bytes: &[u8]) -> bool {
    assert_eq!(&bytes[1..4], b"PNG", "not a PNG");
    let decoder = png::Decoder::new(std::io::Cursor::new(bytes));
    let mut reader = decoder.read_info().expect("png header");
    let mut buf = vec![0; reader.output_buffer_size()];
    let frame = reader.next_frame(&mut buf).expect("png frame");
    let data = &buf[..frame.buffer_size()];
    data.iter().any(|b| *b != data[0])
}
