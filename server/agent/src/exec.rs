//! Carrying out one command: fetch the files it sends, kill, set the log level, run its
//! program (foreground or background, stdio bound to pipes), read the files it receives.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ferromega_cc_proto::{Command, CommandResponse, Message, PipeMode, SendFile, CHUNK};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::state::Agent;

/// How long to wait for one part of a file from the server.
const CHUNK_WAIT: Duration = Duration::from_secs(60);

/// Runs `c`; `chunks` receives the server's `FileChunk`s.
pub async fn run(
    agent: &Agent,
    c: &Command,
    chunks: &mut mpsc::UnboundedReceiver<Message>,
) -> CommandResponse {
    let mut resp = CommandResponse {
        id: c.id,
        ..CommandResponse::default()
    };
    for f in &c.send {
        if let Err(e) = fetch(agent, f, chunks).await {
            resp.stderr.push_str(&format!("{}: {e}\n", f.name));
        }
    }
    if let Some(pid) = c.kill_pid {
        kill_pid(agent, pid, &mut resp.stderr);
    }
    if let Some(name) = &c.kill_all {
        kill_all(name, &mut resp.stderr);
    }
    if let Some(level) = &c.level {
        if !crate::log::set_level(level) {
            resp.stderr
                .push_str(&format!("invalid log level: {level}\n"));
        }
    }
    if !c.argv.is_empty() {
        start(agent, c, &mut resp).await;
    }
    for pattern in &c.recv {
        send_back(agent, c.id, pattern, &mut resp.stderr).await;
    }
    resp
}

/// Fetches one file into the files directory, part by part (skipped when present).
async fn fetch(
    agent: &Agent,
    f: &SendFile,
    chunks: &mut mpsc::UnboundedReceiver<Message>,
) -> Result<(), String> {
    let rel = ferromega_cc_proto::relative_path(&f.name)
        .ok_or_else(|| format!("refusing file name {}", f.name))?;
    let dst = agent.files_dir().join(rel);
    if dst.exists() {
        return Ok(());
    }
    if let Some(parent) = dst.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| e.to_string())?;
    }
    let part = dst.with_extension("part~");
    let mut out = tokio::fs::File::create(&part)
        .await
        .map_err(|e| e.to_string())?;
    let mut offset = 0u64;
    loop {
        let ask = Message::FileGet {
            name: f.name.clone(),
            offset,
        };
        agent.send(ask).await;
        let chunk = tokio::time::timeout(CHUNK_WAIT, chunks.recv())
            .await
            .map_err(|_| "the server did not send the file".to_string())?;
        let Some(Message::FileChunk {
            offset: at,
            size,
            data,
            error,
            ..
        }) = chunk
        else {
            return Err("link closed".into());
        };
        if let Some(e) = error {
            let _ = tokio::fs::remove_file(&part).await;
            return Err(e);
        }
        if at != offset {
            return Err(format!("expected part at {offset}, got {at}"));
        }
        out.write_all(&data).await.map_err(|e| e.to_string())?;
        offset += data.len() as u64;
        if offset >= size || data.is_empty() {
            break;
        }
    }
    out.flush().await.map_err(|e| e.to_string())?;
    drop(out);
    use std::os::unix::fs::PermissionsExt;
    let perm = std::fs::Permissions::from_mode(f.perm & 0o7777);
    tokio::fs::set_permissions(&part, perm)
        .await
        .map_err(|e| e.to_string())?;
    tokio::fs::rename(&part, &dst)
        .await
        .map_err(|e| e.to_string())
}

fn kill_pid(agent: &Agent, pid: i64, stderr: &mut String) {
    let pids: Vec<u32> = if pid == -1 {
        agent.processes().iter().map(|p| p.pid).collect()
    } else {
        match u32::try_from(pid) {
            Ok(p) => vec![p],
            Err(_) => {
                stderr.push_str(&format!("invalid pid {pid}\n"));
                return;
            }
        }
    };
    for p in pids {
        let Ok(raw) = i32::try_from(p) else { continue };
        if let Err(e) = kill(Pid::from_raw(raw), Signal::SIGKILL) {
            stderr.push_str(&format!("kill {p}: {e}\n"));
        }
    }
}

/// Kills every process whose name (`comm`, or its program's base name) is `name`.
fn kill_all(name: &str, stderr: &mut String) {
    let me = std::process::id();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return;
    };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if u32::try_from(pid).is_ok_and(|p| p == me) {
            continue;
        }
        let comm = std::fs::read_to_string(e.path().join("comm")).unwrap_or_default();
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        let prog = cmdline.split(|b| *b == 0).next().unwrap_or_default();
        let base = Path::new(std::str::from_utf8(prog).unwrap_or_default())
            .file_name()
            .and_then(|s| s.to_str())
            .unwrap_or_default()
            .to_string();
        if comm.trim() == name || base == name {
            if let Err(err) = kill(Pid::from_raw(pid), Signal::SIGKILL) {
                stderr.push_str(&format!("kill {pid}: {err}\n"));
            }
        }
    }
}

/// Starts the program; a foreground one is waited for and its unpiped output kept.
async fn start(agent: &Agent, c: &Command, resp: &mut CommandResponse) {
    let Some((prog, args)) = c.argv.split_first() else {
        return;
    };
    let mut cmd = tokio::process::Command::new(prog);
    cmd.args(args).current_dir(agent.files_dir());
    if !agent.files_dir().is_dir() {
        cmd.current_dir("/");
    }
    let capture = if c.background {
        Stdio::null
    } else {
        Stdio::piped
    };
    cmd.stdin(if c.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    cmd.stdout(if c.stdout.is_some() {
        Stdio::piped()
    } else {
        capture()
    });
    cmd.stderr(if c.stderr.is_some() {
        Stdio::piped()
    } else {
        capture()
    });
    let mut child = match cmd.spawn() {
        Ok(ch) => ch,
        Err(e) => {
            resp.stderr.push_str(&format!("{prog}: {e}\n"));
            return;
        }
    };
    // Each stream is taken only when bound to a pipe: an unbound one stays captured.
    let stdin = c
        .stdin
        .clone()
        .zip(c.stdin.as_ref().and_then(|_| child.stdin.take()));
    if let Some((name, mut stdin)) = stdin {
        let mut rx = agent.pipe_reader(&name).await;
        let a = agent.clone();
        tokio::spawn(async move {
            while let Some(line) = rx.recv().await {
                let line = format!("{line}\n");
                if stdin.write_all(line.as_bytes()).await.is_err() {
                    break;
                }
            }
            drop(rx);
            a.pipe_reader_gone(&name).await;
        });
    }
    let mut forwards = Vec::new();
    if let Some((name, out)) = c
        .stdout
        .clone()
        .zip(c.stdout.as_ref().and_then(|_| child.stdout.take()))
    {
        forwards.push(tokio::spawn(forward(agent.clone(), name, out)));
    }
    if let Some((name, err)) = c
        .stderr
        .clone()
        .zip(c.stderr.as_ref().and_then(|_| child.stderr.take()))
    {
        forwards.push(tokio::spawn(forward(agent.clone(), name, err)));
    }
    if c.background {
        let Some(pid) = child.id() else { return };
        agent.track(pid, Some(c.argv.clone())).await;
        let a = agent.clone();
        tokio::spawn(async move {
            let _ = child.wait().await;
            for f in forwards {
                let _ = f.await;
            }
            a.track(pid, None).await;
        });
        return;
    }
    match child.wait_with_output().await {
        Ok(out) => {
            resp.stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            resp.stderr.push_str(&String::from_utf8_lossy(&out.stderr));
        }
        Err(e) => resp.stderr.push_str(&format!("{prog}: {e}\n")),
    }
    for f in forwards {
        let _ = f.await;
    }
}

/// Writes the lines of `from` into pipe `name`.
async fn forward(agent: Agent, name: String, from: impl AsyncRead + Unpin) {
    agent.pipe(&name, PipeMode::NewWriter, String::new()).await;
    let mut lines = BufReader::new(from).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        agent.pipe(&name, PipeMode::Data, line).await;
    }
    agent
        .pipe(&name, PipeMode::CloseWriter, String::new())
        .await;
}

/// Sends every file matching `pattern` (and everything under matching directories).
async fn send_back(agent: &Agent, id: u64, pattern: &str, stderr: &mut String) {
    let paths: Vec<PathBuf> = match glob::glob(pattern) {
        Ok(g) => g.flatten().collect(),
        Err(e) => {
            stderr.push_str(&format!("{pattern}: {e}\n"));
            return;
        }
    };
    if paths.is_empty() {
        stderr.push_str(&format!("{pattern}: no such file\n"));
    }
    let mut files = Vec::new();
    for p in paths {
        walk(&p, &mut files);
    }
    for f in files {
        if let Err(e) = send_file(agent, id, &f).await {
            stderr.push_str(&format!("{}: {e}\n", f.display()));
        }
    }
}

fn walk(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        if let Ok(d) = std::fs::read_dir(p) {
            let mut v: Vec<PathBuf> = d.flatten().map(|e| e.path()).collect();
            v.sort();
            for e in v {
                walk(&e, out);
            }
        }
    } else {
        out.push(p.to_path_buf());
    }
}

async fn send_file(agent: &Agent, id: u64, path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    use tokio::io::AsyncReadExt;
    let abs = std::path::absolute(path)?;
    let mut f = tokio::fs::File::open(&abs).await?;
    let perm = f.metadata().await?.permissions().mode();
    let mut offset = 0u64;
    let mut buf = vec![0u8; CHUNK];
    loop {
        let mut n = 0;
        while n < buf.len() {
            let got = f.read(&mut buf[n..]).await?;
            if got == 0 {
                break;
            }
            n += got;
        }
        if n == 0 && offset > 0 {
            return Ok(());
        }
        let data = buf[..n].to_vec();
        let path = abs.to_string_lossy().into_owned();
        agent
            .send(Message::FileData {
                id,
                path,
                offset,
                perm,
                data,
            })
            .await;
        offset += n as u64;
        if n < buf.len() {
            return Ok(());
        }
    }
}
