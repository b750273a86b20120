//! Host test of the mesh over TLS: three ferromega hosts serving HTTPS with certificates
//! one test CA signed (as `mesh_host.rs`, each in its own network namespace) form the
//! mesh over https; fan-out `vm info` of containers on h2 and h3 from h1, `file get`
//! from a peer, h1's events stream carrying the peers' VMs and a console of a VM on h2
//! opened on h1 all cross the TLS peer link; a fourth host whose certificate another
//! CA signed is refused both ways, and `mesh dial` says why. Discovery over TLS joins
//! the hosts of one CA and not a stranger announcing in the same context. Needs root, iproute2,
//! busybox, cgroups, overlayfs and the container image; fails loudly when one is
//! missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "mesh_host/cluster.rs"]
#[allow(dead_code, reason = "shared with mesh_host.rs, which uses all of it")]
mod cluster;
#[path = "web_host/support.rs"]
mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::{
    block, cell, errors, in_private_netns, launch_on, ok, placement, resps, Cluster, Host,
};
use ferromega_api::events::{ConsoleTicket, Event};
use support::{next_event, terminal_answers};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;

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
    let cl = Cluster::start_tls(3, 1, false);
    let (h1, h4) = (&cl.hosts[0], &cl.hosts[3]);
    let c = h1.client();
    block(async {
        let list = resps(&c, "minimega", "mesh list").await[0].response.clone();
        assert!(list.contains(" |--h2") && list.contains(" |--h3"), "{list}");
        assert!(!list.contains("h4"), "{list}");

        // Fan-out over https: containers on h2 and h3, listed from h1 with the host column.
        launch_on(&c, "tls", &[("web", "h2"), ("db", "h3")]).await;
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

#[test]
fn discovery_over_tls_joins_the_hosts_of_one_ca_only() {
    if !in_private_netns("discovery_over_tls_joins_the_hosts_of_one_ca_only") {
        return;
    }
    // All three announce in one context; h3's certificate is another CA's.
    let cl = Cluster::start_tls(2, 1, true);
    block(async {
        let list = resps(&cl.hosts[0].client(), "minimega", "mesh list").await[0]
            .response
            .clone();
        assert_eq!(list, "h1\n |--h2\nh2\n |--h1", "{list}");
        // h3 heard the others and they heard it: every dial was refused.
        tokio::time::sleep(Duration::from_secs(3)).await;
        let c3 = cl.hosts[2].client();
        assert_eq!(cell(&c3, "minimega", "mesh status", "size").await, "1");
        assert_eq!(
            cell(&cl.hosts[0].client(), "minimega", "mesh status", "size").await,
            "2"
        );
        assert!(cl.log(3).contains("certificate"), "{}", cl.log(3));
    });
}
