//! Host test of the mesh: four ferromega hosts on one machine, each in its own network
//! namespace with its own base directory and address — mesh formation, fan-out with the
//! host column, `ns add-hosts/del-hosts`, `mesh send` and `ns run` and their refusals,
//! scheduling by each load metric and coschedule limits, `vm-N` names unique across
//! hosts, `file get` from peers, a VLAN spanning two hosts over VXLAN while another
//! stays isolated, a peer refused without the secret, a host killed mid-command (the
//! others answer) and back. Needs root, iproute2 (`ip`, `nsenter`, `unshare`), busybox,
//! cgroups, overlayfs and the container image; fails loudly when one is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "mesh_host/cluster.rs"]
#[allow(
    dead_code,
    reason = "shared with other mesh tests, which use other parts"
)]
mod cluster;

use std::time::Duration;

use cluster::{
    block, cell, errors, image, in_private_netns, ok, placement, resps, rows, run, Cluster,
};

fn hosts_of(v: &[(String, String)]) -> Vec<String> {
    let mut h: Vec<String> = v.iter().map(|(_, h)| h.clone()).collect();
    h.sort();
    h.dedup();
    h
}

#[test]
fn mesh_forms_fans_out_and_schedules_unique_names_across_hosts() {
    if !in_private_netns("mesh_forms_fans_out_and_schedules_unique_names_across_hosts") {
        return;
    }
    let fs = image();
    let cl = Cluster::start(4);
    let c = cl.hosts[0].client();
    block(async {
        // Formation: every host knows the three others.
        let list = resps(&c, "minimega", "mesh list").await[0].response.clone();
        for h in ["h2", "h3", "h4"] {
            assert!(list.contains(&format!(" |--{h}")), "{list}");
        }
        // minimega holds only this host; a new namespace spans the peers.
        assert_eq!(ok(&c, "minimega", "ns hosts").await[0].response, "h1");
        assert_eq!(ok(&c, "foo", "ns hosts").await[0].response, "h[2-4]");
        // Broadcast: one row per host, with the host column.
        let hosts: Vec<String> = rows(&c, "foo", "host")
            .await
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(hosts, ["h2", "h3", "h4"]);
        // Membership edits.
        ok(&c, "foo", "ns del-hosts h4").await;
        assert_eq!(ok(&c, "foo", "ns hosts").await[0].response, "h[2-3]");
        ok(&c, "foo", "ns add-hosts h4,localhost").await;
        assert_eq!(ok(&c, "foo", "ns hosts").await[0].response, "h[1-4]");
        ok(&c, "foo", "ns del-hosts localhost").await;
        assert_eq!(
            errors(&c, "foo", "ns add-hosts h9").await,
            ["h1: unknown host: `h9`"]
        );
        // mesh send and ns run, and what they refuse from the mesh.
        let hi = ok(&c, "minimega", "mesh send all echo hi").await;
        assert_eq!(hi.len(), 3);
        assert!(hi.iter().all(|r| r.response == "hi"));
        assert_eq!(
            errors(&c, "minimega", "mesh send h2 mesh send h3 echo hi").await,
            ["h2: cannot run `mesh send` via meshage"]
        );
        assert_eq!(
            errors(&c, "minimega", "mesh send h2 vm launch container x").await,
            ["h2: cannot run `vm launch` via meshage"]
        );
        assert_eq!(ok(&c, "foo", "ns run echo hi").await.len(), 3);
        assert!(!errors(&c, "foo", "ns run vm launch container x")
            .await
            .is_empty());

        // Unnamed VMs spread over the hosts with names unique across them.
        ok(&c, "foo", &format!("vm config filesystem {}", fs.display())).await;
        ok(&c, "foo", "vm config memory 32").await;
        ok(&c, "foo", "vm launch container 6").await;
        ok(&c, "foo", "vm launch container named").await;
        let p = placement(&c, "foo").await;
        let names: Vec<&str> = p.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["named", "vm-0", "vm-1", "vm-2", "vm-3", "vm-4", "vm-5"]
        );
        assert_eq!(hosts_of(&p), ["h2", "h3", "h4"]);
        for h in ["h2", "h3", "h4"] {
            let n = p.iter().filter(|(_, x)| x == h).count();
            assert!((2..=3).contains(&n), "{h} got {n} VMs: {p:?}");
        }
        // A name used on any host is refused.
        assert_eq!(
            errors(&c, "foo", "vm launch container vm-3").await,
            ["h1: vm already exists with name `vm-3`"]
        );
        let sched = rows(&c, "foo", "ns schedules").await;
        let launched: u32 = sched
            .iter()
            .map(|(_, r)| {
                r.iter()
                    .find(|(k, _)| k == "launched")
                    .unwrap()
                    .1
                    .parse::<u32>()
                    .unwrap()
            })
            .sum();
        assert_eq!(launched, 7);
        // vm-target: the owner answers, hosts without the VM are silent.
        ok(&c, "foo", "vm start all").await;
        ok(&c, "foo", "vm kill vm-0").await;
        assert_eq!(
            errors(&c, "foo", "vm kill nope").await,
            ["h1: vm not found: nope"]
        );
        // file get: parts of a file only h3 has, and a folder spread over h2 and h3.
        let big: Vec<u8> = (0..25 * 1024 * 1024 + 7)
            .map(|i: u32| (i % 251) as u8)
            .collect();
        std::fs::write(cl.files_dir(3).join("big"), &big).unwrap();
        for (i, f) in [(2, "other"), (3, "deep/small")] {
            let p = cl.files_dir(i).join("d").join(f);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, f).unwrap();
        }
        ok(&c, "minimega", "file get big").await;
        assert!(std::fs::read(cl.files_dir(1).join("big")).unwrap() == big);
        ok(&c, "minimega", "file get d").await;
        assert_eq!(
            std::fs::read_to_string(cl.files_dir(1).join("d/deep/small")).unwrap(),
            "deep/small"
        );
        assert_eq!(
            std::fs::read_to_string(cl.files_dir(1).join("d/other")).unwrap(),
            "other"
        );
        assert_eq!(
            errors(&c, "minimega", "file get nope").await,
            ["h1: file not found"]
        );
        assert!(rows(&c, "minimega", "file status").await.is_empty());
        let listed = rows(&c, "minimega", "file list").await;
        assert_eq!(listed.len(), 2, "{listed:?}");

        // clear namespace destroys it on every host.
        ok(&c, "minimega", "clear namespace foo").await;
        for h in &cl.hosts[1..] {
            let ns = rows(&h.client(), "minimega", "namespace").await;
            assert!(
                ns.iter().all(|(_, r)| r[0].1 != "foo"),
                "{} still has foo: {ns:?}",
                h.name
            );
            let vms = rows(&h.client(), "minimega", "host").await;
            assert_eq!(vms[0].1.iter().find(|(k, _)| k == "vms").unwrap().1, "0");
        }
    });
}

#[test]
fn scheduler_follows_each_load_metric_and_coschedule_limits() {
    if !in_private_netns("scheduler_follows_each_load_metric_and_coschedule_limits") {
        return;
    }
    let fs = image();
    let cl = Cluster::start(4);
    let c = cl.hosts[0].client();
    block(async {
        let ns = "sched";
        ok(&c, ns, &format!("vm config filesystem {}", fs.display())).await;
        ok(&c, ns, "vm config memory 16").await;
        // Coschedule: four VMs that each want a host alone cannot fit on three hosts;
        // the queue is left for the caller.
        ok(&c, ns, "vm config coschedule 0").await;
        let e = errors(&c, ns, "vm launch container 4").await;
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(
            e[0].contains("too many VMs scheduled on h") && e[0].ends_with("requirement of 1"),
            "{e:?}"
        );
        assert!(!ok(&c, ns, "ns queue").await[0].response.is_empty());
        ok(&c, ns, "ns flush").await;
        // Three fit, one a host.
        ok(&c, ns, "vm launch container alone[1-3]").await;
        assert_eq!(hosts_of(&placement(&c, ns).await), ["h2", "h3", "h4"]);
        // A host holding a lonely VM takes no other.
        ok(&c, ns, "vm config coschedule -1").await;
        let e = errors(&c, ns, "vm launch container extra").await;
        assert!(e[0].contains("too many VMs scheduled on"), "{e:?}");
        ok(&c, ns, "ns flush").await;
        ok(&c, "minimega", "clear namespace sched").await;

        // Load metrics over h2 and h3: h2 carries CPUs, h3 memory and NICs.
        let ns = "load";
        ok(&c, ns, "ns del-hosts h4").await;
        ok(&c, ns, &format!("vm config filesystem {}", fs.display())).await;
        for line in [
            "vm config schedule h2",
            "vm config vcpus 8",
            "vm config memory 16",
            "vm launch container cpuheavy",
            "vm config schedule h3",
            "vm config vcpus 1",
            "vm config memory 4096",
            "vm config net 100 101",
            "vm launch container memheavy",
            "clear vm config schedule",
            "clear vm config net",
            "vm config memory 16",
        ] {
            ok(&c, ns, line).await;
        }
        let host_of = |p: &[(String, String)], vm: &str| {
            p.iter()
                .find(|(n, _)| n == vm)
                .map(|(_, h)| h.clone())
                .unwrap()
        };
        for (metric, vm, want) in [
            ("cpucommit", "bycpu", "h3"),
            ("memcommit", "bymem", "h2"),
            ("netcommit", "bynet", "h2"),
        ] {
            ok(&c, ns, &format!("ns load {metric}")).await;
            ok(&c, ns, &format!("vm launch container {vm}")).await;
            let p = placement(&c, ns).await;
            assert_eq!(host_of(&p, vm), want, "{metric}: {p:?}");
            // Gone again, so the next metric sees the same two hosts.
            ok(&c, ns, &format!("vm kill {vm}")).await;
            ok(&c, ns, "vm flush").await;
        }
        ok(&c, "minimega", "clear namespace load").await;
    });
}

/// The VM's PID on its host, from `vm info`.
async fn pid_of(c: &ferromega_client::Client, ns: &str, vm: &str) -> String {
    let all = rows(c, ns, "vm info").await;
    let row = all
        .into_iter()
        .map(|(_, r)| r)
        .find(|r| r.iter().any(|(k, v)| k == "name" && v == vm))
        .unwrap();
    row.into_iter().find(|(k, _)| k == "pid").unwrap().1
}

fn in_vm(pid: &str, argv: &[&str]) -> bool {
    let mut a = vec!["nsenter", "-t", pid, "-n", "--"];
    a.extend_from_slice(argv);
    run(&a).status.success()
}

/// Gives the VM's eth0 the address `ip`, again until it stays: the image's DHCP client
/// clears the NIC's addresses when it starts, which may be after the first try.
fn set_ip(pid: &str, ip: &str) {
    let has = || {
        let o = run(&[
            "nsenter", "-t", pid, "-n", "--", "ip", "-br", "addr", "show", "dev", "eth0",
        ]);
        String::from_utf8_lossy(&o.stdout).contains(ip)
    };
    let mut stable = 0;
    for _ in 0..40 {
        if has() {
            stable += 1;
            if stable == 3 {
                return;
            }
        } else {
            stable = 0;
            in_vm(pid, &["ip", "addr", "replace", ip, "dev", "eth0"]);
            in_vm(pid, &["ip", "link", "set", "eth0", "up"]);
        }
        std::thread::sleep(Duration::from_millis(300));
    }
    panic!("{ip} does not stay on the NIC of {pid}");
}

#[test]
fn a_vlan_spans_three_hosts_over_vxlan_and_others_stay_apart() {
    if !in_private_netns("a_vlan_spans_three_hosts_over_vxlan_and_others_stay_apart") {
        return;
    }
    let fs = image();
    let cl = Cluster::start(4);
    let c = cl.hosts[0].client();
    block(async {
        let ns = "vl";
        ok(&c, ns, &format!("vm config filesystem {}", fs.display())).await;
        ok(&c, ns, "vm config memory 16").await;
        let vms = [
            ("a", "h2", 10),
            ("b", "h3", 10),
            ("c", "h2", 20),
            ("d", "h3", 30),
            ("e", "h4", 10),
        ];
        for (vm, host, vlan) in vms {
            ok(&c, ns, &format!("vm config schedule {host}")).await;
            ok(&c, ns, &format!("vm config net {vlan}")).await;
            ok(&c, ns, &format!("vm launch container {vm}")).await;
        }
        ok(&c, ns, "vm start all").await;
        let mut pids = Vec::new();
        for (i, (vm, _, _)) in vms.iter().enumerate() {
            let pid = pid_of(&c, ns, vm).await;
            set_ip(&pid, &format!("10.88.0.{}/24", i + 1));
            pids.push(pid);
        }
        let ping =
            |from: &str, to: &str| in_vm(from, &["busybox", "ping", "-c", "2", "-W", "2", to]);
        // VLAN 10 spans h2, h3 and h4 (one VXLAN device per VLAN and host, a
        // destination per other host).
        for (from, to) in [
            (0, "10.88.0.2"),
            (1, "10.88.0.1"),
            (0, "10.88.0.5"),
            (4, "10.88.0.2"),
        ] {
            if !ping(&pids[from], to) {
                panic!(
                    "VLAN 10: {} cannot reach {to}\nh2: {}\nh2 log:\n{}",
                    vms[from].0,
                    cl.hosts[1].inside(&["bridge", "fdb", "show"]),
                    cl.log(2)
                );
            }
        }
        assert!(
            !ping(&pids[2], "10.88.0.4"),
            "VLAN 20 on h2 and VLAN 30 on h3 stay apart"
        );
        assert!(
            !ping(&pids[0], "10.88.0.4"),
            "VLAN 10 does not reach VLAN 30"
        );
        ok(&c, "minimega", "clear namespace vl").await;
    });
}

#[test]
fn a_host_killed_mid_command_is_an_error_naming_it_and_comes_back() {
    if !in_private_netns("a_host_killed_mid_command_is_an_error_naming_it_and_comes_back") {
        return;
    }
    let fs = image();
    let mut cl = Cluster::start(4);
    let c = cl.hosts[0].client();
    // Without the cluster secret a peer endpoint refuses.
    let refused = block(async {
        reqwest::Client::new()
            .post(format!("http://{}/api/v1/mesh/peer/run", cl.hosts[1].addr))
            .header("Authorization", "Bearer not-the-secret")
            .json(&serde_json::json!({"from": "evil", "namespace": "minimega",
                "source": "meshage", "line": "shell true"}))
            .send()
            .await
            .unwrap()
            .status()
    });
    assert_eq!(refused.as_u16(), 401);
    block(async {
        ok(&c, "k", &format!("vm config filesystem {}", fs.display())).await;
        ok(&c, "k", "vm config memory 16").await;
        ok(&c, "k", "vm launch container 3").await;
        ok(&c, "k", "vm start all").await;
    });
    // `vm top 3` takes three seconds on every host; h4 dies during it.
    let head = c.clone();
    let top = std::thread::spawn(move || block(resps(&head, "k", "vm top 3")));
    std::thread::sleep(Duration::from_secs(1));
    cl.hosts[3].kill();
    let got = top.join().unwrap();
    let ok_hosts: Vec<&str> = got
        .iter()
        .filter(|r| r.error.is_empty())
        .map(|r| r.host.as_str())
        .collect();
    assert_eq!(ok_hosts, ["h2", "h3"], "{got:?}");
    let failed: Vec<&ferromega_api::Response> =
        got.iter().filter(|r| !r.error.is_empty()).collect();
    assert_eq!(failed.len(), 1, "{got:?}");
    assert_eq!(failed[0].host, "h4");

    block(async {
        // It is marked down; the rest of the mesh still answers.
        assert_eq!(cell(&c, "minimega", "mesh status", "size").await, "3");
        let e = errors(&c, "k", "vm info").await;
        assert_eq!(e.len(), 1);
        assert!(e[0].starts_with("h4: "), "{e:?}");
    });
    // It comes back (its peers file dials the others) and answers again, empty.
    cl.restart(4);
    cl.wait_for_mesh(Duration::from_secs(30));
    block(async {
        assert!(errors(&c, "k", "vm info").await.is_empty());
        ok(&c, "minimega", "clear namespace k").await;
    });
}

#[test]
fn discovery_joins_the_hosts_of_one_context_only() {
    if !in_private_netns("discovery_joins_the_hosts_of_one_context_only") {
        return;
    }
    let cl = Cluster::discovering(&["lab", "lab", "lab", "other"]);
    // h1..h3 find each other by UDP announcements; h4 (another context) stays alone.
    cl.wait_for_size(&[0, 1, 2], 3, Duration::from_secs(60));
    block(async {
        let c = cl.hosts[0].client();
        let status = rows(&c, "minimega", "mesh status").await;
        let get = |k: &str| status[0].1.iter().find(|(n, _)| n == k).unwrap().1.clone();
        assert_eq!(
            (get("size"), get("degree"), get("context")),
            ("3".into(), "2".into(), "lab".into())
        );
        assert_eq!(
            cell(&cl.hosts[3].client(), "minimega", "mesh status", "size").await,
            "1"
        );
    });
}

#[test]
fn a_chain_of_hosts_is_reached_hop_by_hop() {
    if !in_private_netns("a_chain_of_hosts_is_reached_hop_by_hop") {
        return;
    }
    let fs = image();
    let cl = Cluster::chain(3);
    let c = cl.hosts[0].client();
    block(async {
        // h1 dialed h2 only; h3 is known through h2's announcements.
        assert_eq!(cell(&c, "minimega", "mesh status", "peers").await, "1");
        let list = resps(&c, "minimega", "mesh list").await[0].response.clone();
        assert!(list.ends_with("h3\n |--h2"), "{list}");
        let far = ok(&c, "minimega", "mesh send h3 echo far").await;
        assert_eq!(far.len(), 1);
        assert_eq!(
            (far[0].host.as_str(), far[0].response.as_str()),
            ("h3", "far")
        );
        // A namespace spans h3 too: a container launched there, listed from h1.
        assert_eq!(ok(&c, "far", "ns hosts").await[0].response, "h[2-3]");
        ok(&c, "far", &format!("vm config filesystem {}", fs.display())).await;
        ok(&c, "far", "vm config memory 16").await;
        ok(&c, "far", "vm config schedule h3").await;
        ok(&c, "far", "vm launch container deep").await;
        ok(&c, "far", "vm start all").await;
        assert_eq!(
            placement(&c, "far").await,
            [("deep".to_string(), "h3".to_string())]
        );
        // file get of a file only h3 has, through h2.
        std::fs::write(cl.files_dir(3).join("far.txt"), "from h3").unwrap();
        ok(&c, "minimega", "file get far.txt").await;
        assert_eq!(
            std::fs::read_to_string(cl.files_dir(1).join("far.txt")).unwrap(),
            "from h3"
        );
        ok(&c, "minimega", "clear namespace far").await;
        let vms = rows(&cl.hosts[2].client(), "minimega", "host").await;
        assert_eq!(vms[0].1.iter().find(|(k, _)| k == "vms").unwrap().1, "0");
    });
}
