//! Host test of the dashboard across the mesh: three ferromega hosts in their own network
//! namespaces (as `mesh_host.rs`); the events WebSocket of h1 carries the VMs that h2 and
//! h3 run in a namespace spanning them (and not those of h2's own `minimega`), a console
//! ticket from h1 opens the terminal of a container on h2 through the peer link, a hung-up
//! peer's VMs leave the stream and come back when it is dialed again, a flush removes
//! them, and the peer console endpoint refuses a caller without the cluster secret. A KVM
//! guest's VNC console on h3 opens from h1 too (RFB through the peer link), and the keys
//! sent through it land in a kb recording made on h3.
//! Needs root, iproute2, busybox, cgroups, overlayfs and the container image.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "mesh_host/cluster.rs"]
#[allow(dead_code, reason = "shared with mesh_host.rs, which uses all of it")]
mod cluster;
#[path = "web_host/support.rs"]
mod support;

use std::time::Duration;

use cluster::{block, image, in_private_netns, launch_on, ok, Cluster, SECRET};
use ferromega_api::events::{ConsoleTicket, Event, VmSummary};
use futures_util::SinkExt;
use support::{next_event, rfb_handshake, terminal_answers, Ws};
use tokio_tungstenite::tungstenite::Message;

async fn events_of(addr: &str) -> Ws {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events"))
        .await
        .unwrap();
    ws
}

/// Reads events until `want` matches one (within 60 s); every VM event seen on the way
/// is returned too (in order), to check what must not have come.
async fn wait_for(ws: &mut Ws, what: &str, want: impl Fn(&Event) -> bool) -> Vec<Event> {
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let e = tokio::time::timeout_at(deadline, next_event(ws))
            .await
            .unwrap_or_else(|_| panic!("no event {what} in 60 s; saw {seen:?}"));
        let done = want(&e);
        if !matches!(e, Event::HostStats { .. }) {
            seen.push(e);
        }
        if done {
            return seen;
        }
    }
}

fn is_vm(e: &Event, name: &str, host: &str, state: &str) -> bool {
    matches!(e, Event::Vm { vm } if vm.name == name && vm.host == host && vm.state == state)
}

fn is_removed(e: &Event, vm: &str, on: &str) -> bool {
    matches!(e, Event::VmRemoved { name, host, .. } if name == vm && host == on)
}

fn names(e: &Event) -> Vec<String> {
    match e {
        Event::Vm { vm } => vec![vm.name.clone()],
        Event::Snapshot { vms, .. } => vms.iter().map(|v: &VmSummary| v.name.clone()).collect(),
        _ => Vec::new(),
    }
}

/// An RFB handshake through `ws`, then the key `a` pressed and released.
async fn rfb_press_a(ws: &mut Ws) {
    rfb_handshake(ws).await;
    for down in [1u8, 0] {
        let key = vec![4, down, 0, 0, 0, 0, 0, 0x61];
        ws.send(Message::Binary(key.into())).await.unwrap();
    }
}

/// A console ticket from `addr` for VM `vm` of namespace dash.
async fn ticket(addr: &str, vm: &str) -> ConsoleTicket {
    let url = format!("http://{addr}/api/v1/namespaces/dash/vms/{vm}/console");
    let r = reqwest::Client::new().post(url).send().await.unwrap();
    assert_eq!(r.status(), 200, "ticket for {vm}");
    r.json().await.unwrap()
}

#[test]
fn the_dashboard_of_one_host_follows_and_opens_the_vms_of_others() {
    if !in_private_netns("the_dashboard_of_one_host_follows_and_opens_the_vms_of_others") {
        return;
    }
    let fs = image();
    let mut cl = Cluster::start(3);
    let (h1, h2) = (&cl.hosts[0], &cl.hosts[1]);
    let c = h1.client();
    block(async {
        let mut ev = events_of(&h1.addr).await;
        assert!(matches!(next_event(&mut ev).await, Event::Snapshot { .. }));
        launch_on(&c, "dash", &[("web", "h2"), ("db", "h3")]).await;
        ok(&c, "dash", "vm start all").await;
        let mut seen = wait_for(&mut ev, "web RUNNING", |e| is_vm(e, "web", "h2", "RUNNING")).await;
        // The two hosts' events interleave: db may have come first.
        let db_running = |e: &Event| is_vm(e, "db", "h3", "RUNNING");
        if !seen.iter().any(db_running) {
            seen.extend(wait_for(&mut ev, "db RUNNING", db_running).await);
        }

        // h2's own `minimega` is not h1's: its VMs stay off h1's stream. h2's events
        // arrive in order, so once `marker` (launched after) is seen, `lonely` would
        // have been too.
        let c2 = h2.client();
        ok(
            &c2,
            "minimega",
            &format!("vm config filesystem {}", fs.display()),
        )
        .await;
        ok(&c2, "minimega", "vm launch container lonely").await;
        launch_on(&c, "dash", &[("marker", "h2")]).await;
        seen.extend(wait_for(&mut ev, "marker", |e| is_vm(e, "marker", "h2", "BUILDING")).await);
        assert!(
            !seen.iter().flat_map(names).any(|n| n == "lonely"),
            "{seen:?}"
        );

        // A new reader's snapshot holds the other hosts' VMs.
        let mut fresh = events_of(&h1.addr).await;
        let Event::Snapshot { vms, .. } = next_event(&mut fresh).await else {
            panic!("no snapshot first");
        };
        let mut placed: Vec<(String, String)> = vms
            .iter()
            .filter(|v| v.namespace == "dash")
            .map(|v| (v.name.clone(), v.host.clone()))
            .collect();
        placed.sort();
        assert_eq!(
            placed,
            [("db", "h3"), ("marker", "h2"), ("web", "h2")]
                .map(|(n, h)| (n.to_string(), h.to_string()))
        );
        assert!(!vms.iter().any(|v| v.name == "lonely"), "{vms:?}");
        drop(fresh);

        // The console of web, on h2, opened on h1: the bytes go through the peer link.
        let http = reqwest::Client::new();
        let t = ticket(&h1.addr, "web").await;
        assert_eq!((t.kind.as_str(), t.name.as_str()), ("terminal", "web"));
        let (mut term, _) = tokio_tungstenite::connect_async(format!("ws://{}{}", h1.addr, t.url))
            .await
            .unwrap();
        terminal_answers(&mut term, "echo mesh-$((6*7)) $(hostname)\n", "mesh-42 web").await;
        drop(term);
        // A KVM guest's VNC console on h3, opened on h1, recorded on h3.
        let guest = ferromega_tests::host::guest_config(&ferromega_tests::host::guest_images());
        for line in guest.iter().map(String::as_str).chain([
            "vm config schedule h3",
            "vm launch kvm screen",
            "vm start screen",
        ]) {
            ok(&c, "dash", line).await;
        }
        // `vnc record` is local, as in minimega: h3 records its own VM.
        let c3 = cl.hosts[2].client();
        ok(&c3, "dash", "vnc record kb screen typed.kb").await;
        let t = ticket(&h1.addr, "screen").await;
        assert_eq!(t.kind, "vnc");
        let (mut vnc, _) = tokio_tungstenite::connect_async(format!("ws://{}{}", h1.addr, t.url))
            .await
            .unwrap();
        rfb_press_a(&mut vnc).await;
        let recorded = cl.files_dir(3).join("typed.kb");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let text = std::fs::read_to_string(&recorded).unwrap_or_default();
            if text.contains("KeyEvent,true,a") && text.contains("KeyEvent,false,a") {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "h3 did not record the keys sent through h1: {text:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(vnc);

        // Its graphs on h1 come from h2.
        let g: serde_json::Value = http
            .get(format!(
                "http://{}/api/v1/namespaces/dash/graphs?vm=web",
                h1.addr
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            (g["host"].as_str(), g["vm"].as_str()),
            (Some("h2"), Some("web")),
            "{g}"
        );

        // A VM no host has is refused as on one host.
        let none = http
            .post(format!(
                "http://{}/api/v1/namespaces/dash/vms/nope/console",
                h1.addr
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(none.status(), 404);
        assert!(none.text().await.unwrap().contains("vm not found: nope"));

        // The peer console endpoint wants the cluster secret.
        let peer_console = |token: &str| {
            http.get(format!("http://{}/api/v1/mesh/peer/console", h2.addr))
                .query(&[("namespace", "dash"), ("vm", "web")])
                .header("Authorization", format!("Bearer {token}"))
                .header("Connection", "upgrade")
                .header("Upgrade", "ferromega-console")
                .send()
        };
        assert_eq!(peer_console("not-the-secret").await.unwrap().status(), 401);
        assert_eq!(peer_console(SECRET).await.unwrap().status(), 101);

        // A hung-up peer's VMs leave the stream; dialed again, they come back.
        ok(&c, "minimega", "mesh hangup h3").await;
        wait_for(&mut ev, "db removed", |e| is_removed(e, "db", "h3")).await;
        ok(&c, "minimega", "mesh dial 10.77.0.3:9001").await;
        wait_for(&mut ev, "db RUNNING", |e| is_vm(e, "db", "h3", "RUNNING")).await;

        // Flushed on their hosts, they are removed from h1's stream.
        ok(&c, "dash", "vm kill web").await;
        ok(&c, "dash", "vm flush").await;
        wait_for(&mut ev, "web removed", |e| is_removed(e, "web", "h2")).await;
        ok(&c, "dash", "clear namespace dash").await;
        ok(&c2, "minimega", "vm kill lonely").await;
        ok(&c2, "minimega", "vm flush").await;
    });
    // Each host is followed by the others (open streaming answers): each still stops on
    // SIGTERM at once (a graceful shutdown waits for open answers).
    for h in &mut cl.hosts {
        let t0 = std::time::Instant::now();
        let stopped = h.terminate();
        let took = t0.elapsed();
        assert!(
            stopped && took < Duration::from_secs(5),
            "{} took {took:?} to stop on SIGTERM while its peers followed its events",
            h.name
        );
    }
}
