//! Host test: command and control with a real KVM guest — the guest image's agent finds
//! the virtio-serial port named `cc`, the server dials QEMU's `<dir>/cc`, the client
//! checks in with the UUID QEMU gives the guest, and `cc exec hostname` answers. Needs
//! QEMU and the guest image built with the agent (`misc/test` builds it with `AGENT=`);
//! fails loudly when any is missing.

use std::time::{Duration, Instant};

use ferromega_tests::host::{free_port, guest_images, info, ok, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc_exec_hostname_answers_from_a_kvm_guest() {
    let images = guest_images();
    let tmp = tempfile::Builder::new()
        .prefix("fm-cc-kvm-")
        .tempdir()
        .unwrap();
    let base = tmp.path().join("base");
    std::fs::create_dir_all(&base).unwrap();
    let server = Server::start(&base, &format!("127.0.0.1:{}", free_port()));
    let c = server.client();
    let uuid = "11111111-2222-3333-4444-555555555555";
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
        "vm config memory 128".to_string(),
        format!("vm config uuid {uuid}"),
        "vm launch kvm vm0".to_string(),
        "vm start vm0".to_string(),
    ] {
        ok(&c, &line).await;
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while info(&c, "vm0", "cc_active").await != "true" {
        assert!(
            Instant::now() < deadline,
            "the guest's agent never checked in (is the guest image built with AGENT=?)"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
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
