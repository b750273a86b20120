//! Host test of networking through real `ferromega serve` processes: a KVM guest gets a
//! lease from `dnsmasq` on a host tap and `vm info` shows it; `clear all` leaves no
//! link, qdisc, nftables rule or process behind; two servers joined by a VXLAN
//! `bridge tunnel` carry a VLAN between them.
//!
//! Each test re-runs itself under `unshare -n`; each server runs in a network namespace
//! of its own and is driven with the CLI through `nsenter`. Needs root, iproute2,
//! busybox, nftables, dnsmasq, and QEMU with the guest image (`misc/images/build`,
//! or `FERROMEGA_IMAGES`); fails loudly when one is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ferromega_tests::host::{binary, guest_images};
use ferromega_tests::netns::{run, stdout};

/// Runs test `name` again in a fresh network namespace; true in that inner run.
fn in_private_netns(name: &str) -> bool {
    ferromega_tests::netns::in_private_netns(name, &[])
}

/// A server in a network namespace of its own.
struct Server {
    child: Child,
    _tmp: tempfile::TempDir,
}

impl Server {
    fn start() -> Server {
        let tmp = tempfile::Builder::new()
            .prefix("fm-net-")
            .tempdir()
            .unwrap();
        let script = format!(
            "ip link set lo up && exec {} serve --accel tcg --base {}",
            binary().display(),
            tmp.path().join("base").display()
        );
        let child = Command::new("unshare")
            .args(["-n", "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(tmp.path().join("server.log")).unwrap())
            .spawn()
            .unwrap();
        let s = Server { child, _tmp: tmp };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !s.try_cli("version") {
            assert!(Instant::now() < deadline, "server did not start");
            std::thread::sleep(Duration::from_millis(100));
        }
        s
    }

    fn pid(&self) -> String {
        self.child.id().to_string()
    }

    /// Runs a program in the server's network namespace.
    fn sh(&self, argv: &[&str]) -> Output {
        let pid = self.pid();
        let mut a = vec!["nsenter", "-t", &pid, "-n", "--"];
        a.extend_from_slice(argv);
        run(&a)
    }

    fn try_cli(&self, line: &str) -> bool {
        let bin = binary().display().to_string();
        let o = self.sh(&[&bin, "--addr", "127.0.0.1:9001", "-e", line]);
        o.status.success() && !stdout(&o).contains("Error")
    }

    /// One CLI command; an error fails the test.
    fn cli(&self, line: &str) -> String {
        let bin = binary().display().to_string();
        let o = self.sh(&[&bin, "--addr", "127.0.0.1:9001", "-e", line]);
        let text = format!("{}{}", stdout(&o), String::from_utf8_lossy(&o.stderr));
        assert!(!text.contains("Error"), "`{line}`: {text}");
        text
    }

    /// Interfaces of the server's namespace besides `lo`.
    fn links(&self) -> Vec<String> {
        stdout(&self.sh(&["ip", "-br", "link"]))
            .lines()
            .filter_map(|l| l.split_whitespace().next())
            .filter_map(|n| n.split('@').next())
            .filter(|n| *n != "lo")
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn server_shows_dnsmasq_lease_in_vm_info_and_clear_all_leaves_nothing() {
    if !in_private_netns("server_shows_dnsmasq_lease_in_vm_info_and_clear_all_leaves_nothing") {
        return;
    }
    let images = guest_images();
    let s = Server::start();
    let pcap = std::env::temp_dir().join(format!("fm-net-{}.pcap", std::process::id()));
    for line in ferromega_tests::host::guest_config(&images)
        .into_iter()
        .chain([
            "vm config net LAN,virtio-net-pci".into(),
            "tap create LAN ip 10.95.0.1/24 fmt_srv0".into(),
            "dnsmasq start 10.95.0.1 10.95.0.10 10.95.0.20".into(),
            "vm launch kvm fmt_v1".into(),
            "qos add fmt_v1 0 rate 50 mbit".into(),
            format!("capture pcap vm fmt_v1 0 {}", pcap.display()),
            "vm start fmt_v1".into(),
        ])
    {
        s.cli(&line);
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let ip = s.cli(".annotate false .columns ip vm info");
        if ip.contains("10.95.0.") {
            break;
        }
        assert!(Instant::now() < deadline, "no lease in vm info: {ip}");
        std::thread::sleep(Duration::from_secs(1));
    }
    let pids = s.cli(".annotate false .columns pid dnsmasq");
    s.cli("clear all");
    let _ = std::fs::remove_file(&pcap);
    assert_eq!(s.links(), Vec::<String>::new());
    assert_eq!(stdout(&s.sh(&["nft", "list", "ruleset"])).trim(), "");
    for pid in pids
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok())
    {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "dnsmasq {pid} survived"
        );
    }
    // The server is `sh -c … exec ferromega`, so its children are the server's.
    let children = stdout(&run(&["pgrep", "-P", &s.pid()]));
    assert_eq!(children.trim(), "", "processes left under the server");
}

#[test]
fn vxlan_tunnel_carries_a_vlan_between_two_servers() {
    if !in_private_netns("vxlan_tunnel_carries_a_vlan_between_two_servers") {
        return;
    }
    let (s1, s2) = (Server::start(), Server::start());
    // The underlay: a veth between the two servers' namespaces.
    let o = run(&[
        "ip",
        "link",
        "add",
        "fmt_ul1",
        "netns",
        &s1.pid(),
        "type",
        "veth",
        "peer",
        "name",
        "fmt_ul2",
        "netns",
        &s2.pid(),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for (s, dev, ip) in [
        (&s1, "fmt_ul1", "10.66.0.1/24"),
        (&s2, "fmt_ul2", "10.66.0.2/24"),
    ] {
        assert!(s
            .sh(&["ip", "addr", "add", ip, "dev", dev])
            .status
            .success());
        assert!(s.sh(&["ip", "link", "set", dev, "up"]).status.success());
    }
    s1.cli("tap create 10 bridge fmt_tun ip 10.97.0.1/24 fmt_h1");
    s2.cli("tap create 10 bridge fmt_tun ip 10.97.0.2/24 fmt_h2");
    s1.cli("tap create 20 bridge fmt_tun ip 10.98.0.1/24 fmt_h3");
    s2.cli("tap create 30 bridge fmt_tun ip 10.98.0.2/24 fmt_h4");
    let ping = |s: &Server, ip: &str| {
        s.sh(&["busybox", "ping", "-c", "2", "-W", "2", ip])
            .status
            .success()
    };
    assert!(!ping(&s1, "10.97.0.2"), "no tunnel yet");
    let t1 = s1.cli(".annotate false bridge tunnel vxlan fmt_tun 10.66.0.2");
    s2.cli("bridge tunnel vxlan fmt_tun 10.66.0.1");
    assert!(t1.trim().starts_with("mega_tap"), "{t1}");
    assert!(ping(&s1, "10.97.0.2"), "VLAN 10 crosses the tunnel");
    assert!(!ping(&s1, "10.98.0.2"), "VLAN 20 and VLAN 30 stay apart");
    assert!(s1.cli("bridge").contains(t1.trim()));
    s1.cli(&format!("bridge notunnel fmt_tun {}", t1.trim()));
    assert!(!ping(&s1, "10.97.0.2"), "tunnel removed");
    s1.cli("clear all");
    s2.cli("clear all");
    assert_eq!(s1.links(), ["fmt_ul1"]);
    assert_eq!(s2.links(), ["fmt_ul2"]);
}
