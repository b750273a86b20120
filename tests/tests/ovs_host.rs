//! Host test of the Open vSwitch backend (`OvsNetwork`, called directly) on a private
//! ovsdb-server + ovs-vswitchd (userspace datapath): VLAN isolation between endpoints,
//! ports moving between VLANs and bridges, host taps, KVM taps, trunks, vxlan and gre
//! tunnels, a bridge capture through a mirror port, NetFlow from OVS's exporter, and
//! nothing left behind — no bridge, port, tap, veth or process.
//!
//! Every test re-runs itself under `unshare -n` with a switch of its own. Needs root,
//! iproute2, busybox and openvswitch-switch (`misc/setup`); fails loudly when Open
//! vSwitch cannot start.

use std::path::Path;

use ferromega_domain::backends::HostNetwork;
use ferromega_domain::network::{
    CaptureSpec, CaptureTarget, HostTapIp, HostTapSpec, NetflowSink, NetflowSpec, Qos, TunnelKind,
};
use ferromega_host_network::ovs::switch::alive;
use ferromega_host_network::ovs::PrivateSwitch;
use ferromega_host_network::OvsNetwork;
use ferromega_tests::netns::{
    self, at, is_icmp, leftover_links, read_pcap, rt, run, stdout, wait_for_flow, Endpoint,
};

fn in_private_netns(name: &str) -> bool {
    netns::in_private_netns(
        name,
        &["busybox", "ovs-vsctl", "ovsdb-server", "ovs-vswitchd"],
    )
}

/// A private Open vSwitch in `dir`; the test fails when it cannot start.
fn switch(dir: &Path) -> PrivateSwitch {
    PrivateSwitch::start(dir).unwrap_or_else(|e| {
        panic!("Open vSwitch cannot start here: {e} (misc/setup installs openvswitch-switch)")
    })
}

fn vsctl(db: &str, args: &[&str]) -> String {
    let mut a = vec!["ovs-vsctl", "--timeout=5"];
    let d = format!("--db={db}");
    a.push(&d);
    a.extend_from_slice(args);
    let out = run(&a);
    assert!(out.status.success(), "ovs-vsctl {args:?}: {out:?}");
    stdout(&out).trim().to_string()
}

/// In the inner run of test `name` (in its fresh network namespace): a temporary
/// folder, a private switch in it and the switch's database; None in the outer run.
fn setup(name: &str) -> Option<(tempfile::TempDir, PrivateSwitch, String)> {
    if !in_private_netns(name) {
        return None;
    }
    let dir = tempfile::tempdir().expect("temporary folder");
    let sw = switch(&dir.path().join("ovs"));
    let db = sw.db();
    Some((dir, sw, db))
}

/// Adds a new veth `trunk` (peer `<trunk>1`) to `br` as a trunk and a vxlan tunnel;
/// returns the tunnel's name.
async fn trunk_and_tunnel(net: &OvsNetwork, br: &str, trunk: &str) -> String {
    let peer = format!("{trunk}1");
    let made = run(&[
        "ip", "link", "add", trunk, "type", "veth", "peer", "name", &peer,
    ]);
    assert!(made.status.success(), "{made:?}");
    net.trunk_add(br, trunk).await.expect("trunk");
    net.tunnel_add(br, TunnelKind::Vxlan, "10.99.0.2")
        .await
        .expect("tunnel")
}

/// Stops the switch and checks neither daemon is left, nor any interface.
fn stop_switch(sw: PrivateSwitch) {
    let pids = sw.pids();
    assert_eq!(pids.len(), 2, "both OVS daemons ran");
    drop(sw);
    assert!(
        pids.iter().all(|p| !alive(*p)),
        "OVS daemons left running: {pids:?}"
    );
    assert_eq!(leftover_links(), Vec::<String>::new());
}

#[test]
fn ovs_vlans_isolate_ports_move_and_clear_all_leaves_nothing() {
    let Some((dir, sw, db)) = setup("ovs_vlans_isolate_ports_move_and_clear_all_leaves_nothing")
    else {
        return;
    };
    rt().block_on(async {
        let net = OvsNetwork::new(Some(db.clone()));
        let (a, b, c) = (Endpoint::new(), Endpoint::new(), Endpoint::new());
        let mac = |n: u8| format!("00:1b:21:00:00:{n:02x}");
        let ta = net
            .veth_attach(a.pid(), "eth0", &mac(1), Some(&at("fmo_br", 10)))
            .await
            .unwrap();
        let tb = net
            .veth_attach(b.pid(), "eth0", &mac(2), Some(&at("fmo_br", 10)))
            .await
            .unwrap();
        let tc = net
            .veth_attach(c.pid(), "eth0", &mac(3), Some(&at("fmo_br", 20)))
            .await
            .unwrap();
        assert_eq!(vsctl(&db, &["get", "Port", &ta, "tag"]), "10");
        a.address("10.92.0.1/24");
        b.address("10.92.0.2/24");
        c.address("10.92.0.3/24");
        assert!(a.connects("10.92.0.2"), "same VLAN must connect");
        assert!(!a.pings("10.92.0.3"), "different VLANs must not");

        // A bridge capture: a mirror port receives everything.
        let pcap = dir.path().join("bridge.pcap");
        let spec = CaptureSpec {
            target: CaptureTarget::Bridge("fmo_br".into()),
            path: pcap.clone(),
            snaplen: 1600,
            filter: "icmp".into(),
        };
        let cap = net.capture_start(&spec).await.unwrap();
        assert!(vsctl(&db, &["list", "Mirror"]).contains("select_all          : true"));
        assert!(a.connects("10.92.0.2"));
        // The userspace datapath mirrors a moment later: let the last frames land.
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let stats = net.capture_stop(cap).await.unwrap();
        assert_eq!(vsctl(&db, &["list", "Mirror"]), "", "mirror removed");
        let (_, frames) = read_pcap(&pcap);
        // At least one echo request and its reply (a loaded machine may mirror no more).
        assert!(
            frames.len() >= 2 && frames.iter().all(|f| is_icmp(&f.2)),
            "{} frames ({stats:?})",
            frames.len()
        );

        // qos shapes an OVS port as it does a Linux-bridge one (tc on the port).
        let rate = Qos {
            rate: Some((10, "mbit".into())),
            ..Qos::default()
        };
        net.qos_apply(&tb, &rate).await.unwrap();
        let qdisc = stdout(&run(&["tc", "qdisc", "show", "dev", &tb]));
        assert!(qdisc.contains("tbf") && qdisc.contains("10Mbit"), "{qdisc}");
        assert!(
            a.connects("10.92.0.2"),
            "traffic still flows through the shaped port"
        );
        net.qos_apply(&tb, &Qos::default()).await.unwrap();
        let qdisc = stdout(&run(&["tc", "qdisc", "show", "dev", &tb]));
        assert!(!qdisc.contains("tbf"), "{qdisc}");

        // vm net connect/disconnect.
        net.port_connect(&tc, &at("fmo_br", 10)).await.unwrap();
        assert!(a.connects("10.92.0.3"), "moved to the same VLAN");
        net.port_disconnect(&tb).await.unwrap();
        assert!(!a.pings("10.92.0.2"), "disconnected");
        net.port_connect(&tb, &at("fmo_br2", 10)).await.unwrap();
        assert!(
            !a.pings("10.92.0.2"),
            "same VLAN on another bridge is apart"
        );
        net.port_connect(&tb, &at("fmo_br", 10)).await.unwrap();
        assert!(a.connects("10.92.0.2"), "back on the first bridge");

        // A host tap on VLAN 10 with an address; a KVM tap; a trunk; tunnels.
        let host = HostTapSpec {
            name: Some("fmo_host".into()),
            attach: at("fmo_br", 10),
            ip: HostTapIp::Static("10.92.0.9/24".into()),
        };
        assert_eq!(net.host_tap_create(&host).await.unwrap(), "fmo_host");
        assert!(a.connects("10.92.0.9"), "the host tap is on VLAN 10");
        assert_eq!(
            net.host_tap_create(&host).await.unwrap_err(),
            "tap already on bridge"
        );
        let kvm = net.tap_create(Some(&at("fmo_br", 30))).await.unwrap();
        assert_eq!(vsctl(&db, &["port-to-br", &kvm]), "fmo_br");
        let vx = trunk_and_tunnel(&net, "fmo_br", "fmo_trk").await;
        let gre = net
            .tunnel_add("fmo_br", TunnelKind::Gre, "10.99.0.3")
            .await
            .unwrap();
        assert_eq!(vsctl(&db, &["get", "Interface", &gre, "type"]), "gre");
        let bridges = net.bridges().await;
        let names: Vec<&str> = bridges.iter().map(|b| b.name.as_str()).collect();
        assert_eq!(names, ["fmo_br", "fmo_br2"]);
        assert_eq!(bridges[0].vlans, [10, 30]);
        assert_eq!(bridges[0].trunks, ["fmo_trk"]);
        assert_eq!(bridges[0].tunnels.len(), 2);
        net.tunnel_remove("fmo_br", &vx).await.unwrap();
        assert!(net.tunnel_remove("fmo_br", &vx).await.is_err());

        // A bridge that existed before is used but never deleted.
        vsctl(
            &db,
            &[
                "add-br",
                "fmo_pre",
                "--",
                "set",
                "bridge",
                "fmo_pre",
                "datapath_type=netdev",
            ],
        );
        net.tap_create(Some(&at("fmo_pre", 5))).await.unwrap();
        assert!(net
            .bridges()
            .await
            .iter()
            .any(|b| b.name == "fmo_pre" && b.preexisting));

        // `clear all`.
        net.reset().await;
        assert_eq!(vsctl(&db, &["list-br"]), "fmo_pre");
        assert_eq!(vsctl(&db, &["list-ports", "fmo_pre"]), "");
        vsctl(&db, &["del-br", "fmo_pre"]);
        drop((a, b, c));
        assert!(run(&["ip", "link", "del", "fmo_trk"]).status.success());
        let left: Vec<String> = leftover_links()
            .into_iter()
            .filter(|l| l != "ovs-netdev")
            .collect();
        assert_eq!(left, Vec::<String>::new(), "after reset");
    });
    stop_switch(sw);
}

#[test]
fn ovs_netflow_records_the_flows_between_two_endpoints() {
    let Some((dir, sw, db)) = setup("ovs_netflow_records_the_flows_between_two_endpoints") else {
        return;
    };
    rt().block_on(async {
        let net = OvsNetwork::new(Some(db.clone()));
        let (a, b) = (Endpoint::new(), Endpoint::new());
        for (e, n) in [(&a, 1), (&b, 2)] {
            net.veth_attach(
                e.pid(),
                "eth0",
                &format!("00:1b:21:00:01:0{n}"),
                Some(&at("fmo_nf", 7)),
            )
            .await
            .unwrap();
            e.address(&format!("10.93.0.{n}/24"));
        }
        net.netflow_timeout(1).await.unwrap();
        let file = dir.path().join("flows.txt");
        let spec = NetflowSpec {
            bridge: "fmo_nf".into(),
            sink: NetflowSink::File {
                path: file.clone(),
                gzip: false,
            },
            ascii: true,
        };
        let id = net.netflow_start(&spec).await.unwrap();
        assert!(vsctl(&db, &["list", "NetFlow"]).contains("active_timeout      : 1"));
        assert!(a.connects("10.93.0.2"));
        let pinger = std::thread::spawn(move || {
            a.sh(&["busybox", "ping", "-c", "6", "-i", "1", "10.93.0.2"]);
            a
        });
        let text = wait_for_flow(&file, "10.93.0.1", "10.93.0.2", 20);
        let a = pinger.join().unwrap();
        net.netflow_stop(id).await.unwrap();
        assert!(
            text.lines()
                .any(|l| l.contains("\t1\t10.93.0.1:0\t<->\t10.93.0.2:")),
            "no ICMP flow from OVS's exporter:\n{text}"
        );
        assert_eq!(vsctl(&db, &["list", "NetFlow"]), "", "exporter cleared");
        net.reset().await;
        drop((a, b));
        assert_eq!(vsctl(&db, &["list-br"]), "");
    });
    stop_switch(sw);
}

#[test]
fn a_restarted_server_finds_its_ovs_bridges_and_clears_them() {
    let Some((dir, sw, db)) = setup("a_restarted_server_finds_its_ovs_bridges_and_clears_them")
    else {
        return;
    };
    rt().block_on(async {
        let before = OvsNetwork::new(Some(db.clone()));
        let tap = before.tap_create(Some(&at("fmo_rc", 5))).await.unwrap();
        let vx = trunk_and_tunnel(&before, "fmo_rc", "fmo_rt").await;
        let spec = CaptureSpec {
            target: CaptureTarget::Bridge("fmo_rc".into()),
            path: dir.path().join("c.pcap"),
            snaplen: 1600,
            filter: String::new(),
        };
        before.capture_start(&spec).await.unwrap();
        // The server dies: its registry and captures are gone, OVS keeps its records.
        drop(before);

        let after = OvsNetwork::new(Some(db.clone()));
        let bridges = after.bridges().await;
        assert_eq!(bridges.len(), 1, "{bridges:?}");
        assert_eq!(bridges[0].name, "fmo_rc");
        assert!(!bridges[0].preexisting);
        assert_eq!(bridges[0].trunks, ["fmo_rt"]);
        assert_eq!(bridges[0].tunnels, [vx]);
        assert_eq!(
            vsctl(&db, &["list", "Mirror"]),
            "",
            "a dead capture's mirror is removed"
        );
        after.port_destroy(&tap).await.unwrap();
        after.reset().await;
        assert_eq!(vsctl(&db, &["list-br"]), "");
    });
    assert!(run(&["ip", "link", "del", "fmo_rt"]).status.success());
    stop_switch(sw);
}
