//! Host test of a real `ferromega serve --network ovs` on a private Open vSwitch:
//! containers on one VLAN exchange packets and on different VLANs do not, `vm net`
//! moves them, a bridge pcap capture (a mirror port) holds their packets, a NetFlow
//! capture records their flows, and `clear all` leaves no OVS bridge or port, no tap or
//! veth, and no container process.
//!
//! Re-runs itself under `unshare -n`; the switch, the server and the containers live in
//! that namespace. Needs root, iproute2, busybox, openvswitch-switch and the container
//! filesystem (`misc/test` builds it, or `FERROMEGA_IMAGES`); fails loudly otherwise.

use std::path::Path;

use ferromega_host_network::ovs::switch::alive;
use ferromega_host_network::ovs::PrivateSwitch;
use ferromega_tests::host::{free_port, images_dir, info, ok, Server};
use ferromega_tests::netns::{
    self, is_icmp, leftover_links, read_pcap, rt, run, stdout, wait_for_flow,
};

/// Runs `argv` in the network namespace of process `pid`.
fn in_ns(pid: &str, argv: &[&str]) -> std::process::Output {
    let mut a = vec!["nsenter", "-t", pid, "-n", "--"];
    a.extend_from_slice(argv);
    run(&a)
}

/// Gives the container's eth0 `cidr`, again until it stays: the container's udhcpc
/// flushes eth0's addresses when it starts.
fn address(pid: &str, cidr: &str) {
    let ip = cidr.split('/').next().unwrap_or(cidr);
    let mut kept = 0;
    for _ in 0..40 {
        in_ns(pid, &["ip", "addr", "replace", cidr, "dev", "eth0"]);
        std::thread::sleep(std::time::Duration::from_millis(250));
        let shown = stdout(&in_ns(pid, &["ip", "-4", "addr", "show", "dev", "eth0"]));
        kept = if shown.contains(ip) { kept + 1 } else { 0 };
        if kept == 4 {
            return;
        }
    }
    panic!("{cidr} does not stay on eth0 of process {pid}");
}

fn pings(pid: &str, ip: &str) -> bool {
    in_ns(pid, &["busybox", "ping", "-c", "2", "-W", "1", ip])
        .status
        .success()
}

/// Whether `ip` answers within a few tries (the switch relearns a moved port's MAC and
/// revalidates its cached flows in the background).
fn connects(pid: &str, ip: &str) -> bool {
    (0..4).any(|_| pings(pid, ip))
}

#[test]
fn ovs_server_containers_vlans_vm_net_captures_netflow_and_clear_all() {
    let name = "ovs_server_containers_vlans_vm_net_captures_netflow_and_clear_all";
    if !netns::in_private_netns(
        name,
        &["busybox", "ovs-vsctl", "ovsdb-server", "ovs-vswitchd"],
    ) {
        return;
    }
    let fs = images_dir().join("minicccfs");
    assert!(
        fs.is_dir(),
        "{} missing: run misc/test (it builds the images) or set FERROMEGA_IMAGES",
        fs.display()
    );
    let dir = tempfile::tempdir().unwrap();
    let sw = PrivateSwitch::start(&dir.path().join("ovs")).unwrap_or_else(|e| {
        panic!("Open vSwitch cannot start here: {e} (misc/setup installs openvswitch-switch)")
    });
    let db = sw.db();
    let vsctl = |args: &[&str]| {
        let d = format!("--db={db}");
        let mut a = vec!["ovs-vsctl", "--timeout=5", &d];
        a.extend_from_slice(args);
        stdout(&run(&a)).trim().to_string()
    };
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Server::start_with(
        &dir.path().join("base"),
        &addr,
        &["--network", "ovs", "--ovs-db", &db],
    );
    let pcap = dir.path().join("bridge.pcap");
    let flows = dir.path().join("flows.txt");
    let pids = rt().block_on(async {
        let c = server.client();
        for line in [
            format!("vm config filesystem {}", fs.display()),
            "vm config net 10".into(),
            "vm launch container fmo_c[1-2]".into(),
            "vm config net 20".into(),
            "vm launch container fmo_c3".into(),
            "vm start all".into(),
        ] {
            ok(&c, &line).await;
        }
        let mut pids = Vec::new();
        for n in 1..=3 {
            let pid = info(&c, &format!("fmo_c{n}"), "pid").await;
            address(&pid, &format!("10.96.0.{n}/24"));
            pids.push(pid);
        }
        let tap = info(&c, "fmo_c1", "tap").await;
        let tap = tap.trim_matches(|ch| ch == '[' || ch == ']');
        assert_eq!(vsctl(&["get", "Port", tap, "tag"]), "10");
        assert!(connects(&pids[0], "10.96.0.2"), "same VLAN must connect");
        assert!(!pings(&pids[0], "10.96.0.3"), "different VLANs must not");

        ok(
            &c,
            &format!("capture pcap bridge mega_bridge {}", pcap.display()),
        )
        .await;
        ok(&c, "capture netflow timeout 1").await;
        ok(&c, "capture netflow mode ascii").await;
        ok(
            &c,
            &format!("capture netflow bridge mega_bridge {}", flows.display()),
        )
        .await;
        ok(&c, "vm net connect fmo_c3 0 10").await;
        assert!(connects(&pids[0], "10.96.0.3"), "moved to the same VLAN");
        ok(&c, "vm net disconnect fmo_c2 0").await;
        assert!(!pings(&pids[0], "10.96.0.2"), "disconnected");
        let p0 = pids[0].clone();
        let pinger = std::thread::spawn(move || {
            in_ns(&p0, &["busybox", "ping", "-c", "5", "-i", "1", "10.96.0.3"]);
        });
        let text = wait_for_flow(&flows, "10.96.0.1", "10.96.0.3", 20);
        pinger.join().unwrap();
        assert!(
            text.lines()
                .any(|l| l.contains("\t1\t10.96.0.1:0\t<->\t10.96.0.3:")),
            "no ICMP flow in the netflow capture:\n{text}"
        );
        ok(&c, "capture pcap delete bridge mega_bridge").await;
        let (_, frames) = read_pcap(&pcap);
        assert!(
            frames.iter().filter(|f| is_icmp(&f.2)).count() >= 4,
            "{} frames in the bridge capture",
            frames.len()
        );
        ok(&c, "clear all").await;
        pids
    });
    assert_eq!(vsctl(&["list-br"]), "", "clear all leaves no OVS bridge");
    assert_eq!(vsctl(&["list", "Mirror"]), "");
    assert_eq!(vsctl(&["list", "NetFlow"]), "");
    let left: Vec<String> = leftover_links()
        .into_iter()
        .filter(|l| l != "ovs-netdev")
        .collect();
    assert_eq!(
        left,
        Vec::<String>::new(),
        "clear all leaves no tap or veth"
    );
    for pid in &pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "container process {pid} left"
        );
    }
    drop(server);
    let daemons = sw.pids();
    let t = std::time::Instant::now();
    drop(sw);
    let state: Vec<String> = daemons
        .iter()
        .map(|p| std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default())
        .collect();
    assert!(
        daemons.iter().all(|p| !alive(*p)),
        "OVS daemons left after {:?}: {state:?}",
        t.elapsed()
    );
    assert_eq!(leftover_links(), Vec::<String>::new());
}

/// Waits until `vm info` shows `column` of `vm` matching `want`; returns the value.
async fn wait_info(
    c: &ferromega_client::Client,
    vm: &str,
    column: &str,
    want: impl Fn(&str) -> bool,
) -> String {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    loop {
        let v = info(c, vm, column).await;
        if want(&v) {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{vm}: {column} is still {v:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
}

#[test]
fn ovs_server_kvm_guests_get_leases_and_talk_tcp_with_checksum_offload_off() {
    let name = "ovs_server_kvm_guests_get_leases_and_talk_tcp_with_checksum_offload_off";
    if !netns::in_private_netns(
        name,
        &[
            "busybox",
            "dnsmasq",
            "ovs-vsctl",
            "ovsdb-server",
            "ovs-vswitchd",
        ],
    ) {
        return;
    }
    let images = ferromega_tests::host::guest_images();
    let dir = tempfile::tempdir().unwrap();
    let sw = PrivateSwitch::start(&dir.path().join("ovs")).unwrap_or_else(|e| {
        panic!("Open vSwitch cannot start here: {e} (misc/setup installs openvswitch-switch)")
    });
    let addr = format!("127.0.0.1:{}", free_port());
    let base = dir.path().join("base");
    let server = Server::start_with(&base, &addr, &["--network", "ovs", "--ovs-db", &sw.db()]);
    let uuids = [
        "0f0f0f0f-0000-4000-8000-000000000001",
        "0f0f0f0f-0000-4000-8000-000000000002",
    ];
    rt().block_on(async {
        let c = server.client();
        let config = ferromega_tests::host::guest_config(&images);
        for line in config.into_iter().chain([
            "vm config net 10,virtio-net-pci".into(),
            "tap create 10 ip 10.97.0.1/24 fmo_srv0".into(),
            "dnsmasq start 10.97.0.1 10.97.0.10 10.97.0.20".into(),
            format!("vm config uuid {}", uuids[0]),
            "vm launch kvm fmo_k1".into(),
            format!("vm config uuid {}", uuids[1]),
            "vm launch kvm fmo_k2".into(),
            "vm start all".into(),
        ]) {
            ok(&c, &line).await;
        }
        let pid = info(&c, "fmo_k1", "pid").await;
        let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
        assert!(
            cmdline.contains("virtio-net-pci,netdev=mega_tap0")
                && cmdline.contains("csum=off,guest_csum=off"),
            "virtio-net NICs on a userspace switch need checksum offload off"
        );
        let lease = |v: &str| v.contains("10.97.0.");
        let ip1 = wait_info(&c, "fmo_k1", "ip", lease).await;
        wait_info(&c, "fmo_k2", "ip", lease).await;
        let ip1 = ip1.trim_matches(|ch| ch == '[' || ch == ']').to_string();
        for vm in ["fmo_k1", "fmo_k2"] {
            wait_info(&c, vm, "cc_active", |v| v == "true").await;
        }
        // TCP between the guests, through the switch: k2 fetches a file from k1.
        ok(&c, &format!("cc filter uuid={}", uuids[0])).await;
        ok(&c, "cc exec busybox httpd -p 8080 -h /").await;
        ok(&c, &format!("cc filter uuid={}", uuids[1])).await;
        let url = format!("http://{ip1}:8080/init");
        // Through `sh -c`: an argument starting with http:// would name a local file.
        let wget = format!("cc exec sh -c \"busybox wget -q -O - {url}\"");
        // Retried: on a loaded machine httpd or the switch's MAC learning may lag the
        // first try. Command 1 started httpd; each try is the next ID.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(150);
        let mut id = 2;
        let body = loop {
            ok(&c, &wget).await;
            let dir = base.join(format!("files/miniccc_responses/{id}/{}", uuids[1]));
            let answered = std::time::Instant::now() + std::time::Duration::from_secs(45);
            while !dir.join("stdout").exists()
                && !dir.join("stderr").exists()
                && std::time::Instant::now() < answered
            {
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
            let body = std::fs::read_to_string(dir.join("stdout")).unwrap_or_default();
            if body.starts_with("#!/bin/sh") || std::time::Instant::now() > deadline {
                break body;
            }
            id += 1;
            tokio::time::sleep(std::time::Duration::from_secs(2)).await;
        };
        assert!(
            body.starts_with("#!/bin/sh"),
            "k2 did not fetch {url} from k1 over TCP: {body:?}"
        );
        ok(&c, "clear all").await;
    });
    let db = sw.db();
    let list = run(&["ovs-vsctl", &format!("--db={db}"), "list-br"]);
    assert_eq!(stdout(&list).trim(), "", "clear all leaves no OVS bridge");
    drop(server);
    drop(sw);
    assert_eq!(leftover_links(), Vec::<String>::new());
}
