//! Host test: real QEMU VMs under TCG through a real `ferromega serve` — boot the guest
//! image, pause/resume, QMP, screenshot, cdrom, hotplug, an outside kill, and a server
//! killed with SIGKILL that finds its VMs again. Needs root, QEMU and the guest image
//! (`misc/images/build target/images`); fails loudly when any is missing.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use ferromega_client::Client;
use ferromega_tests::host::{free_port, guest_images, info, ok, png_is_not_blank, Server};

async fn wait_state(c: &Client, name: &str, state: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = info(c, name, "state").await;
        if s == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed {s}, wanted {state}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn wait_for_log(path: &Path, marker: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(marker) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no `{marker}` in {} after {secs}s:\n{text}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn qemu_alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    !stat.is_empty()
        && stat
            .rsplit(')')
            .next()
            .and_then(|r| r.split_whitespace().next())
            != Some("Z")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kvm_vm_lifecycle_with_real_qemu() {
    let images = guest_images();
    let tmp = tempfile::Builder::new()
        .prefix("fm-kvm-")
        .tempdir()
        .unwrap();
    let base = tmp.path().join("base");
    std::fs::create_dir_all(&base).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Server::start(&base, &addr);
    let c = server.client();

    ok(
        &c,
        &format!(
            "vm config kernel {}",
            images.join("miniccc.kernel").display()
        ),
    )
    .await;
    ok(
        &c,
        &format!(
            "vm config initrd {}",
            images.join("miniccc.initrd").display()
        ),
    )
    .await;
    ok(
        &c,
        "vm config append console=ttyS0 no_timer_check quiet panic=-1",
    )
    .await;
    ok(&c, "vm config memory 128").await;
    ok(&c, "vm launch kvm vm0").await;
    assert_eq!(info(&c, "vm0", "state").await, "BUILDING");
    let pid: u32 = info(&c, "vm0", "pid").await.parse().unwrap();
    assert!(qemu_alive(pid), "qemu {pid} not running");
    let id = info(&c, "vm0", "id").await;
    let dir = base.join(&id);

    ok(&c, "vm start vm0").await;
    assert_eq!(info(&c, "vm0", "state").await, "RUNNING");
    wait_for_log(&dir.join("qemu.log"), "ferromega-guest: ready", 120);

    let qmp = ok(&c, r#"vm qmp vm0 '{"execute":"query-status"}'"#).await;
    assert!(
        qmp[0].response.contains(r#""status":"running""#),
        "{}",
        qmp[0].response
    );

    let shot = tmp.path().join("shot.png");
    ok(
        &c,
        &format!("vm screenshot vm0 file {} 400", shot.display()),
    )
    .await;
    assert!(
        png_is_not_blank(&std::fs::read(&shot).unwrap()),
        "screenshot is blank"
    );

    ok(&c, "vm stop vm0").await;
    assert_eq!(info(&c, "vm0", "state").await, "PAUSED");
    let qmp = ok(&c, r#"vm qmp vm0 '{"execute":"query-status"}'"#).await;
    assert!(
        qmp[0].response.contains(r#""status":"paused""#),
        "{}",
        qmp[0].response
    );
    ok(&c, "vm start vm0").await;
    assert_eq!(info(&c, "vm0", "state").await, "RUNNING");

    let iso = tmp.path().join("cd.iso");
    std::fs::write(&iso, vec![0u8; 64 * 1024]).unwrap();
    ok(&c, &format!("vm cdrom change vm0 {}", iso.display())).await;
    assert_eq!(info(&c, "vm0", "cdrom").await, iso.display().to_string());
    let block = ok(&c, r#"vm qmp vm0 '{"execute":"query-block"}'"#).await;
    assert!(
        block[0].response.contains("cd.iso"),
        "{}",
        block[0].response
    );
    ok(&c, "vm cdrom eject vm0").await;
    assert_eq!(info(&c, "vm0", "cdrom").await, "");

    let usb = tmp.path().join("usb.img");
    std::fs::write(&usb, vec![0u8; 1024 * 1024]).unwrap();
    ok(&c, &format!("vm hotplug add vm0 {} 2.0", usb.display())).await;
    let list = ok(&c, ".annotate false vm hotplug").await;
    assert_eq!(
        list[0].tabular,
        vec![vec![
            "vm0".to_string(),
            "0".into(),
            usb.display().to_string(),
            "2.0".into()
        ]]
    );
    let tree = ok(&c, r#"vm qmp vm0 '{"execute":"human-monitor-command","arguments":{"command-line":"info usb"}}'"#).await;
    assert!(
        tree[0].response.contains("hotplug0"),
        "{}",
        tree[0].response
    );
    ok(&c, "vm hotplug remove vm0 0").await;
    assert!(ok(&c, "vm hotplug").await[0].tabular.is_empty());

    // QEMU killed from outside: the VM is QUIT within a second or two.
    let killed = Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    wait_state(&c, "vm0", "QUIT", 3).await;

    // A named start relaunches it.
    ok(&c, "vm start vm0").await;
    assert_eq!(info(&c, "vm0", "state").await, "RUNNING");
    let pid: u32 = info(&c, "vm0", "pid").await.parse().unwrap();
    ok(&c, "vm launch kvm vm1").await;

    // The server dies with SIGKILL; a new one on the same base finds both VMs.
    server.crash();
    assert!(qemu_alive(pid), "vm0's qemu died with the server");
    let server = Server::start(&base, &addr);
    let c = server.client();
    assert_eq!(info(&c, "vm0", "state").await, "RUNNING");
    assert_eq!(info(&c, "vm0", "pid").await, pid.to_string());
    assert_eq!(info(&c, "vm1", "state").await, "BUILDING");
    let qmp = ok(&c, r#"vm qmp vm0 '{"execute":"query-status"}'"#).await;
    assert!(qmp[0].response.contains("running"));
    ok(&c, "vm start vm1").await;
    assert_eq!(info(&c, "vm1", "state").await, "RUNNING");

    // An adopted QEMU killed from outside is noticed too.
    Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    wait_state(&c, "vm0", "QUIT", 3).await;
    let pid1: u32 = info(&c, "vm1", "pid").await.parse().unwrap();

    ok(&c, "clear all").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while qemu_alive(pid1) {
        assert!(Instant::now() < deadline, "qemu {pid1} survived clear all");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        !dir.exists(),
        "instance directory {} left behind",
        dir.display()
    );
}
