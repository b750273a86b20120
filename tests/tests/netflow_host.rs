//! Host test of NetFlow on Linux bridges (`LinuxNetwork`, called directly): `softflowd`
//! fed with the frames of a logical bridge exports v5 to our collector, which writes
//! minimega's ascii lines and the raw datagrams (gzipped); nothing is left running.
//! (`ovs_host.rs` tests NetFlow from Open vSwitch's exporter.)
//!
//! Re-runs itself under `unshare -n`. Needs root, iproute2, busybox and softflowd
//! (`misc/setup`); fails loudly when one is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::io::Read;

use ferromega_domain::backends::HostNetwork;
use ferromega_domain::network::{NetflowSink, NetflowSpec};
use ferromega_host_network::netflow::v5;
use ferromega_host_network::LinuxNetwork;
use ferromega_tests::netns::{self, at, leftover_links, rt, wait_for_flow, Endpoint};

/// Children of this process called `softflowd` (zombies excluded).
fn softflowds() -> Vec<String> {
    let me = std::process::id().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(Result::ok)
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            let Some((_, rest)) = stat.rsplit_once(") ") else {
                return false;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            stat.contains("(softflowd)")
                && f.first() != Some(&"Z")
                && f.get(1) == Some(&me.as_str())
        })
        .collect()
}

#[test]
fn softflowd_on_linux_bridges_feeds_ascii_and_gzipped_raw_captures() {
    if !netns::in_private_netns(
        "softflowd_on_linux_bridges_feeds_ascii_and_gzipped_raw_captures",
        &["busybox", "softflowd"],
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    rt().block_on(async {
        let net = LinuxNetwork::new();
        let (a, b) = (Endpoint::new(), Endpoint::new());
        for (e, n) in [(&a, 1), (&b, 2)] {
            net.veth_attach(
                e.pid(),
                "eth0",
                &format!("00:1b:21:00:02:0{n}"),
                Some(&at("fml_nf", 12)),
            )
            .await
            .unwrap();
            e.address(&format!("10.94.0.{n}/24"));
        }
        let spec = |file: &str, gzip, ascii| NetflowSpec {
            bridge: "fml_nf".into(),
            sink: NetflowSink::File {
                path: dir.path().join(file),
                gzip,
            },
            ascii,
        };
        let unknown = NetflowSpec {
            bridge: "fml_none".into(),
            ..spec("x", false, true)
        };
        assert_eq!(
            net.netflow_start(&unknown).await.unwrap_err(),
            "unknown bridge: fml_none"
        );
        net.netflow_timeout(1).await.unwrap();
        let text = net
            .netflow_start(&spec("flows.txt", false, true))
            .await
            .unwrap();
        let raw = net
            .netflow_start(&spec("flows.raw.gz", true, false))
            .await
            .unwrap();
        assert_eq!(softflowds().len(), 1, "one per logical bridge");
        // softflowd ages flows by packet time: keep traffic going past the timeout.
        let pinger = std::thread::spawn(move || {
            a.sh(&["busybox", "ping", "-c", "6", "-i", "1", "10.94.0.2"]);
            a
        });
        let lines = wait_for_flow(&dir.path().join("flows.txt"), "10.94.0.1", "10.94.0.2", 20);
        let a = pinger.join().unwrap();
        assert!(
            lines
                .lines()
                .any(|l| l.contains("\t1\t10.94.0.1:0\t<->\t10.94.0.2:")),
            "no ICMP flow:\n{lines}"
        );
        net.netflow_stop(text).await.unwrap();
        // softflowd exports what it still holds when the bridge's last capture stops.
        net.netflow_stop(raw).await.unwrap();
        assert_eq!(softflowds(), Vec::<String>::new(), "softflowd left running");
        let mut bytes = Vec::new();
        flate2::read::GzDecoder::new(std::fs::File::open(dir.path().join("flows.raw.gz")).unwrap())
            .read_to_end(&mut bytes)
            .unwrap();
        let p = v5::parse(&bytes).unwrap();
        assert!(p.records.iter().any(|r| r.protocol == 1), "{p:?}");

        net.reset().await;
        drop((a, b));
        assert_eq!(leftover_links(), Vec::<String>::new());
    });
}
