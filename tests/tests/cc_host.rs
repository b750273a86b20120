//! Host test: command and control with a real container — the agent, built statically
//! and put into a copy of the container image, checks in through the container's `/cc`
//! socket, answers `cc exec hostname`, and its response lands on disk. Needs root,
//! cgroups, overlayfs and the container image (`misc/images/build target/images`); fails
//! loudly when any is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "container_host/support.rs"]
#[expect(
    dead_code,
    reason = "shared with container_host.rs, which uses all of it"
)]
mod support;

use std::time::{Duration, Instant};

use ferromega_tests::host::image_with_agent;
use support::{image, info, ok, run, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cc_exec_hostname_answers_from_a_container() {
    let (tmp, base, server) = server("fm-cc-host-");
    let fs = image_with_agent(&image(), tmp.path());
    let c = server.client();
    let uuid = "a5e980ca-3958-48cc-92e9-93d50c0157ad";
    ok(&c, &format!("vm config filesystem {}", fs.display())).await;
    ok(&c, "vm config hostname cchost").await;
    ok(&c, &format!("vm config uuid {uuid}")).await;
    ok(&c, "vm launch container ct0").await;
    ok(&c, "vm start all").await;

    let deadline = Instant::now() + Duration::from_secs(60);
    while info(&c, "ct0", "cc_active").await != "true" {
        assert!(Instant::now() < deadline, "the agent never checked in");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let clients = ok(&c, "cc clients").await;
    assert_eq!(clients[0].tabular.len(), 1);
    assert_eq!(clients[0].tabular[0][0], uuid);
    assert_eq!(clients[0].tabular[0][1], "cchost");

    ok(&c, "cc exec hostname").await;
    let out = base.join(format!("files/miniccc_responses/1/{uuid}/stdout"));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !out.exists() {
        assert!(Instant::now() < deadline, "no response from the agent");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "cchost\n");
    let resp = run(&c, "cc responses 1").await;
    assert_eq!(
        resp[0].response,
        format!("1/{uuid}/stdout:\ncchost"),
        "cc responses"
    );
    let cmds = ok(&c, ".columns id,responses cc commands").await;
    assert_eq!(
        cmds[0].tabular,
        vec![vec!["1".to_string(), "1".to_string()]]
    );
    ok(&c, "vm kill all").await;
    ok(&c, "vm flush").await;
}
