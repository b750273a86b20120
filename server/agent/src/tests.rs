//! The agent over a duplex, against a scripted server: commands in ID order, files sent
//! and received in parts, background processes tracked and killed, tags, pipes.

use std::time::Duration;

use ferromega_cc_proto::{
    read_frame, write_frame, Command, Hello, Message, PipeMode, SendFile, VERSION,
};
use tokio::io::{ReadHalf, WriteHalf};

use crate::state::Agent;

type Server = (
    ReadHalf<tokio::io::DuplexStream>,
    WriteHalf<tokio::io::DuplexStream>,
);

/// Starts an agent in `dir` over a duplex, does the handshake, returns the server side.
async fn connected(dir: &std::path::Path) -> (Agent, Server) {
    let (agent_side, server_side) = tokio::io::duplex(1 << 20);
    let (ar, aw) = tokio::io::split(agent_side);
    let (mut sr, mut sw) = tokio::io::split(server_side);
    let agent = Agent::new(dir.to_path_buf());
    let a = agent.clone();
    tokio::spawn(async move {
        let _ = crate::session::serve(&a, ar, aw, Hello::default()).await;
    });
    assert!(matches!(
        read_frame(&mut sr).await.unwrap(),
        Some(Message::Hello(_))
    ));
    write_frame(&mut sw, &Message::Welcome { version: VERSION })
        .await
        .unwrap();
    (agent, (sr, sw))
}

/// Reads frames until `want` picks one (heartbeats and others are skipped), for at
/// most 20 seconds.
async fn until<T>(s: &mut Server, mut want: impl FnMut(Message) -> Option<T>) -> T {
    let pick = async {
        loop {
            let m = read_frame(&mut s.0).await.unwrap().expect("agent hung up");
            if let Some(t) = want(m) {
                return t;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(20), pick)
        .await
        .expect("timed out")
}

async fn send(s: &mut Server, commands: Vec<Command>) {
    write_frame(&mut s.1, &Message::Commands { commands })
        .await
        .unwrap();
}

fn cmd(id: u64, argv: &[&str]) -> Command {
    Command {
        id,
        argv: argv.iter().map(|s| s.to_string()).collect(),
        ..Command::default()
    }
}

#[tokio::test]
async fn commands_run_in_id_order() {
    let tmp = tempfile::tempdir().unwrap();
    let (_a, mut s) = connected(tmp.path()).await;
    send(
        &mut s,
        vec![cmd(2, &["echo", "hi2"]), cmd(1, &["echo", "hi1"])],
    )
    .await;
    let mut got = Vec::new();
    while got.len() < 2 {
        got.push(
            until(&mut s, |m| match m {
                Message::Response(r) => Some(r),
                _ => None,
            })
            .await,
        );
    }
    assert_eq!((got[0].id, got[0].stdout.as_str()), (1, "hi1\n"), "{got:?}");
    assert_eq!((got[1].id, got[1].stdout.as_str()), (2, "hi2\n"));
}

#[tokio::test]
async fn a_sent_file_is_fetched_in_parts_and_a_received_one_comes_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (_a, mut s) = connected(tmp.path()).await;
    let content: Vec<u8> = (0..2_500_000u32).map(|i| (i % 251) as u8).collect();
    let mut c = cmd(1, &[]);
    c.send = vec![SendFile {
        name: "sub/blob".into(),
        perm: 0o640,
    }];
    let back = tmp.path().join("files/sub/blob");
    c.recv = vec![back.to_string_lossy().into_owned()];
    send(&mut s, vec![c]).await;
    let mut parts = 0;
    loop {
        let m = until(&mut s, |m| match m {
            m @ (Message::FileGet { .. } | Message::FileData { .. }) => Some(m),
            _ => None,
        })
        .await;
        let Message::FileGet { name, offset } = m else {
            panic!("FileData before the file was fetched")
        };
        parts += 1;
        let at = offset as usize;
        let end = (at + ferromega_cc_proto::CHUNK).min(content.len());
        let reply = Message::FileChunk {
            name,
            offset,
            size: content.len() as u64,
            perm: 0o640,
            data: content[at..end].to_vec(),
            error: None,
        };
        write_frame(&mut s.1, &reply).await.unwrap();
        if end == content.len() {
            break;
        }
    }
    assert_eq!(parts, 3);
    let mut got = Vec::new();
    let resp = loop {
        match until(&mut s, Some).await {
            Message::FileData {
                id, offset, data, ..
            } => {
                assert_eq!((id, offset as usize), (1, got.len()));
                got.extend(data);
            }
            Message::Response(r) => break r,
            _ => {}
        }
    };
    assert_eq!(resp.stderr, "");
    assert_eq!(got, content);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&back).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[tokio::test]
async fn a_missing_file_to_send_is_an_error_in_the_response() {
    let tmp = tempfile::tempdir().unwrap();
    let (_a, mut s) = connected(tmp.path()).await;
    let mut c = cmd(1, &[]);
    c.send = vec![SendFile {
        name: "nope".into(),
        perm: 0o644,
    }];
    send(&mut s, vec![c]).await;
    let name = until(&mut s, |m| match m {
        Message::FileGet { name, .. } => Some(name),
        _ => None,
    })
    .await;
    let reply = Message::FileChunk {
        name,
        offset: 0,
        size: 0,
        perm: 0,
        data: vec![],
        error: Some("no such file: nope".into()),
    };
    write_frame(&mut s.1, &reply).await.unwrap();
    let r = until(&mut s, |m| match m {
        Message::Response(r) => Some(r),
        _ => None,
    })
    .await;
    assert_eq!(r.stderr, "nope: no such file: nope\n");
    assert!(!tmp.path().join("files/nope").exists());
}

#[tokio::test]
async fn background_processes_are_listed_then_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let (_a, mut s) = connected(tmp.path()).await;
    let mut c = cmd(1, &["sleep", "300"]);
    c.background = true;
    send(&mut s, vec![c]).await;
    let procs = until(&mut s, |m| match m {
        Message::Processes { processes } if !processes.is_empty() => Some(processes),
        _ => None,
    })
    .await;
    assert_eq!(procs[0].argv, vec!["sleep", "300"]);
    let mut k = cmd(2, &[]);
    k.kill_pid = Some(-1);
    send(&mut s, vec![k]).await;
    until(&mut s, |m| match m {
        Message::Processes { processes } if processes.is_empty() => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test]
async fn log_level_changes_and_a_bad_one_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let (_a, mut s) = connected(tmp.path()).await;
    let mut c = cmd(1, &[]);
    c.level = Some("loud".into());
    send(&mut s, vec![c]).await;
    let r = until(&mut s, |m| match m {
        Message::Response(r) => Some(r),
        _ => None,
    })
    .await;
    assert_eq!(r.stderr, "invalid log level: loud\n");
}

#[tokio::test]
async fn tags_and_pipes_go_through_the_local_socket() {
    let tmp = tempfile::tempdir().unwrap();
    let (agent, mut s) = connected(tmp.path()).await;
    tokio::spawn(crate::local::serve(agent.clone()));
    let sock = crate::local::socket_path(tmp.path());
    for _ in 0..100 {
        if sock.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    crate::local::tag(tmp.path(), "role", "web").await.unwrap();
    let tags = until(&mut s, |m| match m {
        Message::Tags { tags } => Some(tags),
        _ => None,
    })
    .await;
    assert_eq!(tags.get("role").map(String::as_str), Some("web"));

    // A command whose stdin and stdout are pipes: p1 in, through sh, p2 out.
    let mut c = cmd(1, &["sh", "-c", "read l; echo got:$l"]);
    c.background = true;
    c.stdin = Some("p1".into());
    c.stdout = Some("p2".into());
    send(&mut s, vec![c]).await;
    until(&mut s, |m| match m {
        Message::Pipe {
            name,
            mode: PipeMode::NewReader,
            ..
        } if name == "p1" => Some(()),
        _ => None,
    })
    .await;
    let data = Message::Pipe {
        name: "p1".into(),
        mode: PipeMode::Data,
        data: "hello".into(),
    };
    write_frame(&mut s.1, &data).await.unwrap();
    let line = until(&mut s, |m| match m {
        Message::Pipe {
            name,
            mode: PipeMode::Data,
            data,
        } if name == "p2" => Some(data),
        _ => None,
    })
    .await;
    assert_eq!(line, "got:hello");
}
