//! Contract of the mesh on in-process hosts: three control planes joined by an
//! in-memory peer link (each peer call goes straight to the other control plane's peer
//! entry points), so the domain's mesh logic is checked without root or sockets — dial
//! and hangup on both sides, fan-out merging with the host column, `vm not found`
//! dropped, nested commands refused, a dead or silent peer answering with an error
//! naming it, and scheduled launches whose failures are counted and returned; a chain
//! of hosts whose far end is reached hop by hop. The real transport (HTTP with the
//! cluster secret, network namespaces) is `mesh_host.rs`.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferromega_api::events::Event;
use ferromega_api::mesh::{PeerFileInfo, PeerFileRequest, PeerGraphsQuery, PeerHello, PeerRequest};
use ferromega_api::Response;
use ferromega_domain::backends::{BoxFuture, ConsoleIo, EventStream};
use ferromega_domain::{Backends, ControlPlane, PeerLink, Session, Settings};
use ferromega_host_system::LinuxSystem;
use futures_util::StreamExt;

/// Control planes by address; an address missing is a host that is down, one in
/// `silent` never answers.
#[derive(Default)]
struct Net {
    hosts: Mutex<BTreeMap<String, ControlPlane>>,
    silent: Mutex<Vec<String>>,
    /// Addresses that never answer a scheduled launch (but answer everything else).
    slow_launch: Mutex<Vec<String>>,
}

struct MemLink(Arc<Net>);

impl MemLink {
    async fn reach(&self, addr: &str) -> Result<ControlPlane, String> {
        if self.0.silent.lock().unwrap().iter().any(|a| a == addr) {
            std::future::pending::<()>().await;
        }
        self.0
            .hosts
            .lock()
            .unwrap()
            .get(addr)
            .cloned()
            .ok_or_else(|| format!("cannot reach {addr}: connection refused"))
    }
}

impl PeerLink for MemLink {
    fn hello<'a>(
        &'a self,
        addr: &'a str,
        me: &'a PeerHello,
    ) -> BoxFuture<'a, Result<PeerHello, String>> {
        Box::pin(async move { self.reach(addr).await?.mesh_hello_received(me) })
    }

    fn run<'a>(
        &'a self,
        addr: &'a str,
        req: &'a PeerRequest,
    ) -> BoxFuture<'a, Result<Vec<Response>, String>> {
        Box::pin(async move {
            let slow = self.0.slow_launch.lock().unwrap().iter().any(|a| a == addr);
            if slow && req.launch.is_some() {
                std::future::pending::<()>().await;
            }
            Ok(self.reach(addr).await?.peer_run(req.clone()).await)
        })
    }

    fn file_info<'a>(
        &'a self,
        addr: &'a str,
        req: &'a PeerFileRequest,
    ) -> BoxFuture<'a, Result<Vec<PeerFileInfo>, String>> {
        Box::pin(async move {
            let cp = self.reach(addr).await?;
            cp.peer_file_info(req).await.map_err(|e| e.to_string())
        })
    }

    fn file_part<'a>(
        &'a self,
        addr: &'a str,
        req: &'a PeerFileRequest,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        Box::pin(async move {
            let cp = self.reach(addr).await?;
            cp.peer_file_part(req).await.map_err(|e| e.to_string())
        })
    }

    fn events<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<EventStream, String>> {
        Box::pin(async move {
            let cp = self.reach(addr).await?;
            Ok(Box::pin(cp.peer_events().map(Ok)) as EventStream)
        })
    }

    fn graphs<'a>(
        &'a self,
        addr: &'a str,
        q: &'a PeerGraphsQuery,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>> {
        Box::pin(async move {
            let cp = self.reach(addr).await?;
            let range =
                ferromega_domain::graphs::Range::parse(&q.range).map_err(|e| e.to_string())?;
            let g = cp
                .graphs(&q.namespace, q.vm.as_deref(), range)
                .map_err(|e| e.to_string())?;
            serde_json::to_value(g).map_err(|e| e.to_string())
        })
    }

    fn console<'a>(
        &'a self,
        _addr: &'a str,
        _ns: &'a str,
        _vm: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn ConsoleIo>, String>> {
        // In memory there are no VMs with consoles (no hypervisor); `mesh_host.rs`
        // opens real ones through the HTTP link.
        Box::pin(async { Err("no consoles on in-memory hosts".to_string()) })
    }
}

struct Cluster {
    net: Arc<Net>,
    cps: Vec<ControlPlane>,
    dirs: Vec<tempfile::TempDir>,
}

/// `n` hosts h1..hn (address `aN:9001`), h1 dialing the others (by `aN`).
async fn cluster(n: usize) -> Cluster {
    let c = hosts_alone(n).await;
    for i in 2..=n {
        c.ok(0, "minimega", &format!("mesh dial a{i}")).await;
    }
    c
}

/// `n` hosts in a chain: each dials the next only (h1–h2–…–hn); returns once h1 counts
/// all of them (their links are announced from hello to hello).
async fn chain(n: usize) -> Cluster {
    let c = hosts_alone(n).await;
    for i in 1..n {
        c.ok(i - 1, "minimega", &format!("mesh dial a{}", i + 1))
            .await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let status = c.ok(0, "minimega", "mesh status").await;
        if status[0].tabular[0][0] == n.to_string() {
            return c;
        }
        assert!(tokio::time::Instant::now() < deadline, "{status:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `n` hosts h1..hn (address `aN:9001`) on one in-memory network, not yet peers.
async fn hosts_alone(n: usize) -> Cluster {
    let net = Arc::new(Net::default());
    let mut cps = Vec::new();
    let mut dirs = Vec::new();
    for i in 1..=n {
        let dir = tempfile::tempdir().unwrap();
        let files_dir = dir.path().join("files");
        std::fs::create_dir_all(&files_dir).unwrap();
        let cp = ControlPlane::new(
            Settings {
                host: format!("h{i}"),
                base: dir.path().to_path_buf(),
                files_dir,
            },
            Backends {
                system: Arc::new(LinuxSystem),
                kvm: None,
                container: None,
                network: None,
            },
        );
        let addr = format!("a{i}:9001");
        net.hosts.lock().unwrap().insert(addr.clone(), cp.clone());
        cp.mesh_attach(Arc::new(MemLink(net.clone())), &addr, &[]);
        cps.push(cp);
        dirs.push(dir);
    }
    Cluster { net, cps, dirs }
}

impl Cluster {
    async fn run(&self, host: usize, ns: &str, line: &str) -> Vec<Response> {
        let mut s = Session::in_namespace(ns);
        self.cps[host]
            .run_line(&mut s, line)
            .await
            .into_iter()
            .flat_map(|b| b.resp)
            .collect()
    }

    async fn ok(&self, host: usize, ns: &str, line: &str) -> Vec<Response> {
        let r = self.run(host, ns, line).await;
        for x in &r {
            assert!(x.error.is_empty(), "`{line}` on {}: {}", x.host, x.error);
        }
        r
    }

    async fn errors(&self, host: usize, ns: &str, line: &str) -> Vec<String> {
        self.run(host, ns, line)
            .await
            .into_iter()
            .filter(|r| !r.error.is_empty())
            .map(|r| format!("{}: {}", r.host, r.error))
            .collect()
    }
}

fn hosts(r: &[Response]) -> Vec<&str> {
    r.iter().map(|x| x.host.as_str()).collect()
}

#[tokio::test]
async fn dial_makes_both_sides_peers_and_hangup_undoes_it() {
    let c = cluster(3).await;
    assert_eq!(c.cps[0].mesh_peers(), ["h2", "h3"]);
    assert_eq!(c.cps[1].mesh_peers(), ["h1"]);
    let status = &c.ok(0, "minimega", "mesh status").await[0];
    assert_eq!(status.tabular[0][..3], ["3", "0", "2"]);
    c.ok(0, "minimega", "mesh hangup h3").await;
    assert_eq!(c.cps[0].mesh_peers(), ["h2"]);
    assert!(c.cps[2].mesh_peers().is_empty());
    assert_eq!(
        c.errors(0, "minimega", "mesh hangup h3").await,
        ["h1: unknown host: `h3`"]
    );
    assert_eq!(
        c.errors(0, "minimega", "mesh dial a1").await,
        ["h1: cannot dial a1:9001: h1 is this host's own name"]
    );
    assert_eq!(
        c.errors(0, "minimega", "mesh dial a9").await,
        ["h1: cannot dial a9:9001: cannot reach a9:9001: connection refused"]
    );
}

#[tokio::test]
async fn broadcast_merges_hosts_and_vm_target_drops_vm_not_found() {
    let c = cluster(3).await;
    let r = c.ok(0, "foo", "host").await;
    assert_eq!(hosts(&r), ["h2", "h3"]);
    assert_eq!(c.ok(0, "foo", "ns hosts").await[0].response, "h[2-3]");
    assert_eq!(
        c.errors(0, "foo", "vm kill nope").await,
        ["h1: vm not found: nope"]
    );
    assert_eq!(hosts(&c.ok(0, "foo", "ns run echo x").await), ["h2", "h3"]);
    assert_eq!(
        c.errors(0, "minimega", "mesh send h2 ns run echo x").await,
        ["h2: cannot run `ns run` via meshage"]
    );
    assert_eq!(
        c.errors(0, "minimega", "mesh send h2 read /dev/null").await,
        ["h2: cannot run `read` via meshage"]
    );
    assert_eq!(
        c.errors(0, "minimega", "mesh send h2,h1 echo x").await,
        ["h1: cannot mesh send yourself"]
    );
}

#[tokio::test]
async fn a_dead_peer_is_an_error_naming_it_and_a_silent_one_times_out() {
    let c = cluster(3).await;
    c.net.hosts.lock().unwrap().remove("a3:9001");
    let r = c.run(0, "foo", "host").await;
    assert_eq!(hosts(&r), ["h2", "h3"]);
    assert!(r[0].error.is_empty());
    assert_eq!(r[1].error, "cannot reach a3:9001: connection refused");
    let status = &c.ok(0, "minimega", "mesh status").await[0];
    assert_eq!(status.tabular[0][0], "2", "h3 is marked down");
    // A peer that never answers: `timed out` once `mesh timeout` passes.
    c.net
        .hosts
        .lock()
        .unwrap()
        .insert("a3:9001".into(), c.cps[2].clone());
    c.net.silent.lock().unwrap().push("a3:9001".into());
    c.ok(0, "minimega", "mesh timeout 1").await;
    let t = tokio::time::Instant::now();
    let r = c.run(0, "minimega", "mesh send all echo hi").await;
    assert!(t.elapsed() < Duration::from_secs(3));
    assert_eq!(r[0].response, "hi");
    assert_eq!(r[1].error, "timed out");
}

#[tokio::test]
async fn scheduled_launch_failures_are_counted_and_returned() {
    // No host has a KVM runtime: every VM fails where it lands, and the caller hears it.
    let c = cluster(3).await;
    let e = c.errors(0, "foo", "vm launch kvm 4").await;
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with("h1: 4 of 4 VMs failed to launch: "),
        "{e:?}"
    );
    let s = &c.ok(0, "foo", "ns schedules").await[0];
    assert_eq!(s.tabular[0][2..], ["completed", "0", "4", "4", "2"]);
    // Names were unique across the hosts.
    let info = c.ok(0, "foo", ".columns name vm info").await;
    let mut names: Vec<String> = info.iter().flat_map(|r| r.tabular.concat()).collect();
    names.sort();
    assert_eq!(names, ["vm-0", "vm-1", "vm-2", "vm-3"]);
    // A host the namespace lacks cannot be asked for.
    c.ok(0, "foo", "vm config schedule h9").await;
    assert_eq!(
        c.errors(0, "foo", "vm launch kvm x").await,
        ["h1: VM scheduled on unknown host: `h9`"]
    );
}

#[tokio::test]
async fn the_file_preprocessor_fetches_a_file_from_the_peer_that_has_it() {
    let c = cluster(3).await;
    let files = |i: usize| c.dirs[i].path().join("files");
    std::fs::create_dir_all(files(2).join("img")).unwrap();
    std::fs::write(files(2).join("img/disk.qc2"), "disk bytes").unwrap();
    let r = c.ok(0, "minimega", "echo file:img/disk.qc2").await;
    let here = files(0).join("img/disk.qc2");
    assert_eq!(r[0].response, here.display().to_string());
    assert_eq!(std::fs::read_to_string(&here).unwrap(), "disk bytes");
    assert_eq!(
        c.errors(0, "minimega", "echo file:img/none").await,
        ["h1: file not found"]
    );
}

#[tokio::test]
async fn cc_send_of_a_file_only_a_peer_has_fetches_it_first() {
    let c = cluster(2).await;
    let files = |i: usize| c.dirs[i].path().join("files");
    std::fs::create_dir_all(files(1)).unwrap();
    std::fs::write(files(1).join("tool.sh"), "echo hi").unwrap();
    c.ok(0, "minimega", "cc send tool.sh").await;
    assert_eq!(
        std::fs::read_to_string(files(0).join("tool.sh")).unwrap(),
        "echo hi"
    );
    let cmds = c.ok(0, "minimega", ".columns sent cc commands").await;
    assert_eq!(cmds[0].tabular, vec![vec!["[tool.sh]".to_string()]]);
    assert_eq!(
        c.errors(0, "minimega", "cc send nowhere.sh").await,
        ["h1: no such file: nowhere.sh"]
    );
}

#[tokio::test]
async fn a_launch_brings_its_files_to_the_hosts_it_lands_on() {
    let c = cluster(3).await;
    let files = |i: usize| c.dirs[i].path().join("files");
    std::fs::write(files(0).join("kernel"), "k").unwrap();
    std::fs::write(files(0).join("disk"), "d").unwrap();
    c.ok(0, "foo", "vm config kernel file:kernel").await;
    c.ok(0, "foo", "vm config disk file:disk").await;
    // No KVM runtime here: the VMs fail, but their files arrived first.
    assert_eq!(c.errors(0, "foo", "vm launch kvm 2").await.len(), 1);
    for i in [1, 2] {
        assert_eq!(
            std::fs::read_to_string(files(i).join("kernel")).unwrap(),
            "k"
        );
        assert_eq!(std::fs::read_to_string(files(i).join("disk")).unwrap(), "d");
    }
    let info = c.ok(0, "foo", ".columns kernel,disk vm info").await;
    for r in &info {
        let i = if r.host == "h2" { 1 } else { 2 };
        let k = files(i).join("kernel").display().to_string();
        assert_eq!(r.tabular[0][0], k, "{r:?}");
    }
}

#[tokio::test]
async fn a_namespace_with_a_launch_running_cannot_be_cleared() {
    let c = Arc::new(cluster(3).await);
    c.net.slow_launch.lock().unwrap().push("a3:9001".into());
    let bg = c.clone();
    let launch = tokio::spawn(async move { bg.run(0, "foo", "vm launch kvm 2").await });
    // Wait until the schedule is recorded as running.
    for _ in 0..100 {
        let s = c.ok(0, "foo", "ns schedules").await;
        if s[0].tabular.first().is_some_and(|r| r[2] == "running") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        c.errors(0, "minimega", "clear namespace foo").await,
        ["h1: scheduler still running for namespace"]
    );
    launch.abort();
}

/// Waits (up to 10 s) for an event on `bus` that `want` accepts; the VM names of the
/// events seen on the way come back too.
async fn event_where(
    bus: &mut tokio::sync::broadcast::Receiver<Event>,
    want: impl Fn(&Event) -> bool,
) -> Vec<String> {
    let mut names = Vec::new();
    let wait = async {
        loop {
            let e = bus.recv().await.unwrap();
            if let Event::Vm { vm } = &e {
                names.push(vm.name.clone());
            }
            if want(&e) {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), wait)
        .await
        .unwrap_or_else(|_| panic!("no such event in 10 s; saw VMs {names:?}"));
    names
}

fn vm_on(e: &Event, name: &str, host: &str) -> bool {
    matches!(e, Event::Vm { vm } if vm.name == name && vm.host == host)
}

#[tokio::test]
async fn a_host_shows_the_vms_of_peers_its_namespaces_span_and_drops_them_on_hangup() {
    let c = cluster(2).await;
    let (_, mut bus) = c.cps[0].subscribe();
    // No hypervisor in memory: the VM lands on h2 in ERROR, which is still a VM.
    c.ok(0, "foo", "vm config schedule h2").await;
    assert_eq!(c.errors(0, "foo", "vm launch kvm a").await.len(), 1);
    event_where(&mut bus, |e| vm_on(e, "a", "h2")).await;
    // h2's own `minimega` is not h1's: `lonely` never shows on h1, and h2's events come
    // in order, so `marker`, launched after it, proves it.
    c.run(1, "minimega", "vm launch kvm lonely").await;
    c.run(0, "foo", "vm launch kvm marker").await;
    let seen = event_where(&mut bus, |e| vm_on(e, "marker", "h2")).await;
    assert!(!seen.contains(&"lonely".to_string()), "{seen:?}");
    let Event::Snapshot { vms, .. } = c.cps[0].snapshot() else {
        panic!("not a snapshot");
    };
    let mut shown: Vec<(&str, &str)> = vms
        .iter()
        .map(|v| (v.name.as_str(), v.host.as_str()))
        .collect();
    shown.sort();
    assert_eq!(shown, [("a", "h2"), ("marker", "h2")]);
    // Consoles of peers' VMs: known but not running, or unknown.
    let e = c.cps[0].peer_console_target("foo", "a").unwrap_err();
    assert_eq!(e.to_string(), "vm a is not running (ERROR)");
    let e = c.cps[0].peer_console_target("foo", "nope").unwrap_err();
    assert_eq!(e.to_string(), "vm not found: nope");
    assert!(c.cps[0].peer_console_target("minimega", "lonely").is_err());
    // Graphs of a peer's VM, or of a peer, come from that peer.
    let ten = ferromega_domain::graphs::Range::TenMinutes;
    let g = c.cps[0]
        .graphs_anywhere("foo", Some("marker"), None, ten)
        .await
        .unwrap();
    assert_eq!(
        (g["host"].as_str(), g["vm"].as_str()),
        (Some("h2"), Some("marker"))
    );
    let g = c.cps[0]
        .graphs_anywhere("foo", None, Some("h2"), ten)
        .await
        .unwrap();
    assert_eq!((g["host"].as_str(), g["vm"].as_str()), (Some("h2"), None));
    let e = c.cps[0]
        .graphs_anywhere("foo", None, Some("h9"), ten)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "unknown host: `h9`");
    let e = c.cps[0]
        .graphs_anywhere("foo", Some("nope"), None, ten)
        .await
        .unwrap_err();
    assert_eq!(e.to_string(), "vm not found: nope");
    // Flushed on h2, a leaves h1's view.
    c.ok(0, "foo", "vm flush").await;
    let gone = |vm: &'static str| move |e: &Event| matches!(e, Event::VmRemoved { name, host, .. } if name == vm && host == "h2");
    event_where(&mut bus, gone("a")).await;
    // `clear namespace` ends foo here before h2: marker's removal still shows.
    c.ok(0, "minimega", "clear namespace foo").await;
    event_where(&mut bus, gone("marker")).await;
    // Hung up, the peer's VMs all leave.
    c.ok(0, "bar", "vm config schedule h2").await;
    c.run(0, "bar", "vm launch kvm b").await;
    event_where(&mut bus, |e| vm_on(e, "b", "h2")).await;
    c.ok(0, "minimega", "mesh hangup h2").await;
    event_where(&mut bus, gone("b")).await;
    let Event::Snapshot { vms, .. } = c.cps[0].snapshot() else {
        panic!("not a snapshot");
    };
    assert!(vms.is_empty(), "{vms:?}");
}

#[tokio::test]
async fn mesh_dot_writes_the_mesh_to_the_path_given() {
    let c = cluster(3).await;
    let out = tempfile::tempdir().unwrap();
    let file = out.path().join("mesh.dot");
    c.ok(0, "minimega", &format!("mesh dot {}", file.display()))
        .await;
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.starts_with("graph \"h1\" {\n"), "{text}");
    assert!(text.contains("label=\"total=3\""), "{text}");
    assert!(text.contains("\"h1\" [style=filled, color=red];"), "{text}");
    assert!(
        text.contains("\"h1\" -- \"h2\";\n\"h1\" -- \"h3\";\n}"),
        "{text}"
    );
    let bad = out.path().join("none/mesh.dot");
    let e = c
        .errors(0, "minimega", &format!("mesh dot {}", bad.display()))
        .await;
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].starts_with(&format!("h1: {}: ", bad.display())),
        "{e:?}"
    );
    assert!(!bad.exists());
}

#[tokio::test]
async fn hosts_beyond_the_peers_are_reached_hop_by_hop() {
    let c = chain(3).await;
    // h1 knows h3 only through h2.
    assert_eq!(c.cps[0].mesh_peers(), ["h2"]);
    let status = &c.ok(0, "minimega", "mesh status").await[0];
    assert_eq!(status.tabular[0][..3], ["3", "0", "1"]);
    let list = c.ok(0, "minimega", "mesh list").await[0].response.clone();
    assert_eq!(list, "h1\n |--h2\nh2\n |--h1\n |--h3\nh3\n |--h2");
    // mesh send and fan-out reach h3 through h2.
    let r = c.ok(0, "minimega", "mesh send h3 echo far").await;
    assert_eq!((hosts(&r), r[0].response.as_str()), (vec!["h3"], "far"));
    assert_eq!(
        hosts(&c.ok(0, "minimega", "mesh send all echo x").await),
        ["h2", "h3"]
    );
    assert_eq!(c.ok(0, "foo", "ns hosts").await[0].response, "h[2-3]");
    assert_eq!(hosts(&c.ok(0, "foo", "host").await), ["h2", "h3"]);
    assert_eq!(hosts(&c.ok(0, "foo", "ns run echo y").await), ["h2", "h3"]);
    c.ok(0, "foo", "ns del-hosts h2").await;
    assert_eq!(hosts(&c.ok(0, "foo", "host").await), ["h3"]);
    // What the far host refuses from the mesh, it still refuses.
    assert_eq!(
        c.errors(0, "minimega", "mesh send h3 mesh send h2 echo x")
            .await,
        ["h3: cannot run `mesh send` via meshage"]
    );
    // clear namespace reaches it too.
    c.ok(0, "minimega", "clear namespace foo").await;
    assert!(!c.cps[2].namespace_names().contains(&"foo".to_string()));
    // file get fetches a file only h3 has, through h2.
    let files = |i: usize| c.dirs[i].path().join("files");
    std::fs::write(files(2).join("far.txt"), "from h3").unwrap();
    c.ok(0, "minimega", "file get far.txt").await;
    assert_eq!(
        std::fs::read_to_string(files(0).join("far.txt")).unwrap(),
        "from h3"
    );
    assert!(!files(1).join("far.txt").exists());
    // A request passed on too often is dropped (a loop cannot spin forever).
    let looping = PeerRequest {
        to: Some("h3".into()),
        hops: ferromega_domain::mesh::routes::MAX_HOPS,
        line: Some("echo x".into()),
        ..PeerRequest::default()
    };
    let r = c.cps[1].peer_run(looping).await;
    assert_eq!(
        (r[0].host.as_str(), r[0].error.as_str()),
        ("h3", "no route to h3: more than 16 hops")
    );
    // The far host gone: an error naming it, from the hop that could not reach it.
    c.net.hosts.lock().unwrap().remove("a3:9001");
    assert_eq!(
        c.errors(0, "minimega", "mesh send h3 echo x").await,
        ["h3: cannot reach a3:9001: connection refused"]
    );
}

#[tokio::test]
async fn a_host_beyond_the_peers_is_followed_too() {
    let c = chain(3).await;
    let (_, mut bus) = c.cps[0].subscribe();
    // h3 is reached through h2; its VM (in ERROR: no hypervisor) shows on h1.
    c.ok(0, "foo", "vm config schedule h3").await;
    assert_eq!(c.errors(0, "foo", "vm launch kvm far").await.len(), 1);
    event_where(&mut bus, |e| vm_on(e, "far", "h3")).await;
    let ten = ferromega_domain::graphs::Range::TenMinutes;
    let g = c.cps[0]
        .graphs_anywhere("foo", Some("far"), None, ten)
        .await
        .unwrap();
    assert_eq!(g["host"].as_str(), Some("h3"));
    // No longer reached (h2 hangs up on h3), h3 is no longer followed: its VM leaves.
    c.ok(1, "minimega", "mesh hangup h3").await;
    event_where(
        &mut bus,
        |e| matches!(e, Event::VmRemoved { name, host, .. } if name == "far" && host == "h3"),
    )
    .await;
}
