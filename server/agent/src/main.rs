//! ferromega-agent: the guest command-and-control agent (ferromega's miniccc).
//!
//! It connects to the server over the virtio-serial port named `cc` (KVM guests), the
//! unix socket `/cc` (containers) or TCP, says [`Hello`], runs the commands it is sent
//! in ID order and answers each, and sends heartbeats. When the link drops it connects
//! again.
//!
//! ```text
//! ferromega-agent [--path <char device | unix socket | tcp:host:port>] [--uuid <uuid>]
//! ```
//!
//! Without `--path` it looks for the virtio port named `cc`, then `/cc`. The UUID comes
//! from `--uuid`, `$FERROMEGA_UUID`, or `/sys/class/dmi/id/product_uuid`.

use std::io;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ferromega_cc_proto::{
    read_frame, write_frame, Command, CommandResponse, Hello, Message, HEARTBEAT_SECS, VERSION,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

#[derive(Default)]
struct Options {
    path: Option<String>,
    uuid: Option<String>,
}

fn usage() -> ! {
    eprintln!("usage: ferromega-agent [--path PATH] [--uuid UUID]");
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--path" => o.path = Some(args.next().unwrap_or_else(|| usage())),
            "--uuid" => o.uuid = Some(args.next().unwrap_or_else(|| usage())),
            _ => usage(),
        }
    }
    o
}

fn main() {
    let opts = options();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run(opts));
}

async fn run(opts: Options) {
    let mut done = 0u64;
    loop {
        let path = opts.path.clone().or_else(default_path);
        match path {
            None => eprintln!("no cc port found (virtio port `cc` or /cc)"),
            Some(path) => {
                let hello = hello(opts.uuid.as_deref());
                match session(&path, hello, &mut done).await {
                    Ok(()) => eprintln!("{path}: link closed"),
                    Err(e) => eprintln!("{path}: {e}"),
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The virtio-serial port named `cc`, else the container socket `/cc`.
fn default_path() -> Option<String> {
    if let Ok(ports) = std::fs::read_dir("/sys/class/virtio-ports") {
        for p in ports.flatten() {
            let name = std::fs::read_to_string(p.path().join("name")).unwrap_or_default();
            if name.trim() == "cc" {
                return Some(format!("/dev/{}", p.file_name().to_string_lossy()));
            }
        }
    }
    Path::new("/cc").exists().then(|| "/cc".to_string())
}

async fn session(path: &str, hello: Hello, done: &mut u64) -> io::Result<()> {
    if let Some(addr) = path.strip_prefix("tcp:") {
        let s = tokio::net::TcpStream::connect(addr).await?;
        let (r, w) = tokio::io::split(s);
        return serve(r, w, hello, done).await;
    }
    let meta = std::fs::metadata(path)?;
    use std::os::unix::fs::FileTypeExt;
    if meta.file_type().is_socket() {
        let s = tokio::net::UnixStream::connect(path).await?;
        let (r, w) = tokio::io::split(s);
        serve(r, w, hello, done).await
    } else {
        // A virtio port opens once; one tokio File cannot read and write at the same
        // time, so reads and writes go through two handles of the one open file.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let w = tokio::fs::File::from_std(f.try_clone()?);
        let r = tokio::fs::File::from_std(f);
        serve(r, w, hello, done).await
    }
}

/// One session over a connected link; `done` is the highest command ID already run,
/// kept across reconnections so nothing runs twice.
async fn serve<R, W>(mut r: R, mut w: W, hello: Hello, done: &mut u64) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    write_frame(&mut w, &Message::Hello(hello)).await?;
    match read_frame(&mut r).await? {
        Some(Message::Welcome { version }) => {
            if version != VERSION {
                eprintln!("server speaks cc version {version}, we speak {VERSION}");
            }
        }
        Some(Message::Refused { reason }) => {
            tokio::time::sleep(Duration::from_secs(4)).await;
            return Err(io::Error::other(format!("refused: {reason}")));
        }
        other => {
            return Err(io::Error::other(format!(
                "unexpected first frame {other:?}"
            )))
        }
    }
    let (out_tx, mut out_rx) = mpsc::unbounded_channel::<Message>();
    let writer = tokio::spawn(async move {
        let mut beat = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
        loop {
            let msg = tokio::select! {
                m = out_rx.recv() => match m { Some(m) => m, None => break },
                _ = beat.tick() => Message::Heartbeat,
            };
            if write_frame(&mut w, &msg).await.is_err() {
                break;
            }
        }
    });
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel::<Command>();
    let start = *done;
    let worker = tokio::spawn(async move {
        let mut last = start;
        while let Some(c) = cmd_rx.recv().await {
            if c.id <= last {
                continue;
            }
            last = c.id;
            let resp = run_command(&c).await;
            if out_tx.send(Message::Response(resp)).is_err() {
                break;
            }
        }
        last
    });
    let result = loop {
        match read_frame(&mut r).await {
            Ok(Some(Message::Commands { mut commands })) => {
                commands.sort_by_key(|c| c.id);
                for c in commands {
                    let _ = cmd_tx.send(c);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    drop(cmd_tx);
    writer.abort();
    worker.abort();
    if let Ok(last) = worker.await {
        *done = last;
    }
    result
}

async fn run_command(c: &Command) -> CommandResponse {
    let mut resp = CommandResponse {
        id: c.id,
        ..CommandResponse::default()
    };
    let Some((prog, args)) = c.argv.split_first() else {
        return resp;
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args).stdin(Stdio::null());
    if c.background {
        cmd.stdout(Stdio::null()).stderr(Stdio::null());
        match cmd.spawn() {
            Ok(mut child) => {
                tokio::spawn(async move { child.wait().await });
            }
            Err(e) => resp.stderr = format!("{prog}: {e}\n"),
        }
        return resp;
    }
    match cmd.output().await {
        Ok(out) => {
            resp.stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            resp.stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        }
        Err(e) => resp.stderr = format!("{prog}: {e}\n"),
    }
    resp
}

fn read_trim(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What the agent says about the guest.
fn hello(uuid: Option<&str>) -> Hello {
    let uuid = uuid
        .map(str::to_string)
        .or_else(|| std::env::var("FERROMEGA_UUID").ok())
        .unwrap_or_else(|| read_trim("/sys/class/dmi/id/product_uuid"))
        .to_lowercase();
    let hostname = {
        let h = read_trim("/proc/sys/kernel/hostname");
        if h.is_empty() {
            read_trim("/etc/hostname")
        } else {
            h
        }
    };
    let (ips, macs) = interfaces();
    Hello {
        version: VERSION,
        uuid,
        hostname,
        arch: std::env::consts::ARCH.to_string(),
        os: std::env::consts::OS.to_string(),
        ips,
        macs,
    }
}

/// MACs of the interfaces that have one, and their IPv4 addresses (from
/// `/proc/net/fib_trie`, which lists local addresses without needing a socket ioctl).
fn interfaces() -> (Vec<String>, Vec<String>) {
    let mut macs = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        let mut names: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in names {
            let mac = read_trim(p.join("address"));
            if !mac.is_empty() && mac != "00:00:00:00:00:00" {
                macs.push(mac);
            }
        }
    }
    let mut ips = Vec::new();
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let mut prev = "";
    for line in trie.lines() {
        if line.contains("/32 host LOCAL") {
            if let Some(ip) = prev.trim().strip_prefix("|-- ") {
                if !ip.starts_with("127.") && !ips.iter().any(|i| i == ip) {
                    ips.push(ip.to_string());
                }
            }
        }
        prev = line;
    }
    (ips, macs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn agent_runs_a_command_and_answers() {
        let (agent_side, server_side) = tokio::io::duplex(4096);
        let (ar, aw) = tokio::io::split(agent_side);
        let (mut sr, mut sw) = tokio::io::split(server_side);
        let agent = tokio::spawn(async move {
            let mut done = 0;
            let _ = serve(ar, aw, Hello::default(), &mut done).await;
        });
        assert!(matches!(
            read_frame(&mut sr).await.unwrap(),
            Some(Message::Hello(_))
        ));
        write_frame(&mut sw, &Message::Welcome { version: VERSION })
            .await
            .unwrap();
        let cmd = |id| Command {
            id,
            background: false,
            argv: vec!["echo".into(), format!("hi{id}")],
        };
        write_frame(
            &mut sw,
            &Message::Commands {
                commands: vec![cmd(2), cmd(1)],
            },
        )
        .await
        .unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            match read_frame(&mut sr).await.unwrap() {
                Some(Message::Response(r)) => got.push(r),
                Some(_) => {}
                None => panic!("agent hung up"),
            }
        }
        assert_eq!(got[0].id, 1);
        assert_eq!(got[0].stdout, "hi1\n");
        assert_eq!(got[1].stdout, "hi2\n");
        agent.abort();
    }
}
