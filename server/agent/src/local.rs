//! The agent's local socket (`<dir>/miniccc`, as miniccc's) and its clients inside the
//! guest: `ferromega-agent tag KEY VALUE` sets a tag, `ferromega-agent pipe NAME`
//! reads and writes a named pipe from a shell.
//!
//! Protocol: the client's first line is `tag\tKEY\tVALUE` (answered `ok`) or
//! `pipe\tNAME`; after a pipe line, lines the client writes go into the pipe and lines
//! read from the pipe come back.

use std::path::{Path, PathBuf};

use ferromega_cc_proto::PipeMode;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};

use crate::state::Agent;

/// The socket's path under the agent's directory.
pub fn socket_path(dir: &Path) -> PathBuf {
    dir.join("miniccc")
}

/// Serves the local socket for as long as the agent runs.
pub async fn serve(agent: Agent) {
    let path = socket_path(agent.dir());
    let _ = std::fs::create_dir_all(agent.dir());
    let _ = std::fs::remove_file(&path);
    let listener = match UnixListener::bind(&path) {
        Ok(l) => l,
        Err(e) => {
            crate::warn!("cannot listen on {}: {e}", path.display());
            return;
        }
    };
    while let Ok((s, _)) = listener.accept().await {
        tokio::spawn(client(agent.clone(), s));
    }
}

async fn client(agent: Agent, s: UnixStream) {
    let (r, mut w) = s.into_split();
    let mut lines = BufReader::new(r).lines();
    let Ok(Some(first)) = lines.next_line().await else {
        return;
    };
    let words: Vec<&str> = first.split('\t').collect();
    match words.as_slice() {
        ["tag", k, v] => {
            agent.set_tag(k, v).await;
            let _ = w.write_all(b"ok\n").await;
        }
        ["pipe", name] => {
            let name = name.to_string();
            let mut rx = agent.pipe_reader(&name).await;
            let out = tokio::spawn(async move {
                while let Some(line) = rx.recv().await {
                    if w.write_all(format!("{line}\n").as_bytes()).await.is_err() {
                        break;
                    }
                }
            });
            agent.pipe(&name, PipeMode::NewWriter, String::new()).await;
            while let Ok(Some(line)) = lines.next_line().await {
                agent.pipe(&name, PipeMode::Data, line).await;
            }
            agent
                .pipe(&name, PipeMode::CloseWriter, String::new())
                .await;
            out.abort();
            let _ = out.await;
            agent.pipe_reader_gone(&name).await;
        }
        _ => {
            let _ = w.write_all(b"error: unknown request\n").await;
        }
    }
}

/// `ferromega-agent tag KEY VALUE`: asks the running agent to set a tag.
pub async fn tag(dir: &Path, key: &str, value: &str) -> Result<(), String> {
    let s = UnixStream::connect(socket_path(dir))
        .await
        .map_err(|e| format!("is the agent running? {e}"))?;
    let (r, mut w) = s.into_split();
    w.write_all(format!("tag\t{key}\t{value}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let mut lines = BufReader::new(r).lines();
    match lines.next_line().await {
        Ok(Some(l)) if l == "ok" => Ok(()),
        Ok(Some(l)) => Err(l),
        _ => Err("no answer from the agent".into()),
    }
}

/// `ferromega-agent pipe NAME`: standard input into the pipe, the pipe to standard
/// output.
pub async fn pipe(dir: &Path, name: &str) -> Result<(), String> {
    let s = UnixStream::connect(socket_path(dir))
        .await
        .map_err(|e| format!("is the agent running? {e}"))?;
    let (r, mut w) = s.into_split();
    w.write_all(format!("pipe\t{name}\n").as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    let reader = tokio::spawn(async move {
        let mut out = tokio::io::stdout();
        let _ = tokio::io::copy(&mut BufReader::new(r), &mut out).await;
    });
    let mut stdin = tokio::io::stdin();
    let _ = tokio::io::copy(&mut stdin, &mut w).await;
    let _ = w.shutdown().await;
    drop(w);
    let _ = reader.await;
    Ok(())
}
