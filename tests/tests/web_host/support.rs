//! Shared by the web host tests (`console_host`, `browser`): a real `ferromega serve`
//! with QEMU under TCG over a temporary base, a KVM VM config for the test guest, and
//! WebSocket helpers. Every precondition fails loudly with the command that fixes it.

#![allow(dead_code, reason = "each test binary uses part of the support module")]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferromega_api::events::Event;
use ferromega_client::Client;
#[allow(
    unused_imports,
    reason = "each test binary uses part of the support module"
)]
pub use ferromega_tests::host::{
    binary, free_port, guest_images as images, info, ok, png_is_not_blank, workspace,
};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::Message;

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
    /// The self-signed certificate (PEM) of a server started with TLS.
    pub ca: Option<PathBuf>,
}

/// How to start a test server.
#[derive(Debug, Default)]
pub struct Opts {
    /// `--auth` with a fresh auth file whose token `tester` reaches everything.
    pub auth: bool,
    /// `--tls-cert`/`--tls-key` with a fresh self-signed certificate for 127.0.0.1.
    pub tls: bool,
    /// Users added to the auth file.
    pub users: Vec<User>,
    /// More `serve` flags.
    pub flags: Vec<String>,
}

/// A user of the auth file: name, password, rules as `(prefix, "ro"|"rw")`.
#[derive(Debug, Clone)]
pub struct User {
    /// The name.
    pub name: String,
    /// The password.
    pub password: String,
    /// Its `allow` rules.
    pub rules: Vec<(String, String)>,
}

impl User {
    /// A user with `rules`.
    pub fn new(name: &str, password: &str, rules: &[(&str, &str)]) -> User {
        User {
            name: name.into(),
            password: password.into(),
            rules: rules
                .iter()
                .map(|(p, a)| (p.to_string(), a.to_string()))
                .collect(),
        }
    }
}

/// A server whose auth file has user `alice` (password `wonderland`) limited to
/// namespace foo (its API read-write, its pages read-only), with VM `vmfoo` launched in
/// foo and `vmbar` in bar (QEMU starts paused). `prefix` names its temporary folder.
pub async fn alice_of_foo(prefix: &str) -> Server {
    let s = Server::start_opts(
        prefix,
        Opts {
            users: vec![User::new(
                "alice",
                "wonderland",
                &[("/api/v1/namespaces/foo/", "rw"), ("/ns/foo/", "ro")],
            )],
            ..Opts::default()
        },
    );
    let admin = s.client();
    launch_in(&admin, "foo", "vmfoo").await;
    launch_in(&admin, "bar", "vmbar").await;
    s
}

/// Runs `line` in namespace `ns`; every response must succeed.
pub async fn ok_in(c: &Client, ns: &str, line: &str) {
    let reply = c.command(ns, line).await.expect("command");
    for r in reply.batches.iter().flat_map(|b| &b.resp) {
        assert!(r.error.is_empty(), "`{line}` in {ns} failed: {}", r.error);
    }
}

/// Configures the test guest in `ns` and launches VM `name` there (QEMU starts paused).
pub async fn launch_in(c: &Client, ns: &str, name: &str) {
    let dir = images();
    let kernel = dir.join("miniccc.kernel");
    let initrd = dir.join("miniccc.initrd");
    ok_in(c, ns, &format!("vm config kernel {}", kernel.display())).await;
    ok_in(c, ns, &format!("vm config initrd {}", initrd.display())).await;
    ok_in(c, ns, "vm config memory 128").await;
    ok_in(c, ns, &format!("vm launch kvm {name}")).await;
}

/// Kills and flushes the VMs of namespace `ns` (`clear all` on drop sees only minimega).
pub async fn clear_ns(c: &Client, ns: &str) {
    let _ = c.command(ns, "vm kill all").await;
    let _ = c.command(ns, "vm flush").await;
}

/// Runs `ferromega auth <args>` with `stdin` as standard input; it must succeed.
pub fn auth_cmd(args: &[&std::ffi::OsStr], stdin: &str) -> String {
    use std::io::Write as _;
    let mut child = Command::new(binary())
        .arg("auth")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("ferromega auth");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("ferromega auth");
    assert!(
        out.status.success(),
        "ferromega auth {args:?} failed: {out:?}"
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

impl Server {
    /// Starts a server in a fresh temporary folder named with `prefix`.
    pub fn start(prefix: &str) -> Server {
        Server::start_with(prefix, false)
    }

    /// Starts a server; with `auth`, behind a fresh token file (`serve --auth`) whose one
    /// token is [`Server::token`].
    pub fn start_with(prefix: &str, auth: bool) -> Server {
        Server::start_opts(
            prefix,
            Opts {
                auth,
                ..Opts::default()
            },
        )
    }

    /// Starts a server as `opts` says.
    pub fn start_opts(prefix: &str, opts: Opts) -> Server {
        let auth = opts.auth || !opts.users.is_empty();
        let tmp = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .expect("tempdir");
        let base = tmp.path().join("base");
        std::fs::create_dir_all(&base).expect("base");
        let addr = format!("127.0.0.1:{}", free_port());
        let mut token = None;
        let mut cmd = Command::new(binary());
        cmd.arg("serve");
        if auth {
            let file = tmp.path().join("auth");
            let f = file.as_os_str();
            token = Some(auth_cmd(&["add-token".as_ref(), f, "tester".as_ref()], ""));
            for User {
                name,
                password,
                rules,
            } in &opts.users
            {
                auth_cmd(
                    &[
                        "add-user".as_ref(),
                        f,
                        name.as_ref(),
                        "--password-stdin".as_ref(),
                    ],
                    &format!("{password}\n"),
                );
                for (prefix, access) in rules {
                    auth_cmd(
                        &[
                            "allow".as_ref(),
                            f,
                            name.as_ref(),
                            prefix.as_ref(),
                            access.as_ref(),
                        ],
                        "",
                    );
                }
            }
            cmd.arg("--auth").arg(&file);
        }
        let mut ca = None;
        if opts.tls {
            let ck = rcgen::generate_simple_self_signed(vec![
                "127.0.0.1".to_string(),
                "localhost".to_string(),
            ])
            .expect("self-signed certificate");
            let cert = tmp.path().join("cert.pem");
            let key = tmp.path().join("key.pem");
            std::fs::write(&cert, ck.cert.pem()).expect("cert");
            std::fs::write(&key, ck.key_pair.serialize_pem()).expect("key");
            cmd.arg("--tls-cert").arg(&cert).arg("--tls-key").arg(&key);
            ca = Some(cert);
        }
        cmd.args(&opts.flags);
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
            ca,
        }
    }

    /// What a client of this server presents: its token, trusting its certificate.
    pub fn credentials(&self) -> ferromega_client::Credentials {
        ferromega_client::Credentials {
            token: self.token.clone(),
            user: None,
            ca: self
                .ca
                .as_ref()
                .map(|c| std::fs::read(c).expect("certificate")),
        }
    }

    /// A client of the server (with its token, if any).
    pub fn client(&self) -> Client {
        Client::connect(&self.url(""), &self.credentials()).expect("client")
    }

    /// `http://<addr><path>`, or `https://…` with TLS.
    pub fn url(&self, path: &str) -> String {
        let scheme = if self.ca.is_some() { "https" } else { "http" };
        format!("{scheme}://{}{path}", self.addr)
    }

    /// `ws://<addr><path>`, or `wss://…` with TLS.
    pub fn ws_url(&self, path: &str) -> String {
        let scheme = if self.ca.is_some() { "wss" } else { "ws" };
        format!("{scheme}://{}{path}", self.addr)
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
        let url = self.url("");
        let creds = self.credentials();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build();
            if let Ok(rt) = rt {
                let _ = rt.block_on(async {
                    tokio::time::timeout(Duration::from_secs(20), async {
                        match Client::connect(&url, &creds) {
                            Ok(c) => c.command("minimega", "clear all").await.is_ok(),
                            Err(_) => false,
                        }
                    })
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

/// A client WebSocket of the tests.
pub type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Reads exactly `n` bytes of RFB from binary frames (pings are skipped).
pub async fn read_rfb(ws: &mut Ws, buf: &mut Vec<u8>, n: usize) -> Vec<u8> {
    while buf.len() < n {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("RFB bytes in time")
            .expect("open")
            .expect("frame");
        match m {
            Message::Binary(b) => buf.extend_from_slice(&b),
            Message::Ping(_) | Message::Pong(_) => {}
            m => panic!("unexpected frame {m:?}"),
        }
    }
    buf.drain(..n).collect()
}

/// An RFB 3.8 handshake with no security, shared; returns the framebuffer size.
pub async fn rfb_handshake(ws: &mut Ws) -> (u16, u16) {
    let mut buf = Vec::new();
    assert_eq!(read_rfb(ws, &mut buf, 12).await, b"RFB 003.008\n");
    ws.send(Message::Binary(b"RFB 003.008\n".to_vec().into()))
        .await
        .unwrap();
    let count = read_rfb(ws, &mut buf, 1).await[0] as usize;
    let types = read_rfb(ws, &mut buf, count).await;
    assert!(
        types.contains(&1),
        "QEMU offers no None security: {types:?}"
    );
    ws.send(Message::Binary(vec![1u8].into())).await.unwrap();
    assert_eq!(
        read_rfb(ws, &mut buf, 4).await,
        [0, 0, 0, 0],
        "security result"
    );
    ws.send(Message::Binary(vec![1u8].into())).await.unwrap(); // ClientInit: shared
    let init = read_rfb(ws, &mut buf, 24).await;
    let w = u16::from_be_bytes([init[0], init[1]]);
    let h = u16::from_be_bytes([init[2], init[3]]);
    let name_len = u32::from_be_bytes([init[20], init[21], init[22], init[23]]) as usize;
    read_rfb(ws, &mut buf, name_len).await;
    (w, h)
}

/// The frames of a client WebSocket, over plain TCP or TLS.
pub trait Frames:
    futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
    + futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
    + Unpin
{
}

impl<S> Frames for S where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>>
        + futures_util::Sink<Message, Error = tokio_tungstenite::tungstenite::Error>
        + Unpin
{
}

/// Types `line` into a terminal console and reads until `want` shows up (20 s at most).
pub async fn terminal_answers(ws: &mut impl Frames, line: &str, want: &str) {
    ws.send(Message::Binary(line.as_bytes().to_vec().into()))
        .await
        .unwrap();
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !String::from_utf8_lossy(&got).contains(want) {
        let m = tokio::time::timeout_at(deadline, ws.next())
            .await
            .unwrap_or_else(|_| {
                panic!("{want:?} not seen; got {:?}", String::from_utf8_lossy(&got))
            })
            .expect("open")
            .expect("frame");
        if let Message::Binary(b) = m {
            got.extend_from_slice(&b);
        }
    }
}

/// The next event of an events WebSocket (pings skipped; 20 s at most).
pub async fn next_event(ws: &mut impl Frames) -> Event {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}
