//! Host test of the mesh over TLS: three ferromega hosts serving HTTPS with certificates
//! one test CA signed (as `mesh_host.rs`, each in its own network namespace) form the
//! mesh over https; fan-out `vm info` of containers on h2 and h3 from h1, `file get`
//! from a peer, h1's events stream carrying the peers' VMs and a console of a VM on h2
//! opened on h1 all cross the TLS peer link; a fourth host whose certificate another
//! CA signed is refused both ways, and `mesh dial` says why. Needs root, iproute2,
//! busybox, cgroups, overlayfs and the container image; fails loudly when one is
//! missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "mesh_host/cluster.rs"]
#[allow(dead_code, reason = "shared with mesh_host.rs, which uses all of it")]
mod cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::{block, cell, errors, image, in_private_netns, ok, placement, resps, Cluster, Host};
use ferromega_api::events::{ConsoleTicket, Event};
use futures_util::{SinkExt, StreamExt};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_tungstenite::tungstenite::Message;

type Wss =
    tokio_tungstenite::WebSocketStream<tokio_rustls::client::TlsStream<tokio::net::TcpStream>>;

/// A WebSocket over TLS to `path` of host `h`, trusting only its CA.
async fn wss(h: &Host, path: &str) -> Wss {
    let mut roots = rustls::RootCertStore::empty();
    let pem = h.ca().unwrap();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(pem) {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(ferromega_http::tls::provider())
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(&h.addr).await.unwrap();
    let ip = h.addr.rsplit_once(':').unwrap().0.to_string();
    let name = rustls::pki_types::ServerName::try_from(ip).unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .unwrap();
    let (ws, _) = tokio_tungstenite::client_async(format!("wss://{}{path}", h.addr), tls)
        .await
        .unwrap();
    ws
}

/// The next text frame of `ws`, as an event.
async fn next_event(ws: &mut Wss) -> Event {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(40), ws.next())
            .await
            .expect("an event in time")
            .expect("open")
            .expect("frame");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// (name, host) of namespace `ns`'s VMs in a fresh events snapshot of `h`, once it
/// holds `want` of them (the peers' streams are followed from their first heartbeat).
async fn snapshot_of(h: &Host, ns: &str, want: usize) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut ws = wss(h, "/api/v1/events").await;
        let Event::Snapshot { vms, .. } = next_event(&mut ws).await else {
            panic!("no snapshot first");
        };
        let mut got: Vec<(String, String)> = vms
            .into_iter()
            .filter(|v| v.namespace == ns)
            .map(|v| (v.name, v.host))
            .collect();
        got.sort();
        if got.len() >= want || Instant::now() > deadline {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Types `line` into a terminal console and reads until `want` shows up.
async fn terminal_answers(ws: &mut Wss, line: &str, want: &str) {
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

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn the_mesh_runs_over_tls_and_refuses_a_host_another_ca_signed() {
    if !in_private_netns("the_mesh_runs_over_tls_and_refuses_a_host_another_ca_signed") {
        return;
    }
    let fs = image();
    let cl = Cluster::start_tls(3, 1);
    let (h1, h4) = (&cl.hosts[0], &cl.hosts[3]);
    let c = h1.client();
    block(async {
        let list = resps(&c, "minimega", "mesh list").await[0].response.clone();
        assert!(list.contains(" |--h2") && list.contains(" |--h3"), "{list}");
        assert!(!list.contains("h4"), "{list}");

        // Fan-out over https: containers on h2 and h3, listed from h1 with the host column.
        ok(&c, "tls", &format!("vm config filesystem {}", fs.display())).await;
        ok(&c, "tls", "vm config memory 16").await;
        ok(&c, "tls", "vm config schedule h2").await;
        ok(&c, "tls", "vm launch container web").await;
        ok(&c, "tls", "vm config schedule h3").await;
        ok(&c, "tls", "vm launch container db").await;
        ok(&c, "tls", "vm start all").await;
        let want = pairs(&[("db", "h3"), ("web", "h2")]);
        assert_eq!(placement(&c, "tls").await, want);

        // file get from a peer.
        std::fs::write(cl.files_dir(3).join("over-tls"), "secret bytes").unwrap();
        ok(&c, "minimega", "file get over-tls").await;
        assert_eq!(
            std::fs::read_to_string(cl.files_dir(1).join("over-tls")).unwrap(),
            "secret bytes"
        );

        // The peers' VM events reach h1's stream over the same link.
        assert_eq!(snapshot_of(h1, "tls", 2).await, want);
        // A console of web (on h2) opened on h1: the upgrade crosses the TLS link.
        let http = reqwest::Client::builder()
            .tls_built_in_root_certs(false)
            .add_root_certificate(reqwest::Certificate::from_pem(h1.ca().unwrap()).unwrap())
            .build()
            .unwrap();
        let t: ConsoleTicket = http
            .post(format!(
                "https://{}/api/v1/namespaces/tls/vms/web/console",
                h1.addr
            ))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!((t.kind.as_str(), t.name.as_str()), ("terminal", "web"));
        let mut term = wss(h1, &t.url).await;
        terminal_answers(&mut term, "echo tls-$((6*7)) $(hostname)\n", "tls-42 web").await;
        drop(term);

        // h4's certificate is signed by another CA: refused both ways, and said why.
        for (from, to) in [(&c, "10.77.0.4:9001"), (&h4.client(), "10.77.0.1:9001")] {
            let e = errors(from, "minimega", &format!("mesh dial {to}")).await;
            assert_eq!(e.len(), 1, "{e:?}");
            assert!(
                e[0].contains(&format!("cannot dial {to}")) && e[0].contains("certificate"),
                "{e:?}"
            );
        }
        let size = |h: &Host| {
            let c = h.client();
            async move { cell(&c, "minimega", "mesh status", "size").await }
        };
        assert_eq!(size(h1).await, "3");
        assert_eq!(size(h4).await, "1");

        ok(&c, "minimega", "clear namespace tls").await;
    });
}
