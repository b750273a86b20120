//! Host test: the live endpoints against a real QEMU — the VNC console relay speaks RFB
//! with QEMU's unix socket through a ticket (two viewers at once), tickets are single-use
//! and bound to their VM, the Origin is checked, and the events WebSocket pushes a
//! snapshot and then state changes. Needs root, QEMU and the guest image
//! (`misc/images/build target/images`); fails loudly when any is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "web_host/support.rs"]
mod support;

use std::time::Duration;

use ferromega_api::events::{ConsoleTicket, Event};
use futures_util::StreamExt;
use support::{next_event, ok, rfb_handshake, ws_refusal, ws_request, Server, Ws};
use tokio_tungstenite::tungstenite::Message;

async fn ticket(s: &Server, vm: &str) -> ConsoleTicket {
    let r = reqwest::Client::new()
        .post(s.url(&format!("/api/v1/namespaces/minimega/vms/{vm}/console")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    r.json().await.unwrap()
}

async fn ticket_status(s: &Server, vm: &str) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(s.url(&format!("/api/v1/namespaces/minimega/vms/{vm}/console")))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn open_console(s: &Server, vm: &str) -> Ws {
    let t = ticket(s, vm).await;
    assert_eq!(t.kind, "vnc");
    let origin = format!("http://{}", s.addr);
    let (ws, _) = tokio_tungstenite::connect_async(ws_request(&s.ws_url(&t.url), Some(&origin)))
        .await
        .unwrap();
    ws
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vnc_console_relays_rfb_from_qemu_with_single_use_tickets() {
    let s = Server::start("fm-console-");
    s.configure_guest().await;
    let c = s.client();

    // The events stream starts with a snapshot, then pushes the launch.
    let (mut events, _) =
        tokio_tungstenite::connect_async(ws_request(&s.ws_url("/api/v1/events"), None))
            .await
            .unwrap();
    match next_event(&mut events).await {
        Event::Snapshot { vms, .. } => assert!(vms.is_empty(), "{vms:?}"),
        e => panic!("expected a snapshot first, got {e:?}"),
    }
    ok(&c, "vm launch kvm vm0").await;
    let mut seen = Vec::new();
    while !seen.contains(&"BUILDING".to_string()) {
        if let Event::Vm { vm } = next_event(&mut events).await {
            assert_eq!(vm.name, "vm0");
            seen.push(vm.state);
        }
    }

    // Two viewers at once, each with its own ticket, both get QEMU's screen.
    let mut a = open_console(&s, "vm0").await;
    let mut b = open_console(&s, "vm0").await;
    let (w, h) = rfb_handshake(&mut a).await;
    assert!(w >= 320 && h >= 200, "framebuffer {w}x{h}");
    assert_eq!(rfb_handshake(&mut b).await, (w, h));

    // A ticket opens once.
    let t = ticket(&s, "vm0").await;
    let url = s.ws_url(&t.url);
    let (first, _) = tokio_tungstenite::connect_async(ws_request(&url, None))
        .await
        .unwrap();
    drop(first);
    assert_eq!(ws_refusal(ws_request(&url, None)).await, 403);
    // A ticket names its VM; asking for another one uses it up.
    let t = ticket(&s, "vm0").await;
    let wrong = format!("{}&ns=minimega&vm=vm1", s.ws_url(&t.url));
    assert_eq!(ws_refusal(ws_request(&wrong, None)).await, 403);
    assert_eq!(ws_refusal(ws_request(&s.ws_url(&t.url), None)).await, 403);
    // Another site's page may not open it.
    let t = ticket(&s, "vm0").await;
    let evil = ws_request(&s.ws_url(&t.url), Some("http://evil.example"));
    assert_eq!(ws_refusal(evil).await, 403);
    assert_eq!(
        ws_refusal(ws_request(
            &s.ws_url("/api/v1/events"),
            Some("http://evil.example")
        ))
        .await,
        403
    );
    // No ticket for a VM that does not exist.
    let (status, body) = ticket_status(&s, "nope").await;
    assert_eq!(status, 404, "{body}");
    assert!(body.contains("vm not found: nope"), "{body}");

    // State changes are pushed.
    ok(&c, "vm start vm0").await;
    let mut state = String::new();
    while state != "RUNNING" {
        if let Event::Vm { vm } = next_event(&mut events).await {
            state = vm.state;
        }
    }

    // A ticket issued before the VM was killed opens nothing after.
    let t = ticket(&s, "vm0").await;
    ok(&c, "vm kill vm0").await;
    assert_eq!(ws_refusal(ws_request(&s.ws_url(&t.url), None)).await, 409);
    let (status, body) = ticket_status(&s, "vm0").await;
    assert_eq!(status, 409, "{body}");
    // The open consoles were closed by QEMU's exit.
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(Ok(m)) = a.next().await {
            if let Message::Close(_) = m {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the console stayed open after the VM died");

    ok(&c, "vm flush").await;
    loop {
        if let Event::VmRemoved { name, .. } = next_event(&mut events).await {
            assert_eq!(name, "vm0");
            break;
        }
    }
}
