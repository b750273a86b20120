//! Shared by the web host tests (`console_host`, `browser`): a real `ferromega serve`
//! with QEMU under TCG over a temporary base, a KVM VM config for the test guest, and
//! WebSocket helpers. Every precondition fails loudly with the command that fixes it.

#![allow(dead_code, reason = "each test binary uses part of the support module")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferromega_client::Client;
#[allow(
    unused_imports,
    reason = "each test binary uses part of the support module"
)]
pub use ferromega_tests::host::{
    binary, free_port, guest_images as images, info, ok, png_is_not_blank, workspace,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// The container image (`minicccfs`), checked, with what containers need of the host.
pub fn container_image() -> PathBuf {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let root = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|v| v.split_whitespace().next())
        == Some("0");
    assert!(root, "container consoles need root");
    let dir = ferromega_tests::host::images_dir();
    let fs = dir.join("minicccfs");
    assert!(
        fs.join("init").is_file(),
        "{} missing: run `misc/images/build {}`",
        fs.display(),
        dir.display()
    );
    fs
}

/// A `ferromega serve --accel tcg` over `<tmp>/base`, killed (with its VMs cleared) on drop.
pub struct Server {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// The base directory.
    pub base: PathBuf,
    /// The temporary folder holding the base and the log.
    pub tmp: tempfile::TempDir,
    /// The bearer token, for a server started with `--auth`.
    pub token: Option<String>,
}

impl Server {
    /// Starts a server in a fresh temporary folder named with `prefix`.
    pub fn start(prefix: &str) -> Server {
        Server::start_with(prefix, false)
    }

    /// Starts a server; with `auth`, behind a fresh token file (`serve --auth`) whose one
    /// token is [`Server::token`].
    pub fn start_with(prefix: &str, auth: bool) -> Server {
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        let base = tmp.path().join("base");
        std::fs::create_dir_all(&base).expect("base");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut token = None;
        let mut cmd = Command::new(binary());
        if auth {
            let file = tmp.path().join("tokens");
            let out = Command::new(binary())
                .args(["auth", "add-token"])
                .arg(&file)
                .arg("tester")
                .output()
                .expect("ferromega auth add-token");
            assert!(out.status.success(), "auth add-token failed: {out:?}");
            token = Some(String::from_utf8_lossy(&out.stdout).trim().to_string());
            cmd.arg("serve").arg("--auth").arg(&file);
        } else {
            cmd.arg("serve");
        }
        let child = cmd
            .arg("--base")
            .arg(&base)
            .args(["--addr", &addr, "--accel", "tcg", "--level", "info"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("server.log")).expect("log"))
            .spawn()
            .expect("start ferromega serve");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "server did not listen on {addr}");
            std::thread::sleep(Duration::from_millis(50));
        }
        Server {
            child,
            addr,
            base,
            tmp,
            token,
        }
    }

    /// A client of the server (with its token, if any).
    pub fn client(&self) -> Client {
        Client::with_token(&self.addr, self.token.as_deref())
    }

    /// `http://<addr><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// `ws://<addr><path>`.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    /// Configures the test guest (kernel, initrd, 128 MB) in namespace minimega.
    pub async fn configure_guest(&self) {
        let images = images();
        let c = self.client();
        let kernel = images.join("miniccc.kernel");
        let initrd = images.join("miniccc.initrd");
        ok(&c, &format!("vm config kernel {}", kernel.display())).await;
        ok(&c, &format!("vm config initrd {}", initrd.display())).await;
        ok(
            &c,
            "vm config append console=ttyS0 no_timer_check quiet panic=-1",
        )
        .await;
        ok(&c, "vm config memory 128").await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // `clear all` kills the QEMUs; a killed server would leave them running.
        let addr = self.addr.clone();
        let token = self.token.clone();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                let _ = rt.block_on(async {
                    tokio::time::timeout(
                        Duration::from_secs(20),
                        Client::with_token(&addr, token.as_deref())
                            .command("minimega", "clear all"),
                    )
                    .await
                });
            }
        })
        .join();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A WebSocket request for `url`, with an `Origin` header when given.
pub fn ws_request(
    url: &str,
    origin: Option<&str>,
) -> tokio_tungstenite::tungstenite::handshake::client::Request {
    let mut req = url.into_client_request().expect("ws request");
    if let Some(o) = origin {
        req.headers_mut()
            .insert("origin", HeaderValue::from_str(o).expect("origin header"));
    }
    req
}

/// The HTTP status a refused WebSocket handshake got.
pub async fn ws_refusal(req: tokio_tungstenite::tungstenite::handshake::client::Request) -> u16 {
    match tokio_tungstenite::connect_async(req).await {
        Ok(_) => panic!("the WebSocket was accepted"),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("unexpected WebSocket error {e}"),
    }
}
