//! Host test: `vnc` against a real QEMU (TCG) running the guest image — keys typed
//! through `vnc inject` and through the dashboard's console relay are kb-recorded, the
//! recording played back types the same command into the guest's tty1 shell again (seen
//! with `cc exec hostname`), fb recording writes framebuffer updates, playback controls
//! work, and bad input is refused leaving nothing running. Needs root, QEMU and the guest
//! image with its agent (`misc/test` builds it); fails loudly when any is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "web_host/support.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use ferromega_client::Client;
use ferromega_domain::vnc::fb::read_chunks;
use ferromega_domain::vnc::kbfile::{Event, Line};
use futures_util::{SinkExt, StreamExt};
use support::{info, ok, ws_request, Server};
use tokio_tungstenite::tungstenite::Message;

/// The error text of a line that must fail.
async fn fails(c: &Client, line: &str) -> String {
    let reply = c.command("minimega", line).await.expect("command");
    let errors: Vec<String> = reply
        .batches
        .into_iter()
        .flat_map(|b| b.resp)
        .map(|r| r.error)
        .filter(|e| !e.is_empty())
        .collect();
    assert!(!errors.is_empty(), "`{line}` succeeded");
    errors.join("\n")
}

/// Rows of the `vnc` listing: (name, type, time, filename).
async fn listing(c: &Client) -> Vec<Vec<String>> {
    ok(c, "vnc").await[0].tabular.clone()
}

/// The events (`KeyEvent,…`) to type `text` and press Return.
fn keystrokes(text: &str) -> Vec<String> {
    let mut names: Vec<String> = text
        .chars()
        .map(|c| match c {
            ' ' => "space".to_string(),
            c => c.to_string(),
        })
        .collect();
    names.push("Return".into());
    names
        .iter()
        .flat_map(|n| [format!("KeyEvent,true,{n}"), format!("KeyEvent,false,{n}")])
        .collect()
}

/// Runs `cc exec <cmd>` as command number `id` and waits for the guest's stdout.
async fn cc_exec(c: &Client, base: &Path, uuid: &str, id: u32, cmd: &str) -> String {
    ok(c, &format!("cc exec {cmd}")).await;
    let out = base.join(format!("files/miniccc_responses/{id}/{uuid}/stdout"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(s) = std::fs::read_to_string(&out) {
            return s.trim().to_string();
        }
        assert!(Instant::now() < deadline, "no answer to `cc exec {cmd}`");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Types `text` + Return through the dashboard's console relay (a ticketed WebSocket).
async fn type_through_console(s: &Server, text: &str) {
    let t: ferromega_api::events::ConsoleTicket = reqwest::Client::new()
        .post(s.url("/api/v1/namespaces/minimega/vms/vm0/console"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let origin = format!("http://{}", s.addr);
    let (mut ws, _) =
        tokio_tungstenite::connect_async(ws_request(&s.ws_url(&t.url), Some(&origin)))
            .await
            .unwrap();
    // RFB 3.8: version, security None, shared ClientInit; then the keys. The replies are
    // not needed: QEMU reads the client's messages in order.
    let mut out = b"RFB 003.008\n".to_vec();
    out.extend([1, 1]);
    for k in keystrokes(text) {
        let Ok(Event::Input(i)) = Event::parse(&k) else {
            panic!("{k}");
        };
        out.extend(i.encode());
    }
    // Sent in pieces, as a browser would.
    for piece in out.chunks(7) {
        ws.send(Message::Binary(piece.to_vec().into()))
            .await
            .unwrap();
    }
    // Read until QEMU has answered the handshake (ServerInit arrived), then leave.
    let mut got = 0;
    while got < 12 + 2 + 4 + 24 {
        match tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .unwrap()
        {
            Some(Ok(Message::Binary(b))) => got += b.len(),
            Some(Ok(_)) => {}
            other => panic!("console closed: {other:?}"),
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    ws.close(None).await.unwrap();
}

async fn wait_playback_done(c: &Client) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while listing(c).await.iter().any(|r| r[1] == "playback kb") {
        assert!(Instant::now() < deadline, "playback never ended");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnc_records_plays_and_injects_into_a_real_guest() {
    let s = Server::start("fm-vnc-");
    s.configure_guest().await;
    let c = s.client();
    let files = s.base.join("files");
    ok(&c, "vm launch kvm vm0").await;
    ok(&c, "vm start vm0").await;
    let deadline = Instant::now() + Duration::from_secs(180);
    while info(&c, "vm0", "cc_active").await != "true" {
        assert!(
            Instant::now() < deadline,
            "the guest's agent never checked in (is the guest image built with its agent?)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let uuid = info(&c, "vm0", "uuid").await;

    // The events stream pushes host figures every second and each new screenshot.
    let (mut events, _) =
        tokio_tungstenite::connect_async(ws_request(&s.ws_url("/api/v1/events"), None))
            .await
            .unwrap();
    ok(&c, "vm screenshot vm0 300").await;
    let (mut shot, mut stats) = (false, false);
    while !(shot && stats) {
        let m = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("screenshot and host_stats events in time")
            .unwrap()
            .unwrap();
        let Message::Text(t) = m else { continue };
        match serde_json::from_str(t.as_str()).unwrap() {
            ferromega_api::events::Event::Screenshot { name, bytes, .. } => {
                assert_eq!(name, "vm0");
                assert!(bytes > 100, "{bytes}-byte screenshot");
                shot = true;
            }
            ferromega_api::events::Event::HostStats { host, mem, .. } => {
                assert!(!host.is_empty() && mem > 0.0, "{t}");
                stats = true;
            }
            _ => {}
        }
    }
    drop(events);
    let cc_id = std::cell::Cell::new(0);
    let cc = async |cmd: &str| {
        cc_id.set(cc_id.get() + 1);
        cc_exec(&c, &s.base, &uuid, cc_id.get(), cmd).await
    };

    // Record while keys arrive by injection and through the console relay.
    ok(&c, "vnc record kb vm0 rec/typed.kb").await;
    ok(&c, "vnc record fb vm0 screen.fb").await;
    let rows = listing(&c).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0][0].as_str(), rows[0][1].as_str()),
        ("vm0", "record kb")
    );
    assert_eq!(rows[1][1], "record fb");
    assert_eq!(
        fails(&c, "vnc record kb vm0 other.kb").await,
        "kb recording for vm0 already running"
    );
    // "hostname vncrec" + Return: the first word injected, the rest typed in the console.
    let all = keystrokes("hostname vncrec");
    let (injected, _) = all.split_at(2 * "hostname ".len());
    for k in injected {
        ok(&c, &format!("vnc inject vm0 {k}")).await;
    }
    type_through_console(&s, "vncrec").await;
    assert_eq!(
        cc("hostname").await,
        "vncrec",
        "the typed command did not run"
    );
    ok(&c, "vnc stop kb vm0").await;

    let text = std::fs::read_to_string(files.join("rec/typed.kb")).unwrap();
    let recorded: Vec<String> = text
        .lines()
        .map(|l| match Line::parse(l).unwrap() {
            Line::Event { event, .. } => event.to_string(),
            other => panic!("unexpected line {other:?}"),
        })
        .collect();
    assert_eq!(recorded, all, "the recording:\n{text}");

    // Played back into the guest, the recording types the command again.
    // (`hostname reset` prints nothing, so it leaves no stdout file to wait for.)
    ok(&c, "cc exec hostname reset").await;
    cc_id.set(cc_id.get() + 1);
    let deadline = Instant::now() + Duration::from_secs(60);
    while cc("hostname").await != "reset" {
        assert!(Instant::now() < deadline, "`hostname reset` did not run");
    }
    ok(&c, "vnc play vm0 rec/typed.kb").await;
    assert_eq!(
        fails(&c, "vnc play vm0 rec/typed.kb").await,
        "kb playback vm0 already playing"
    );
    wait_playback_done(&c).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while cc("hostname").await != "vncrec" {
        if Instant::now() > deadline {
            let shot = std::env::temp_dir().join("fm-vnc-playback.png");
            ok(&c, &format!("vm screenshot vm0 file {}", shot.display())).await;
            panic!(
                "the playback did not type; the screen is in {}",
                shot.display()
            );
        }
    }

    // fb recording: gzipped chunks of what QEMU sent — FramebufferUpdate messages.
    tokio::time::sleep(Duration::from_millis(500)).await;
    ok(&c, "vnc stop fb vm0").await;
    let fb = std::fs::read(files.join("screen.fb")).unwrap();
    let chunks = read_chunks(fb.as_slice()).unwrap();
    let bytes: usize = chunks.iter().map(|c| c.1.len()).sum();
    assert!(
        !chunks.is_empty() && chunks[0].1[0] == 0,
        "no framebuffer update"
    );
    assert!(bytes > 100_000, "only {bytes} bytes of screen recorded");

    // Playback controls, on a file of harmless pointer moves with a long pause.
    std::fs::write(
        files.join("slow.kb"),
        "# two moves, ten seconds apart\n0:PointerEvent,0,10,10\n10000000000:PointerEvent,0,20,20\n",
    )
    .unwrap();
    ok(&c, "vnc play vm0 slow.kb").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let step = ok(&c, "vnc getstep vm0").await;
    assert_eq!(step[0].response, "10000000000:PointerEvent,0,20,20");
    assert!(listing(&c).await[0][2].ends_with(" remaining"));
    ok(&c, "vnc pause vm0").await;
    assert_eq!(listing(&c).await[0][2], "PAUSED");
    assert_eq!(fails(&c, "vnc pause vm0").await, "playback not pauseable");
    ok(&c, "vnc continue vm0").await;
    assert_eq!(fails(&c, "vnc continue vm0").await, "playback not playable");
    ok(&c, "vnc inject vm0 PointerEvent,0,5,5").await;
    ok(&c, "vnc step vm0").await;
    wait_playback_done(&c).await;

    // LoadFile plays another file in place (relative to the file naming it), and an
    // injected LoadFile starts a playback; what they send is recorded like any input.
    std::fs::create_dir_all(files.join("sub")).unwrap();
    std::fs::write(
        files.join("sub/inner.kb"),
        "1000:PointerEvent,0,1,1\n1000:PointerEvent,0,2,2\n",
    )
    .unwrap();
    std::fs::write(
        files.join("outer.kb"),
        "0:PointerEvent,0,9,9\n0:LoadFile,sub/inner.kb\n0:PointerEvent,0,3,3\n",
    )
    .unwrap();
    ok(&c, "vnc record kb vm0 nested.kb").await;
    ok(&c, "vnc play vm0 outer.kb").await;
    wait_playback_done(&c).await;
    ok(&c, "vnc inject vm0 LoadFile,sub/inner.kb").await;
    wait_playback_done(&c).await;
    ok(&c, "vnc stop kb vm0").await;
    let nested: Vec<String> = std::fs::read_to_string(files.join("nested.kb"))
        .unwrap()
        .lines()
        .map(|l| l.split_once(':').unwrap().1.to_string())
        .collect();
    assert_eq!(
        nested,
        [
            "PointerEvent,0,9,9",
            "PointerEvent,0,1,1",
            "PointerEvent,0,2,2",
            "PointerEvent,0,3,3",
            "PointerEvent,0,1,1",
            "PointerEvent,0,2,2",
        ]
    );

    // Bad input: clear errors, nothing left running.
    assert_eq!(
        fails(&c, "vnc record kb nope x.kb").await,
        "vm not found: nope"
    );
    assert!(fails(&c, "vnc record kb vm0 /proc/no/such/dir/x.kb")
        .await
        .contains("/proc/no/such/dir/x.kb"));
    assert!(fails(&c, "vnc play vm0 missing.kb")
        .await
        .contains("No such file"));
    assert!(!files.join("missing.kb").exists());
    assert_eq!(
        fails(&c, "vnc stop kb vm0").await,
        "kb recording for vm0 not found"
    );
    assert_eq!(
        fails(&c, "vnc stop fb vm0").await,
        "fb recording for vm0 not found"
    );
    assert_eq!(fails(&c, "vnc stop vm0").await, "kb playback vm0 not found");
    assert_eq!(
        fails(&c, "vnc inject vm0 KeyEvent,true,NoSuchKey").await,
        "unknown key: `NoSuchKey`"
    );
    assert!(listing(&c).await.is_empty());

    // `clear vnc` stops everything; so does flushing the VM.
    ok(&c, "vnc record kb vm0 a.kb").await;
    ok(&c, "vnc record fb vm0 a.fb").await;
    ok(&c, "vnc play vm0 slow.kb").await;
    assert_eq!(listing(&c).await.len(), 3);
    ok(&c, "clear vnc").await;
    assert!(listing(&c).await.is_empty());
    // The fb file was finished (a whole gzip stream) before `clear vnc` returned.
    read_chunks(std::fs::read(files.join("a.fb")).unwrap().as_slice()).unwrap();
    // A restarted VM can be fb-recorded again: the recording of its old QEMU is over.
    ok(&c, "vnc record kb vm0 b.kb").await;
    ok(&c, "vnc record fb vm0 b.fb").await;
    ok(&c, "vm kill vm0").await;
    ok(&c, "vm start vm0").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reply = c
            .command("minimega", "vnc record fb vm0 c.fb")
            .await
            .unwrap();
        let error = reply.batches[0].resp[0].error.clone();
        if error.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "fb recording after a restart: {error}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(listing(&c).await.len(), 2);
    ok(&c, "vm kill vm0").await;
    ok(&c, "vm flush").await;
    assert!(listing(&c).await.is_empty());
}
