//! Host tests of the agent's features with real containers: files sent and received
//! intact (100 MB), background processes listed and killed, tags set inside the guest
//! showing in `vm info`, filters, the log level, tunnels both ways, a plumb pipeline
//! from one container to another, and an agent dialling in over `cc listen`. Needs
//! root, cgroups, overlayfs and the container image; fails loudly when any is missing.

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

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferromega_client::Client;
use ferromega_tests::host::{free_port, image_with_agent, sha256};
use support::{image, info, ok, run, server, Server};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

const UUID_A: &str = "a5e980ca-3958-48cc-92e9-93d50c0157ad";
const UUID_B: &str = "d67f9fed-adea-415a-a66b-301d275a2383";

/// Launches and starts container `name` with this hostname and UUID.
async fn launch(c: &Client, fs: &Path, name: &str, uuid: &str) {
    ok(c, &format!("vm config filesystem {}", fs.display())).await;
    ok(c, &format!("vm config hostname {name}")).await;
    ok(c, &format!("vm config uuid {uuid}")).await;
    ok(c, &format!("vm launch container {name}")).await;
    ok(c, &format!("vm start {name}")).await;
}

/// A server with containers `(name, uuid)` started from the image with a fresh agent,
/// their agents checked in.
async fn with_clients(
    prefix: &str,
    vms: &[(&str, &str)],
) -> (tempfile::TempDir, PathBuf, Server, Client) {
    let (tmp, base, server) = server(prefix);
    let fs = image_with_agent(&image(), tmp.path());
    let c = server.client();
    for (name, uuid) in vms {
        launch(&c, &fs, name, uuid).await;
    }
    for (name, _) in vms {
        wait_active(&c, name).await;
    }
    (tmp, base, server, c)
}

/// Kills and flushes every VM.
async fn finish(c: &Client) {
    ok(c, "vm kill all").await;
    ok(c, "vm flush").await;
}

async fn wait_active(c: &Client, name: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while info(c, name, "cc_active").await != "true" {
        assert!(Instant::now() < deadline, "{name}'s agent never checked in");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Queues `cc <line>`; the command's ID.
async fn queue(c: &Client, line: &str) -> String {
    ok(c, &format!("cc {line}")).await;
    let cmds = ok(c, ".columns id cc commands").await;
    cmds[0].tabular.last().unwrap()[0].clone()
}

/// Waits until command `id` has `n` responses.
async fn wait_responses(c: &Client, id: &str, n: usize, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let cmds = ok(c, ".columns id,responses cc commands").await;
        let got = cmds[0]
            .tabular
            .iter()
            .find(|r| r[0] == id)
            .map(|r| r[1].parse::<usize>().unwrap())
            .unwrap_or(0);
        if got >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "command {id}: {got} of {n} responses"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A response file of command `id` from client `uuid`.
fn response(base: &Path, id: &str, uuid: &str, file: &str) -> PathBuf {
    base.join("files/miniccc_responses")
        .join(id)
        .join(uuid)
        .join(file)
}

/// `cc exec` of `argv`, waited for; its standard output from client `uuid`.
async fn exec(c: &Client, base: &Path, uuid: &str, argv: &str) -> String {
    let id = queue(c, &format!("exec {argv}")).await;
    wait_responses(c, &id, 1, 60).await;
    std::fs::read_to_string(response(base, &id, uuid, "stdout")).unwrap_or_default()
}

async fn poll<F, Fut>(what: &str, secs: u64, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_file_is_sent_and_received_intact() {
    let (_tmp, base, _server, c) = with_clients("fm-cc-files-", &[("ct0", UUID_A)]).await;

    let files = base.join("files");
    std::fs::create_dir_all(&files).unwrap();
    let big = files.join("big.bin");
    let mut data = vec![0u8; 100 * 1024 * 1024];
    let mut x: u64 = 0x9e3779b97f4a7c15;
    for chunk in data.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    std::fs::write(&big, &data).unwrap();
    drop(data);
    let want = sha256(&big);

    let started = Instant::now();
    let id = queue(&c, "send big.bin").await;
    wait_responses(&c, &id, 1, 300).await;
    let send_s = started.elapsed().as_secs_f64();
    let got = exec(&c, &base, UUID_A, "sha256sum /tmp/miniccc/files/big.bin").await;
    assert_eq!(
        got.split_whitespace().next(),
        Some(want.as_str()),
        "sent copy"
    );

    let started = Instant::now();
    let id = queue(&c, "recv /tmp/miniccc/files/big.bin").await;
    wait_responses(&c, &id, 1, 300).await;
    let recv_s = started.elapsed().as_secs_f64();
    let back = response(&base, &id, UUID_A, "tmp/miniccc/files/big.bin");
    assert_eq!(sha256(&back), want, "received copy");
    eprintln!("100 MB: send {send_s:.1} s, recv {recv_s:.1} s");

    // A file that does not exist is the command's error; nothing is queued.
    let e = run(&c, "cc send nope.bin").await;
    assert_eq!(e[0].error, "no such file: nope.bin");
    let e = run(&c, "cc send /etc/passwd").await;
    assert!(
        e[0].error.starts_with("can only send files from"),
        "{}",
        e[0].error
    );
    // A file that is missing in the guest is reported in the response.
    let id = queue(&c, "recv /nonexistent").await;
    wait_responses(&c, &id, 1, 60).await;
    let err = std::fs::read_to_string(response(&base, &id, UUID_A, "stderr")).unwrap();
    assert!(err.contains("/nonexistent: no such file"), "{err}");
    finish(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_tags_filters_and_log_level() {
    let (_tmp, base, _server, c) =
        with_clients("fm-cc-procs-", &[("ct0", UUID_A), ("ct1", UUID_B)]).await;

    // Filters: only ct1 answers.
    ok(&c, "cc filter hostname=ct1").await;
    let id = queue(&c, "exec hostname").await;
    wait_responses(&c, &id, 1, 60).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(response(&base, &id, UUID_B, "stdout").exists());
    assert!(
        !response(&base, &id, UUID_A, "stdout").exists(),
        "ct0 ran a filtered command"
    );
    ok(&c, "clear cc filter").await;
    // A filter that does not parse changes nothing.
    assert!(!run(&c, "cc filter nonsense").await[0].error.is_empty());
    assert_eq!(ok(&c, "cc filter").await[0].tabular.len(), 0);

    // Background processes are listed, then killed.
    ok(&c, "cc background sleep 1000").await;
    let list = || async {
        ok(&c, "cc process list all").await[0]
            .tabular
            .iter()
            .filter(|r| r[3] == "sleep 1000")
            .count()
    };
    poll("two sleeps listed", 60, || async { list().await == 2 }).await;
    let rows = ok(&c, "cc process list ct0").await;
    assert_eq!(rows[0].tabular.len(), 1);
    assert_eq!(rows[0].tabular[0][0], "ct0");
    ok(&c, "cc process kill all").await;
    poll("sleeps killed", 60, || async { list().await == 0 }).await;
    ok(&c, "cc background sleep 999").await;
    poll("sleep 999 listed", 60, || async {
        ok(&c, "cc process list all").await[0].tabular.len() == 2
    })
    .await;
    ok(&c, "cc process killall sleep").await;
    poll("killall", 60, || async {
        ok(&c, "cc process list all").await[0].tabular.is_empty()
    })
    .await;

    // Tags set inside the guest show in vm info.
    ok(&c, "cc filter hostname=ct0").await;
    ok(&c, "cc exec ferromega-agent tag role web").await;
    poll("the guest's tag in vm info", 60, || async {
        info(&c, "ct0", "tags").await.contains("\"role\":\"web\"")
    })
    .await;
    ok(&c, "clear cc filter").await;
    // ... and filters can select by it.
    ok(&c, "cc filter role=web").await;
    let id = queue(&c, "exec hostname").await;
    wait_responses(&c, &id, 1, 60).await;
    let out = std::fs::read_to_string(response(&base, &id, UUID_A, "stdout")).unwrap();
    assert_eq!(out, "ct0\n");
    ok(&c, "clear cc filter").await;

    // The log level changes; a bad one is refused before it is queued.
    let id = queue(&c, "log level debug").await;
    wait_responses(&c, &id, 2, 60).await;
    assert!(!response(&base, &id, UUID_A, "stderr").exists());
    assert!(!run(&c, "cc log level loud").await[0].error.is_empty());

    // Flushed VMs are forgotten by cc.
    ok(&c, "vm kill ct1").await;
    ok(&c, "vm flush").await;
    poll("ct1's client gone", 30, || async {
        ok(&c, "cc").await[0].tabular[0][0] == "1"
    })
    .await;
    finish(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnels_carry_tcp_both_ways() {
    let (_tmp, base, _server, c) = with_clients("fm-cc-tunnel-", &[("ct0", UUID_A)]).await;

    // cc tunnel: a host port to a web server inside the container.
    exec(
        &c,
        &base,
        UUID_A,
        "sh -c 'mkdir -p /tmp/www && echo tunnelled > /tmp/www/index.html'",
    )
    .await;
    ok(&c, "cc background httpd -f -p 8000 -h /tmp/www").await;
    let port = free_port();
    ok(&c, &format!("cc tunnel {UUID_A} {port} 127.0.0.1 8000")).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let body = loop {
        let mut body = String::new();
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            let _ = s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").await;
            let _ = s.read_to_string(&mut body).await;
        }
        if body.contains("tunnelled") {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "no page through the tunnel: {body:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(body.starts_with("HTTP/1."), "{body}");
    // A tunnel to a closed port closes the connection.
    let closed = free_port();
    ok(&c, &format!("cc tunnel {UUID_A} {closed} 127.0.0.1 8001")).await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", closed))
        .await
        .unwrap();
    let mut buf = Vec::new();
    let n = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut buf))
        .await
        .expect("the tunnel to a closed port stayed open");
    assert_eq!(n.unwrap_or(0), 0);
    // An unknown client is an error.
    let e = run(
        &c,
        &format!(
            "cc tunnel 00000000-0000-0000-0000-000000000000 {} 127.0.0.1 80",
            free_port()
        ),
    )
    .await;
    assert!(e[0].error.starts_with("no such client"), "{}", e[0].error);

    // cc rtunnel: a guest port back to a listener on the host.
    let host = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let hport = host.local_addr().unwrap().port();
    ok(&c, &format!("cc rtunnel 9000 127.0.0.1 {hport}")).await;
    let accept = tokio::spawn(async move {
        // One line, then close: the guest's nc ends when the tunnel does.
        let (s, _) = host.accept().await.unwrap();
        let mut got = String::new();
        tokio::io::BufReader::new(s)
            .read_line(&mut got)
            .await
            .unwrap();
        got
    });
    poll(
        "the guest reaching the host through the rtunnel",
        60,
        || async {
            let out = exec(
                &c,
                &base,
                UUID_A,
                "sh -c 'echo from-guest | nc 127.0.0.1 9000 && echo sent'",
            )
            .await;
            out.contains("sent")
        },
    )
    .await;
    let got = tokio::time::timeout(Duration::from_secs(20), accept)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, "from-guest\n");
    finish(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plumb_pipeline_moves_data_from_one_container_to_another() {
    let (_tmp, base, _server, c) =
        with_clients("fm-cc-plumb-", &[("ct0", UUID_A), ("ct1", UUID_B)]).await;

    // ct1 reads p1 into a file; the host pipeline marks each line of p0 into p1.
    ok(&c, "cc filter hostname=ct1").await;
    ok(
        &c,
        // (no `$` in commands: the preprocessor expands variables, as minimega's does)
        "cc background stdin=p1 sh -c 'cat >> /tmp/got'",
    )
    .await;
    let readers = |pipe: &'static str| {
        let c = &c;
        async move {
            ok(c, ".columns name,readers pipe").await[0]
                .tabular
                .iter()
                .find(|r| r[0] == pipe)
                .map(|r| r[1].clone())
                .unwrap_or_default()
        }
    };
    poll("ct1 reading p1", 60, || async {
        readers("p1").await == "1"
    })
    .await;
    ok(&c, "plumb p0 \"sed -u s/^/up:/\" p1").await;
    assert_eq!(
        ok(&c, "plumb").await[0].tabular,
        vec![vec!["p0 \"sed -u s/^/up:/\" p1".to_string()]]
    );
    poll("the pipeline reading p0", 10, || async {
        readers("p0").await == "1"
    })
    .await;
    ok(&c, "cc filter hostname=ct0").await;
    ok(&c, "cc exec stdout=p0 sh -c 'echo hello; echo world'").await;
    ok(&c, "cc filter hostname=ct1").await;
    poll("the lines in ct1", 60, || async {
        exec(&c, &base, UUID_B, "cat /tmp/got").await == "up:hello\nup:world\n"
    })
    .await;
    // Writing from the host goes the same way.
    ok(&c, "pipe p0 again").await;
    poll("the host's line in ct1", 60, || async {
        exec(&c, &base, UUID_B, "cat /tmp/got")
            .await
            .ends_with("up:again\n")
    })
    .await;
    let e = run(&c, "clear pipe nope").await;
    assert_eq!(e[0].error, "no such pipe: nope");
    ok(&c, "clear plumb").await;
    assert!(ok(&c, "plumb").await[0].tabular.is_empty());
    ok(&c, "clear cc filter").await;
    finish(&c).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_agent_dials_in_over_cc_listen() {
    let (tmp, base, server) = server("fm-cc-listen-");
    let c = server.client();
    // A container without an agent of its own: its init only sleeps.
    ok(&c, &format!("vm config filesystem {}", image().display())).await;
    ok(&c, "vm config init /bin/sleep 1000").await;
    ok(&c, &format!("vm config uuid {UUID_A}")).await;
    ok(&c, "vm launch container ct0").await;
    ok(&c, "vm start ct0").await;
    let port = free_port();
    ok(&c, &format!("cc listen {port}")).await;
    // The same port twice is an error.
    assert!(!run(&c, &format!("cc listen {port}")).await[0]
        .error
        .is_empty());

    // A host-side agent speaking for the container over TCP.
    let agent = ferromega_tests::host::static_agent();
    let dir = tmp.path().join("agent");
    let mut child = tokio::process::Command::new(agent)
        .args(["--path", &format!("tcp:127.0.0.1:{port}"), "--uuid", UUID_A])
        .arg("--dir")
        .arg(&dir)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_active(&c, "ct0").await;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    assert_eq!(
        exec(&c, &base, UUID_A, "hostname").await.trim(),
        host.trim()
    );
    // An agent with an unknown UUID is refused; the first one stays.
    let mut other = tokio::process::Command::new(ferromega_tests::host::static_agent())
        .args(["--path", &format!("tcp:127.0.0.1:{port}")])
        .args(["--uuid", "00000000-0000-0000-0000-000000000001"])
        .arg("--dir")
        .arg(tmp.path().join("agent2"))
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(ok(&c, "cc").await[0].tabular[0][0], "1");
    let _ = other.kill().await;
    let _ = child.kill().await;
    finish(&c).await;
}
