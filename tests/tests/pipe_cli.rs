//! `ferromega pipe NAME` against a real server: a reader prints what is written into the
//! pipe, `--write-only` writes standard input into it, a host pipeline (`plumb`) sits
//! between two pipes, and `via` rewrites messages on the way.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

use std::process::Stdio;
use std::time::{Duration, Instant};

use ferromega_tests::host::{binary, free_port, ok, Server};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

type Lines = tokio::io::Lines<BufReader<tokio::process::ChildStdout>>;

/// The next line the pipe client printed.
async fn next(lines: &mut Lines) -> String {
    tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("no line from the pipe")
        .unwrap()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipe_client_reads_and_writes_through_a_pipeline() {
    let tmp = tempfile::Builder::new()
        .prefix("fm-pipe-")
        .tempdir()
        .unwrap();
    let base = tmp.path().join("base");
    let addr = format!("127.0.0.1:{}", free_port());
    let server = Server::start(&base, &addr);
    let c = server.client();

    // A reader of `out`, and a pipeline `in` → sed → `out`.
    let mut reader = tokio::process::Command::new(binary())
        .args(["--addr", &addr, "pipe", "out"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(reader.stdout.take().unwrap()).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let pipes = ok(&c, ".columns name,readers pipe").await;
        if pipes[0]
            .tabular
            .iter()
            .any(|r| r[0] == "out" && r[1] == "1")
        {
            break;
        }
        assert!(Instant::now() < deadline, "the client never read `out`");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    ok(&c, "plumb in \"sed -u s/^/piped:/\" out").await;

    // The writer: two lines into `in`, then it ends.
    let mut writer = tokio::process::Command::new(binary())
        .args(["--addr", &addr, "pipe", "--write-only", "in"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = writer.stdin.take().unwrap();
    stdin.write_all(b"one\ntwo\n").await.unwrap();
    drop(stdin);
    assert!(writer.wait().await.unwrap().success());

    assert_eq!(next(&mut lines).await, "piped:one");
    assert_eq!(next(&mut lines).await, "piped:two");

    // A via program rewrites each message for each reader.
    ok(&c, "pipe out via rev").await;
    ok(&c, "pipe out abc").await;
    assert_eq!(next(&mut lines).await, "cba");
    ok(&c, "clear pipe out via").await;
    ok(&c, "pipe out plain").await;
    assert_eq!(next(&mut lines).await, "plain");

    // Bad input changes nothing.
    let r = c
        .command("minimega", "pipe out via no-such-program")
        .await
        .unwrap();
    assert!(!r.batches[0].resp[0].error.is_empty());
    let e = c.pipe_read("nope", "x").await.unwrap_err();
    assert!(e.to_string().contains("unknown namespace"), "{e}");
    reader.kill().await.unwrap();
}
