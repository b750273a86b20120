//! Host test: TLS and the auth file against a real server with real QEMUs.
//!
//! - `serve --tls-cert --tls-key` with a self-signed certificate made here: commands over
//!   https (the client and the CLI with `--ca`), the events and a VNC console WebSocket
//!   over wss, and a plain-HTTP request to the TLS port gets no HTTP answer.
//! - A user limited to namespace foo (HTTP Basic): reads and acts in foo, gets 403 for
//!   namespace bar (its VMs, its actions, its console tickets, command lines — nested
//!   `namespace bar (…)` too — and the CLI as alice),
//!   401 with a bad password, and an events stream without bar's VMs; an `auth allow`
//!   while the server runs lets it read bar.
//!
//! Needs root, QEMU and the guest image (`misc/images/build target/images`); fails loudly
//! when any is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "web_host/support.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use ferromega_api::events::{ConsoleTicket, Event};
use ferromega_api::Args;
use ferromega_client::{Client, ClientError, Credentials};
use futures_util::StreamExt;
use support::{alice_of_foo, auth_cmd, binary, clear_ns, launch_in, ws_request, Opts, Server};
use tokio_rustls::rustls;
use tokio_tungstenite::tungstenite::Message;

/// A TLS connection to the server that trusts only its certificate.
async fn tls_stream(s: &Server) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    for c in ferromega_http::tls::load_certs(s.ca.as_ref().unwrap()).unwrap() {
        roots.add(c).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(ferromega_http::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&s.addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap()
}

/// The next text or binary frame, skipping pings.
async fn next_frame<S>(ws: &mut S) -> Message
where
    S: futures_util::Stream<Item = Result<Message, tokio_tungstenite::tungstenite::Error>> + Unpin,
{
    loop {
        let m = tokio::time::timeout(Duration::from_secs(30), ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("frame");
        if !matches!(m, Message::Ping(_) | Message::Pong(_)) {
            return m;
        }
    }
}

fn snapshot_names(m: Message) -> Vec<String> {
    let Message::Text(t) = m else {
        panic!("expected a text frame, got {m:?}")
    };
    match serde_json::from_str::<Event>(t.as_str()).unwrap() {
        Event::Snapshot { vms, .. } => vms
            .into_iter()
            .map(|v| format!("{}/{}", v.namespace, v.name))
            .collect(),
        e => panic!("expected the snapshot first, got {e:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn over_tls_commands_events_and_consoles_work_and_plain_http_is_refused() {
    let s = Server::start_opts(
        "fm-tls-",
        Opts {
            tls: true,
            ..Opts::default()
        },
    );
    let c = s.client();
    launch_in(&c, "minimega", "vm0").await;

    // The CLI over https, trusting the certificate with --ca; without it, refused.
    let ca = s.ca.clone().unwrap();
    let out = std::process::Command::new(binary())
        .args(["--addr", &s.url(""), "--ca"])
        .arg(&ca)
        .args(["-e", ".columns name,state vm info"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.contains("vm0"), "{out:?}");
    let out = std::process::Command::new(binary())
        .args(["--addr", &s.url(""), "-e", "vm info"])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an unknown certificate must be refused"
    );

    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest::get(format!("http://{}/api/v1/suggest?line=vm", s.addr)).await;
    assert!(plain.is_err(), "plain http got an answer: {plain:?}");

    // The events WebSocket over wss: a snapshot with vm0.
    let tls = tls_stream(&s).await;
    let (mut events, _) =
        tokio_tungstenite::client_async(ws_request(&s.ws_url("/api/v1/events"), None), tls)
            .await
            .unwrap();
    assert!(snapshot_names(next_frame(&mut events).await).contains(&"minimega/vm0".into()));

    // A VNC console over wss: QEMU's RFB greeting comes through the relay.
    let r = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap())
        .build()
        .unwrap()
        .post(s.url("/api/v1/namespaces/minimega/vms/vm0/console"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let t: ConsoleTicket = r.json().await.unwrap();
    let tls = tls_stream(&s).await;
    let (mut console, _) =
        tokio_tungstenite::client_async(ws_request(&s.ws_url(&t.url), None), tls)
            .await
            .unwrap();
    let mut got = Vec::new();
    while got.len() < 12 {
        match next_frame(&mut console).await {
            Message::Binary(b) => got.extend_from_slice(&b),
            m => panic!("unexpected frame {m:?}"),
        }
    }
    assert_eq!(&got[..12], b"RFB 003.008\n");
    clear_ns(&c, "minimega").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_user_of_one_namespace_cannot_see_or_act_on_another() {
    let s = alice_of_foo("fm-users-").await;
    let admin = s.client();
    let creds = |pw: &str| Credentials {
        user: Some(("alice".into(), pw.into())),
        ..Credentials::default()
    };
    let alice = Client::connect(&s.url(""), &creds("wonderland")).unwrap();
    let status = |r: Result<Vec<ferromega_api::Response>, ClientError>| match r {
        Ok(_) => 200,
        Err(ClientError::Api { status, .. }) => status,
        Err(e) => panic!("{e}"),
    };

    // foo: visible and actionable.
    let info = alice
        .invoke("vm_info", "foo", &Args::default())
        .await
        .unwrap();
    assert!(info[0]
        .tabular
        .iter()
        .any(|row| row.contains(&"vmfoo".to_string())));
    let mut target = Args::default();
    target.strings.insert("vm".into(), "vmfoo".into());
    assert_eq!(status(alice.invoke("vm_start", "foo", &target).await), 200);

    // bar: neither visible nor actionable, and nothing changes there.
    assert_eq!(
        status(alice.invoke("vm_info", "bar", &Args::default()).await),
        403
    );
    let mut bar = Args::default();
    bar.strings.insert("vm".into(), "vmbar".into());
    assert_eq!(status(alice.invoke("vm_kill", "bar", &bar).await), 403);
    let still = admin
        .invoke("vm_info", "bar", &Args::default())
        .await
        .unwrap();
    assert!(still[0]
        .tabular
        .iter()
        .any(|row| row.contains(&"vmbar".to_string())));
    // Command lines: what the endpoints allow, nested ones included.
    let errors = |r: ferromega_api::CommandReply| -> Vec<String> {
        r.batches
            .into_iter()
            .flat_map(|b| b.resp)
            .map(|r| r.error)
            .filter(|e| !e.is_empty())
            .collect()
    };
    let e = errors(
        alice
            .command("foo", "namespace bar vm kill all")
            .await
            .unwrap(),
    );
    assert_eq!(e, vec!["forbidden: namespace bar".to_string()]);
    let e = errors(alice.command("bar", "vm kill all").await.unwrap());
    assert_eq!(
        e,
        vec!["forbidden: POST /api/v1/namespaces/bar/vm/kill".to_string()]
    );
    let e = errors(alice.command("foo", "shell true").await.unwrap());
    assert_eq!(e, vec!["forbidden: POST /api/v1/shell".to_string()]);
    let e = errors(alice.command("foo", ".csv true").await.unwrap());
    assert!(e[0].contains("changes the server for everyone"), "{e:?}");
    let reply = alice.command("foo", ".columns name vm info").await.unwrap();
    assert!(reply.batches[0].rendered.contains("vmfoo"), "{reply:?}");
    // The CLI, as alice: her namespace works, the other is refused.
    let cli = |ns: &str, line: &str| {
        std::process::Command::new(binary())
            .args([
                "--addr",
                &s.url(""),
                "--user",
                "alice",
                "--namespace",
                ns,
                "-e",
                line,
            ])
            .env("FERROMEGA_PASSWORD", "wonderland")
            .output()
            .unwrap()
    };
    let out = cli("foo", ".columns name,state vm info");
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("vmfoo"),
        "{out:?}"
    );
    let out = cli("bar", "vm info");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("forbidden: POST /api/v1/namespaces/bar/vm/info"),
        "{out:?}"
    );
    let bar_rows = admin
        .invoke("vm_info", "bar", &Args::default())
        .await
        .unwrap();
    let row = bar_rows[0]
        .tabular
        .iter()
        .find(|row| row.contains(&"vmbar".to_string()))
        .unwrap();
    assert!(
        !row.contains(&"QUIT".to_string()),
        "vmbar was killed: {row:?}"
    );

    // Console tickets: foo's VM yes, bar's no.
    let basic = reqwest::Client::new();
    let ticket = |ns: &str, vm: &str| {
        basic
            .post(s.url(&format!("/api/v1/namespaces/{ns}/vms/{vm}/console")))
            .basic_auth("alice", Some("wonderland"))
            .send()
    };
    assert_eq!(ticket("foo", "vmfoo").await.unwrap().status(), 200);
    assert_eq!(ticket("bar", "vmbar").await.unwrap().status(), 403);

    // A bad password: 401, saying so.
    let wrong = Client::connect(&s.url(""), &creds("wonder")).unwrap();
    match wrong.invoke("vm_info", "foo", &Args::default()).await {
        Err(ClientError::Api { status: 401, body }) => {
            assert!(body.errors[0].error.contains("bad user name or password"))
        }
        r => panic!("a bad password was not refused with 401: {r:?}"),
    }

    // The events stream shows alice foo's VM and not bar's.
    let mut req = ws_request(&s.ws_url("/api/v1/events"), None);
    use base64::Engine as _;
    let pair = base64::engine::general_purpose::STANDARD.encode("alice:wonderland");
    req.headers_mut()
        .insert("authorization", format!("Basic {pair}").parse().unwrap());
    let (mut events, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    let names = snapshot_names(next_frame(&mut events).await);
    assert!(names.contains(&"foo/vmfoo".to_string()), "{names:?}");
    assert!(!names.iter().any(|n| n.starts_with("bar/")), "{names:?}");

    // An edit of the auth file applies without a restart: bar readable, still not killable.
    let file = s.tmp.path().join("auth");
    auth_cmd(
        &[
            "allow".as_ref(),
            file.as_os_str(),
            "alice".as_ref(),
            "/api/v1/namespaces/bar/".as_ref(),
            "ro".as_ref(),
        ],
        "",
    );
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(
        status(alice.invoke("vm_info", "bar", &Args::default()).await),
        200
    );
    assert_eq!(status(alice.invoke("vm_kill", "bar", &bar).await), 403);

    clear_ns(&admin, "foo").await;
    clear_ns(&admin, "bar").await;
}
