//! One link to the server: the handshake, then commands run in ID order, heartbeats,
//! file parts, tunnels, reverse-tunnel listeners and pipe data.

use std::io;
use std::time::Duration;

use ferromega_cc_proto::tunnel::Tunnels;
use ferromega_cc_proto::{
    read_frame, write_frame, Command, Hello, Message, PipeMode, AGENT_TID_BASE, HEARTBEAT_SECS,
    VERSION,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use crate::state::Agent;

/// How long to wait for the server's answer to our hello before saying it again.
const WELCOME_WAIT: Duration = Duration::from_secs(10);

/// Messages that may wait for the link (backpressure for file and pipe data).
const OUT_QUEUE: usize = 8;

/// One session over a connected link, until it ends.
pub async fn serve<R, W>(agent: &Agent, mut r: R, mut w: W, hello: Hello) -> io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    write_frame(&mut w, &Message::Hello(hello)).await?;
    match tokio::time::timeout(WELCOME_WAIT, read_frame(&mut r)).await {
        Err(_) => return Err(io::Error::other("no answer to hello")),
        Ok(Ok(Some(Message::Welcome { version }))) => {
            if version != VERSION {
                crate::warn!("server speaks cc version {version}, we speak {VERSION}");
            }
        }
        Ok(Ok(Some(Message::Refused { reason }))) => {
            tokio::time::sleep(Duration::from_secs(4)).await;
            return Err(io::Error::other(format!("refused: {reason}")));
        }
        Ok(other) => {
            return Err(io::Error::other(format!(
                "unexpected first frame {other:?}"
            )))
        }
    }
    crate::info!("connected (log level {})", crate::log::level());
    let (out_tx, mut out_rx) = mpsc::channel::<Message>(OUT_QUEUE);
    let (tunnels, mut tunnel_rx) = Tunnels::new(AGENT_TID_BASE);
    agent.set_link(Some(out_tx.clone()));
    let writer = tokio::spawn(async move {
        let mut beat = tokio::time::interval(Duration::from_secs(HEARTBEAT_SECS));
        loop {
            let msg = tokio::select! {
                m = out_rx.recv() => match m { Some(m) => m, None => break },
                Some(m) = tunnel_rx.recv() => m,
                _ = beat.tick() => Message::Heartbeat,
            };
            if write_frame(&mut w, &msg).await.is_err() {
                break;
            }
        }
    });
    let processes = agent.processes();
    if !processes.is_empty() {
        agent.send(Message::Processes { processes }).await;
    }
    for name in agent.read_pipes() {
        agent.pipe(&name, PipeMode::NewReader, String::new()).await;
    }
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel::<Command>();
    let (chunk_tx, mut chunk_rx) = mpsc::unbounded_channel::<Message>();
    let a = agent.clone();
    let worker = tokio::spawn(async move {
        while let Some(c) = cmd_rx.recv().await {
            if c.id <= a.done() {
                continue;
            }
            crate::debug!("running command {}: {:?}", c.id, c.argv);
            let resp = crate::exec::run(&a, &c, &mut chunk_rx).await;
            a.ran(c.id);
            a.send(Message::Response(resp)).await;
        }
    });
    let mut listeners = Vec::new();
    let result = loop {
        match read_frame(&mut r).await {
            Ok(Some(Message::Commands { mut commands })) => {
                commands.sort_by_key(|c| c.id);
                for c in commands {
                    let _ = cmd_tx.send(c);
                }
            }
            Ok(Some(m @ Message::FileChunk { .. })) => {
                let _ = chunk_tx.send(m);
            }
            Ok(Some(Message::Pipe { name, mode, data })) => {
                if mode == PipeMode::Data {
                    agent.pipe_data(&name, &data);
                }
            }
            Ok(Some(Message::RtunnelListen {
                port,
                host,
                dst_port,
            })) => listeners.push(rtunnel(&tunnels, port, host, dst_port).await),
            Ok(Some(m)) => {
                tunnels.handle(&m);
            }
            Ok(None) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    agent.set_link(None);
    drop(cmd_tx);
    writer.abort();
    worker.abort();
    tunnels.close_all();
    for l in listeners {
        l.abort();
    }
    result
}

/// Listens on `port` in the guest and tunnels each connection to `host:dst_port`.
async fn rtunnel(
    tunnels: &Tunnels,
    port: u16,
    host: String,
    dst_port: u16,
) -> tokio::task::JoinHandle<()> {
    let tunnels = tunnels.clone();
    tokio::spawn(async move {
        let listener = match tokio::net::TcpListener::bind(("0.0.0.0", port)).await {
            Ok(l) => l,
            Err(e) => {
                crate::warn!("rtunnel: cannot listen on port {port}: {e}");
                return;
            }
        };
        while let Ok((s, _)) = listener.accept().await {
            let t = tunnels.clone();
            let host = host.clone();
            tokio::spawn(async move { t.relay(s, host, dst_port).await });
        }
    })
}
