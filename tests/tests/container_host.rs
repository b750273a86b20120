//! Host test: real containers through a real `ferromega serve` — init as PID 1 in its own
//! namespaces, hostname, memory limit, CPU quota, the freezer, the console with its
//! scrollback, volumes, bad input, a server killed with SIGKILL, and no mount, cgroup,
//! netns or process left behind across cycles. Needs root, cgroups, overlayfs and the
//! container image (`misc/images/build target/images`); fails loudly when any is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "container_host/support.rs"]
mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::{
    image, info, mounts_under, ns_link, ok, server, vm_count, wait_state, Console, Held, Record,
    Server,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_runs_init_as_pid1_with_limits_freezer_console_and_volumes() {
    let fs = image();
    let (tmp, base, server) = server("fm-ct-life-");
    let c = server.client();
    let vol = tmp.path().join("vol");
    std::fs::create_dir_all(&vol).unwrap();
    std::fs::write(vol.join("hello.txt"), "hello from the host\n").unwrap();

    ok(&c, &format!("vm config filesystem {}", fs.display())).await;
    ok(&c, "vm config memory 64").await;
    ok(&c, "vm config vcpus 2").await;
    ok(&c, &format!("vm config volume /data {}", vol.display())).await;
    ok(&c, "vm config fifos 1").await;
    // preinit runs before init with the host's files and the container's namespaces.
    let preinit = tmp.path().join("preinit.sh");
    let seen = tmp.path().join("preinit.out");
    std::fs::write(
        &preinit,
        format!("#!/bin/sh\necho \"$0 $(hostname)\" > {}\n", seen.display()),
    )
    .unwrap();
    std::fs::set_permissions(
        &preinit,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    ok(&c, &format!("vm config preinit {}", preinit.display())).await;
    ok(&c, "vm launch container ct0").await;
    assert_eq!(info(&c, "ct0", "state").await, "BUILDING");
    assert_eq!(info(&c, "ct0", "hostname").await, "ct0");
    let id = info(&c, "ct0", "id").await;
    let pid = info(&c, "ct0", "pid").await;
    let rec = Record::load(&base, &id);
    assert_eq!(rec.pid.to_string(), pid);
    let mut held = Held::default();
    held.add(&base, &id);

    assert_eq!(
        std::fs::read_to_string(&seen).unwrap(),
        format!("{} ct0\n", preinit.display()),
        "preinit ran with its path as argument, in the container's uts namespace"
    );
    // Frozen before init runs; PID 1 of its own namespaces.
    assert_eq!(rec.freezer(), "FROZEN");
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let nspid = status.lines().find(|l| l.starts_with("NSpid:")).unwrap();
    assert!(nspid.ends_with("\t1"), "init is not pid 1 inside: {nspid}");
    for ns in ["pid", "mnt", "uts", "ipc", "net"] {
        assert_ne!(
            ns_link(&pid, ns),
            ns_link("self", ns),
            "{ns} namespace shared"
        );
    }
    // Limits: memory in bytes, quota = vcpus × period.
    assert_eq!(rec.memory_limit(), 64 << 20);
    assert_eq!(
        rec.cpu_quota(),
        ("2000000".to_string(), "1000000".to_string())
    );
    // No host mount is visible inside.
    let allowed = [
        "/",
        "/proc",
        "/sys",
        "/dev",
        "/dev/shm",
        "/dev/pts",
        "/dev/console",
        "/data",
        "/proc/sys",
        "/proc/sysrq-trigger",
        "/proc/irq",
        "/proc/bus",
        "/proc/kcore",
        "/sys/devices/virtual/dmi/id/product_uuid",
        "/dev/fifos/fifo0",
    ];
    let inside = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    for line in inside.lines() {
        let point = line.split(' ').nth(4).unwrap();
        assert!(allowed.contains(&point), "host mount leaked in: {line}");
    }

    ok(&c, "vm start ct0").await;
    assert_eq!(info(&c, "ct0", "state").await, "RUNNING");
    assert_eq!(rec.freezer(), "THAWED");

    let sock = base.join(&id).join("console");
    let mut con = Console::connect(&sock).await;
    con.until("ferromega-container: ready", 30).await;
    assert_eq!(
        con.sh("echo $PPID").await,
        "1",
        "the console shell's parent is init"
    );
    assert_eq!(con.sh("cat /proc/1/comm").await, "init");
    assert_eq!(con.sh("hostname").await, "ct0");
    // Programs start with default signal dispositions (the server ignores SIGPIPE);
    // glibc's two reserved real-time signals (32, 33) are left as they are.
    let ign = con.sh("grep SigIgn /proc/self/status").await;
    let mask = u64::from_str_radix(ign.trim_start_matches("SigIgn:").trim(), 16).unwrap();
    assert_eq!(
        mask & !(0b11 << 31),
        0,
        "signals ignored in the container: {ign}"
    );
    assert_eq!(con.sh("cat /data/hello.txt").await, "hello from the host");
    assert_eq!(con.sh("[ -p /dev/fifos/fifo0 ] && echo fifo").await, "fifo");
    con.sh("echo written inside > /data/out.txt").await;
    assert_eq!(
        std::fs::read_to_string(vol.join("out.txt")).unwrap(),
        "written inside\n"
    );
    // A process over the memory limit is killed; init and the shell live on.
    let out = con
        .sh("dd if=/dev/zero of=/dev/null bs=200M count=1 2>&1; echo rc=$?")
        .await;
    assert!(
        out.contains("rc=137") || out.contains("Killed"),
        "dd survived: {out}"
    );
    assert!(rec.oom_kills() >= 1, "no oom kill counted");
    assert_eq!(con.sh("echo still here").await, "still here");
    drop(con);

    // Scrollback: a new client first sees what was printed before it connected.
    let mut late = Console::connect(&sock).await;
    let back = late.until("still here", 10).await;
    assert!(back.contains("ferromega-container: ready"), "{back}");
    assert!(back.contains("written inside"), "{back}");
    drop(late);

    // stop/start freeze and thaw.
    ok(&c, "vm stop ct0").await;
    assert_eq!(info(&c, "ct0", "state").await, "PAUSED");
    assert_eq!(rec.freezer(), "FROZEN");
    ok(&c, "vm start ct0").await;
    assert_eq!(info(&c, "ct0", "state").await, "RUNNING");
    assert_eq!(rec.freezer(), "THAWED");

    // vm top samples the cgroup's processes.
    let top = ok(&c, "vm top").await;
    let t = &top[0];
    let procs = t.header.iter().position(|h| h == "procs").unwrap();
    let row = t
        .tabular
        .iter()
        .find(|r| r[1] == "ct0" || r[0] == "ct0")
        .unwrap();
    assert!(row[procs].parse::<u32>().unwrap() >= 2, "{row:?}");

    ok(&c, "vm kill ct0").await;
    assert_eq!(info(&c, "ct0", "state").await, "QUIT");
    ok(&c, "vm flush").await;
    assert_eq!(vm_count(&c).await, 0);
    held.assert_released(&base, server.child.id(), "after vm flush");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_bad_input_is_an_error_on_that_container_only() {
    let fs = image();
    let (tmp, base, server) = server("fm-ct-bad-");
    let c = server.client();
    ok(&c, &format!("vm config filesystem {}", fs.display())).await;
    ok(&c, "vm config memory 32").await;
    ok(&c, "vm launch container good").await;
    ok(&c, "vm start good").await;
    let mut held = Held::default();
    held.add(&base, &info(&c, "good", "id").await);

    let cases: Vec<(&str, Vec<String>, String)> = vec![
        (
            "nofs",
            vec![format!(
                "vm config filesystem {}",
                tmp.path().join("nope").display()
            )],
            format!(
                "container filesystem {} does not exist",
                tmp.path().join("nope").display()
            ),
        ),
        (
            "noinit",
            vec!["vm config init /sbin/nothing-here".into()],
            "init /sbin/nothing-here does not exist in the container filesystem".into(),
        ),
        (
            "novol",
            vec![format!(
                "vm config volume /data {}",
                tmp.path().join("gone").display()
            )],
            format!(
                "volume host path {} does not exist (volume /data)",
                tmp.path().join("gone").display()
            ),
        ),
        (
            "hungry",
            vec![
                "vm config memory 4".into(),
                "vm config init /bin/dd if=/dev/zero of=/dev/null bs=32M count=1".into(),
            ],
            "container init killed: out of memory (memory limit 4 MB)".into(),
        ),
    ];
    for (name, config, want) in cases {
        ok(&c, "clear vm config").await;
        ok(&c, &format!("vm config filesystem {}", fs.display())).await;
        ok(&c, "vm config memory 32").await;
        for line in &config {
            ok(&c, line).await;
        }
        ok(&c, &format!("vm launch container {name}")).await;
        if info(&c, name, "state").await == "BUILDING" {
            ok(&c, &format!("vm start {name}")).await;
        }
        wait_state(&c, name, "ERROR", 30).await;
        let tags: serde_json::Value = serde_json::from_str(&info(&c, name, "tags").await).unwrap();
        assert_eq!(tags["error"], want.as_str(), "{name}");
        let id = info(&c, name, "id").await;
        let dir = base.join(&id);
        assert!(!dir.join("container.json").exists(), "{name}: record left");
        let mounts = mounts_under(&dir);
        assert!(mounts.is_empty(), "{name}: mounts left: {mounts:?}");
        for g in &held.groups {
            assert!(
                !g.join(&id).exists(),
                "{name}: cgroup left in {}",
                g.display()
            );
        }
    }
    assert_eq!(
        info(&c, "good", "state").await,
        "RUNNING",
        "others untouched"
    );
    ok(&c, "clear all").await;
    held.assert_released(&base, server.child.id(), "after clear all");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_leaves_no_mount_cgroup_netns_or_process_across_cycles() {
    let fs = image();
    let (_tmp, base, server) = server("fm-ct-leak-");
    let c = server.client();
    for cycle in 0..3 {
        ok(&c, "clear vm config").await;
        ok(&c, &format!("vm config filesystem {}", fs.display())).await;
        ok(&c, "vm config memory 32").await;
        ok(&c, "vm config fifos 2").await;
        if cycle == 2 {
            ok(&c, "vm config init /bin/sleep 6").await;
        }
        ok(&c, &format!("vm launch container lk{cycle}-[0-2]")).await;
        ok(&c, "vm start all").await;
        let mut held = Held::default();
        for i in 0..3 {
            let name = format!("lk{cycle}-{i}");
            wait_state(&c, &name, "RUNNING", 30).await;
            held.add(&base, &info(&c, &name, "id").await);
        }
        let when = match cycle {
            0 => {
                ok(&c, "vm kill all").await;
                ok(&c, "vm flush").await;
                "vm kill all + vm flush"
            }
            1 => {
                ok(&c, "clear all").await;
                "clear all"
            }
            _ => {
                // init ends by itself: QUIT, then flush.
                for i in 0..3 {
                    wait_state(&c, &format!("lk{cycle}-{i}"), "QUIT", 60).await;
                }
                ok(&c, "vm flush").await;
                "init exit + vm flush"
            }
        };
        assert_eq!(vm_count(&c).await, 0, "{when}");
        held.assert_released(&base, server.child.id(), when);
    }
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container_survives_a_server_killed_with_sigkill() {
    let fs = image();
    let (_tmp, base, mut server) = server("fm-ct-crash-");
    let c = server.client();
    ok(&c, &format!("vm config filesystem {}", fs.display())).await;
    ok(&c, "vm config memory 32").await;
    ok(&c, "vm launch container sv0").await;
    ok(&c, "vm start sv0").await;
    let id = info(&c, "sv0", "id").await;
    let pid = info(&c, "sv0", "pid").await;
    let mut held = Held::default();
    held.add(&base, &id);
    let sock = base.join(&id).join("console");
    Console::connect(&sock)
        .await
        .until("ferromega-container: ready", 30)
        .await;

    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let addr = server.addr.clone();
    drop(server);
    assert!(
        Path::new(&format!("/proc/{pid}")).exists(),
        "container died with the server"
    );
    let server = Server::start(&base, &addr);
    let c = server.client();
    assert_eq!(info(&c, "sv0", "state").await, "RUNNING");
    assert_eq!(info(&c, "sv0", "pid").await, pid);
    let mut con = Console::connect(&sock).await;
    assert_eq!(con.sh("echo back $((40+2))").await, "back 42");
    drop(con);
    ok(&c, "vm stop sv0").await;
    assert_eq!(Record::load(&base, &id).freezer(), "FROZEN");
    ok(&c, "vm start sv0").await;
    ok(&c, "vm kill sv0").await;
    ok(&c, "vm flush").await;
    // The old server is gone, so host init reaps the container's init: give it a moment.
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| s.contains("(init)")) {
        assert!(Instant::now() < deadline, "container init {pid} not reaped");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    held.assert_released(&base, server.child.id(), "after crash, kill and flush");
    drop(server);
}
