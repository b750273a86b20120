//! Host test: command and control with a real KVM guest — the guest image's agent finds
//! the virtio-serial port named `cc`, the server dials QEMU's `<dir>/cc`, the client
//! checks in with the UUID QEMU gives the guest, and `cc exec hostname` answers. Needs
//! QEMU and the guest image built with the agent (`misc/test` builds it with `AGENT=`);
//! fails loudly when any is missing. A second test sends and receives a 100 MB file
//! through the guest and reboots it mid-session: its agent says hello again on the
//! link that stayed up and answers new commands, without re-running old ones.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::time::{Duration, Instant};

use ferromega_client::Client;
use ferromega_tests::host::{free_port, guest_images, info, ok, sha256, Server};

/// Boots guest `vm0` with `uuid` and `memory` MB; waits for its agent.
async fn boot(c: &Client, uuid: &str, memory: u32) {
    let images = guest_images();
    for line in [
        format!(
            "vm config kernel {}",
            images.join("miniccc.kernel").display()
        ),
        format!(
            "vm config initrd {}",
            images.join("miniccc.initrd").display()
        ),
        "vm config append console=ttyS0 no_timer_check quiet panic=-1".to_string(),
        format!("vm config memory {memory}"),
        format!("vm config uuid {uuid}"),
        "vm launch kvm vm0".to_string(),
        "vm start vm0".to_string(),
    ] {
        ok(c, &line).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while info(c, "vm0", "cc_active").await != "true" {
        assert!(
            Instant::now() < deadline,
            "the guest's agent never checked in (is the guest image built with AGENT=?)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn start() -> (tempfile::TempDir, std::path::PathBuf, Server) {
    let tmp = tempfile::Builder::new()
        .prefix("fm-cc-kvm-")
        .tempdir()
        .unwrap();
    let base = tmp.path().join("base");
    std::fs::create_dir_all(&base).unwrap();
    let server = Server::start(&base, &format!("127.0.0.1:{}", free_port()));
    (tmp, base, server)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc_exec_hostname_answers_from_a_kvm_guest() {
    let (_tmp, base, server) = start();
    let c = server.client();
    let uuid = "11111111-2222-3333-4444-555555555555";
    boot(&c, uuid, 128).await;
    let clients = ok(&c, "cc clients").await;
    assert_eq!(clients[0].tabular.len(), 1);
    assert_eq!(clients[0].tabular[0][0], uuid);

    ok(&c, "cc exec hostname").await;
    let out = base.join(format!("files/miniccc_responses/1/{uuid}/stdout"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !out.exists() {
        assert!(Instant::now() < deadline, "no response from the guest");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hostname = std::fs::read_to_string(&out).unwrap();
    assert!(!hostname.trim().is_empty(), "empty hostname");
    ok(&c, "vm kill all").await;
    ok(&c, "vm flush").await;
}

/// Queues `cc <line>`, waits for its one response; its ID.
async fn answered(c: &Client, line: &str, secs: u64) -> String {
    ok(c, &format!("cc {line}")).await;
    let cmds = ok(c, ".columns id cc commands").await;
    let id = cmds[0].tabular.last().unwrap()[0].clone();
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let cmds = ok(c, ".columns id,responses cc commands").await;
        if cmds[0].tabular.iter().any(|r| r[0] == id && r[1] == "1") {
            return id;
        }
        assert!(Instant::now() < deadline, "no answer to `cc {line}`");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kvm_guest_moves_100_mb_both_ways_and_reconnects_after_a_reboot() {
    let (_tmp, base, server) = start();
    let c = server.client();
    let uuid = "11111111-2222-3333-4444-666666666666";
    boot(&c, uuid, 1024).await;
    let responses = base.join("files/miniccc_responses");
    let stdout = |id: &str| {
        std::fs::read_to_string(responses.join(id).join(uuid).join("stdout")).unwrap_or_default()
    };

    let big = base.join("files/big.bin");
    let status = std::process::Command::new("head")
        .args(["-c", "104857600", "/dev/urandom"])
        .stdout(std::fs::File::create(&big).unwrap())
        .status()
        .unwrap();
    assert!(status.success());
    let want = sha256(&big);
    let t = Instant::now();
    answered(&c, "send big.bin", 900).await;
    let send_s = t.elapsed().as_secs_f64();
    let id = answered(&c, "exec sha256sum /tmp/miniccc/files/big.bin", 120).await;
    assert_eq!(stdout(&id).split_whitespace().next(), Some(want.as_str()));
    let t = Instant::now();
    let id = answered(&c, "recv /tmp/miniccc/files/big.bin", 900).await;
    let recv_s = t.elapsed().as_secs_f64();
    let back = responses
        .join(&id)
        .join(uuid)
        .join("tmp/miniccc/files/big.bin");
    assert_eq!(sha256(&back), want, "the received copy differs");
    eprintln!("KVM (TCG) 100 MB: send {send_s:.1} s, recv {recv_s:.1} s");

    let before = ok(&c, ".columns id cc commands").await[0].tabular.len();
    answered(&c, "background sh -c 'sleep 2; reboot -f'", 60).await;
    // The guest goes down and comes back; its agent answers a new command.
    let id = answered(&c, "exec cat /proc/uptime", 300).await;
    let uptime: f64 = stdout(&id)
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        uptime < 120.0,
        "the guest did not reboot (uptime {uptime} s)"
    );
    let cmds = ok(&c, ".columns id,responses cc commands").await;
    assert_eq!(cmds[0].tabular.len(), before + 2);
    assert!(
        cmds[0].tabular.iter().all(|r| r[1] == "1"),
        "a command ran twice: {:?}",
        cmds[0].tabular
    );
    assert_eq!(info(&c, "vm0", "cc_active").await, "true");
    ok(&c, "vm kill all").await;
    ok(&c, "vm flush").await;
}
