//! Host test of the network backend (`LinuxNetwork`, called directly): Linux bridges per
//! VLAN, veths into network namespaces, ports moving between VLANs, pcap captures
//! (snaplen, BPF), tc rate and nftables loss, dnsmasq leases seen by IP snooping.
//! `network_server.rs` drives the same through a real server.
//!
//! Every test re-runs itself under `unshare -n`, so all bridges, taps and veths live in
//! a private network namespace; traffic only flows between namespaces the test made.
//! Needs root, iproute2, busybox, tcpdump, iperf3, nftables and dnsmasq; fails loudly
//! when one is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferromega_domain::backends::HostNetwork;
use ferromega_domain::network::{
    CaptureSpec, CaptureTarget, DnsmasqSpec, HostTapIp, HostTapSpec, Qos,
};
use ferromega_host_network::LinuxNetwork;
use ferromega_tests::netns::{
    self, at, is_icmp, leftover_links, read_pcap, rt, run, stdout, Endpoint,
};

/// Runs `name` in a fresh network namespace with the tools these tests need.
fn in_private_netns(name: &str) -> bool {
    netns::in_private_netns(name, &["busybox", "tc", "nft"])
}

#[test]
fn vlans_isolate_and_ports_move_between_them() {
    if !in_private_netns("vlans_isolate_and_ports_move_between_them") {
        return;
    }
    rt().block_on(async {
        let net = LinuxNetwork::new();
        let (a, b, c) = (Endpoint::new(), Endpoint::new(), Endpoint::new());
        net.veth_attach(
            a.pid(),
            "eth0",
            "00:1b:21:00:00:01",
            Some(&at("fmt_br", 10)),
        )
        .await
        .unwrap();
        let tb = net
            .veth_attach(
                b.pid(),
                "eth0",
                "00:1b:21:00:00:02",
                Some(&at("fmt_br", 10)),
            )
            .await
            .unwrap();
        let tc = net
            .veth_attach(
                c.pid(),
                "eth0",
                "00:1b:21:00:00:03",
                Some(&at("fmt_br", 20)),
            )
            .await
            .unwrap();
        a.address("10.91.0.1/24");
        b.address("10.91.0.2/24");
        c.address("10.91.0.3/24");
        assert!(a.pings("10.91.0.2"), "same VLAN must connect");
        assert!(!a.pings("10.91.0.3"), "different VLANs must not");

        net.port_connect(&tc, &at("fmt_br", 10)).await.unwrap();
        assert!(a.pings("10.91.0.3"), "moved to the same VLAN");
        net.port_disconnect(&tb).await.unwrap();
        assert!(!a.pings("10.91.0.2"), "disconnected");
        net.port_connect(&tb, &at("fmt_br2", 10)).await.unwrap();
        assert!(
            !a.pings("10.91.0.2"),
            "same VLAN number on another bridge is apart"
        );

        let bridges = net.bridges().await;
        let names: Vec<&str> = bridges.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["fmt_br", "fmt_br2"]);
        assert_eq!(bridges[0].vlans, [10], "VLAN 20 went with its last port");

        net.reset().await;
        drop((a, b, c));
        assert_eq!(leftover_links(), Vec::<String>::new());
    });
}

#[test]
fn pcap_captures_honour_snaplen_and_bpf() {
    if !in_private_netns("pcap_captures_honour_snaplen_and_bpf") {
        return;
    }
    rt().block_on(async {
        let net = LinuxNetwork::new();
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (Endpoint::new(), Endpoint::new());
        let ta = net
            .veth_attach(
                a.pid(),
                "eth0",
                "00:1b:21:00:01:01",
                Some(&at("fmt_cap", 7)),
            )
            .await
            .unwrap();
        net.veth_attach(
            b.pid(),
            "eth0",
            "00:1b:21:00:01:02",
            Some(&at("fmt_cap", 7)),
        )
        .await
        .unwrap();
        a.address("10.92.0.1/24");
        b.address("10.92.0.2/24");
        assert!(a.pings("10.92.0.2"));

        let tap_file = dir.path().join("tap.pcap");
        let spec = |target, path: &Path, snaplen, filter: &str| CaptureSpec {
            target,
            path: path.to_path_buf(),
            snaplen,
            filter: filter.into(),
        };
        let c1 = net
            .capture_start(&spec(
                CaptureTarget::Interface(ta.clone()),
                &tap_file,
                64,
                "icmp",
            ))
            .await
            .unwrap();
        let br_file = dir.path().join("bridge.pcap");
        let c2 = net
            .capture_start(&spec(
                CaptureTarget::Bridge("fmt_cap".into()),
                &br_file,
                1600,
                "",
            ))
            .await
            .unwrap();
        let o = a.sh(&[
            "busybox",
            "ping",
            "-c",
            "3",
            "-s",
            "500",
            "-W",
            "1",
            "10.92.0.2",
        ]);
        assert!(o.status.success());
        tokio::time::sleep(Duration::from_millis(300)).await;
        let s1 = net.capture_stop(c1).await.unwrap();
        net.capture_stop(c2).await.unwrap();

        let (snaplen, frames) = read_pcap(&tap_file);
        assert_eq!(snaplen, 64);
        assert_eq!(frames.len(), 6, "3 requests and 3 replies on the tap");
        assert_eq!(s1.packets, 6);
        for (cap, len, bytes) in &frames {
            assert_eq!(*cap, 64, "truncated to the snaplen");
            assert!(*len >= 528, "original length kept: {len}");
            assert!(is_icmp(bytes), "the BPF filter kept only ICMP");
        }
        let (_, frames) = read_pcap(&br_file);
        let icmp = frames.iter().filter(|f| is_icmp(&f.2)).count();
        assert_eq!(icmp, 6, "each frame once as it enters the bridge");
        assert!(
            frames.iter().all(|f| f.0 == f.1),
            "snaplen 1600 keeps whole frames"
        );

        let bad = net
            .capture_start(&spec(
                CaptureTarget::Interface(ta.clone()),
                &tap_file,
                64,
                "icmp and",
            ))
            .await
            .unwrap_err();
        assert!(bad.contains("invalid BPF filter"), "{bad}");
        let unwritable = Path::new("/proc/ferromega/none.pcap");
        let bad = net
            .capture_start(&spec(CaptureTarget::Interface(ta), unwritable, 64, ""))
            .await
            .unwrap_err();
        assert!(bad.contains("cannot write capture file"), "{bad}");
        net.reset().await;
    });
}

/// iperf3 throughput from `from` to `ip`, Mbit/s.
fn iperf_mbit(from: &Endpoint, to: &Endpoint, ip: &str) -> f64 {
    let pid = to.pid().to_string();
    let mut server = Command::new("nsenter")
        .args(["-t", &pid, "-n", "--", "iperf3", "-s", "-1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let o = from.sh(&["iperf3", "-c", ip, "-t", "2", "-J"]);
    let _ = server.kill();
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .unwrap()
        / 1e6
}

/// How many of 50 quick pings from `a` to `ip` were answered.
fn echoes_back(a: &Endpoint, ip: &str) -> u32 {
    let o = a.sh(&["busybox", "ping", "-c", "50", "-i", "0.02", "-W", "1", ip]);
    let text = stdout(&o);
    text.split(" packets received")
        .next()
        .and_then(|s| s.rsplit(", ").next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("ping output: {text}"))
}

#[test]
fn rate_and_loss_qos_shape_traffic_towards_the_port() {
    if !in_private_netns("rate_and_loss_qos_shape_traffic_towards_the_port") {
        return;
    }
    assert!(
        run(&["sh", "-c", "command -v iperf3"]).status.success(),
        "iperf3 missing: apt-get install iperf3"
    );
    rt().block_on(async {
        let net = LinuxNetwork::new();
        let (a, b) = (Endpoint::new(), Endpoint::new());
        net.veth_attach(
            a.pid(),
            "eth0",
            "00:1b:21:00:02:01",
            Some(&at("fmt_qos", 5)),
        )
        .await
        .unwrap();
        let tb = net
            .veth_attach(
                b.pid(),
                "eth0",
                "00:1b:21:00:02:02",
                Some(&at("fmt_qos", 5)),
            )
            .await
            .unwrap();
        a.address("10.93.0.1/24");
        b.address("10.93.0.2/24");
        let free = iperf_mbit(&a, &b, "10.93.0.2");
        let rate = Qos {
            rate: Some((20, "mbit".into())),
            ..Qos::default()
        };
        net.qos_apply(&tb, &rate).await.unwrap();
        let shaped = iperf_mbit(&a, &b, "10.93.0.2");
        eprintln!("iperf3: unshaped {free:.0} Mbit/s, rate 20mbit {shaped:.1} Mbit/s");
        assert!(free > 100.0, "unshaped only {free} Mbit/s");
        assert!(shaped < 25.0 && shaped > 5.0, "shaped to {shaped} Mbit/s");

        let loss = Qos {
            loss: Some("40".into()),
            ..Qos::default()
        };
        net.qos_apply(&tb, &loss).await.unwrap();
        let received = echoes_back(&a, "10.93.0.2");
        assert!(
            (10..=45).contains(&received),
            "{received}/50 echoes came back"
        );

        // Rate and loss together (beyond 2.4): here tbf for the rate and nftables for
        // the loss, both in place at once.
        let both = Qos {
            rate: Some((20, "mbit".into())),
            loss: Some("40".into()),
            delay: None,
        };
        net.qos_apply(&tb, &both).await.unwrap();
        let qdisc = stdout(&run(&["tc", "qdisc", "show", "dev", &tb]));
        assert!(
            qdisc.contains("tbf") && qdisc.contains("rate 20Mbit"),
            "{qdisc}"
        );
        let rules = stdout(&run(&["nft", "list", "ruleset"]));
        assert!(rules.contains("numgen"), "{rules}");
        let received = echoes_back(&a, "10.93.0.2");
        assert!(
            (1..=49).contains(&received),
            "rate+loss: {received}/50 echoes came back"
        );

        let delay = Qos {
            delay: Some("100ms".into()),
            ..Qos::default()
        };
        let e = net.qos_apply(&tb, &delay).await;
        if let Err(e) = e {
            assert!(e.contains("netem"), "{e}");
        }
        net.qos_apply(&tb, &Qos::default()).await.unwrap();
        net.reset().await;
        assert_eq!(stdout(&run(&["nft", "list", "ruleset"])).trim(), "");
    });
}

#[test]
fn dnsmasq_on_a_host_tap_hands_out_a_lease_that_is_snooped() {
    if !in_private_netns("dnsmasq_on_a_host_tap_hands_out_a_lease_that_is_snooped") {
        return;
    }
    rt().block_on(async {
        let net = LinuxNetwork::new();
        let dir = tempfile::tempdir().unwrap();
        let tap = net
            .host_tap_create(&HostTapSpec {
                name: Some("fmt_host0".into()),
                attach: at("fmt_dhcp", 30),
                ip: HostTapIp::Static("10.94.0.1/24".into()),
            })
            .await
            .unwrap();
        assert_eq!(tap, "fmt_host0");
        for sub in ["hosts", "dhcp-hosts", "dhcp-opts"] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let pid = net
            .dnsmasq_start(&DnsmasqSpec {
                dir: dir.path().to_path_buf(),
                dhcp: Some(("10.94.0.1".into(), "10.94.0.50".into(), "10.94.0.60".into())),
                config: None,
            })
            .await
            .unwrap();
        let a = Endpoint::new();
        let mac = "00:1b:21:00:03:01";
        net.veth_attach(a.pid(), "eth0", mac, Some(&at("fmt_dhcp", 30)))
            .await
            .unwrap();
        assert!(a.sh(&["ip", "link", "set", "eth0", "up"]).status.success());
        let o = a.sh(&[
            "busybox",
            "udhcpc",
            "-i",
            "eth0",
            "-n",
            "-q",
            "-f",
            "-t",
            "5",
            "-s",
            "/bin/true",
        ]);
        assert!(
            o.status.success(),
            "no lease: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let ip = net
                .snooped()
                .get(mac)
                .map(|s| s.ip.clone())
                .unwrap_or_default();
            if ip.starts_with("10.94.0.") {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "lease not snooped: {:?}",
                net.snooped()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        net.dnsmasq_kill(pid).await.unwrap();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "dnsmasq still runs"
        );
        net.reset().await;
        drop(a);
        assert_eq!(leftover_links(), Vec::<String>::new());
    });
}
