//! Tunnels over the cc link (minitunnel): TCP connections relayed as `TunnelOpen`,
//! `TunnelData` and `TunnelClose` messages. Both ends use [`Tunnels`]: the side that
//! accepts a local connection [`Tunnels::relay`]s it, the other side dials when it
//! [`Tunnels::handle`]s the `TunnelOpen`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::Message;

/// Bytes for one connection's local socket; `None` ends writing to it.
type Inbox = mpsc::UnboundedSender<Option<Vec<u8>>>;

/// The tunnel connections of one link.
#[derive(Clone)]
pub struct Tunnels {
    out: mpsc::Sender<Message>,
    conns: Arc<Mutex<HashMap<u64, Inbox>>>,
    next: Arc<AtomicU64>,
}

/// How many messages of tunnel traffic may wait for the link.
const QUEUE: usize = 16;

/// Bytes read from a local socket per message.
const READ: usize = 64 * 1024;

impl std::fmt::Debug for Tunnels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tunnels({} open)", self.len())
    }
}

impl Tunnels {
    /// Tunnels whose own connection IDs start at `first_tid`; the receiver gives the
    /// messages to send over the link.
    pub fn new(first_tid: u64) -> (Self, mpsc::Receiver<Message>) {
        let (out, rx) = mpsc::channel(QUEUE);
        let t = Tunnels {
            out,
            conns: Arc::default(),
            next: Arc::new(AtomicU64::new(first_tid)),
        };
        (t, rx)
    }

    fn conns(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Inbox>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Relays a locally accepted connection to `host:port` as seen from the peer.
    pub async fn relay(&self, stream: TcpStream, host: String, port: u16) {
        let tid = self.next.fetch_add(1, Ordering::Relaxed);
        let inbox = self.register(tid);
        if self
            .out
            .send(Message::TunnelOpen { tid, host, port })
            .await
            .is_ok()
        {
            self.pump(tid, stream, inbox);
        }
    }

    /// Takes a tunnel message from the peer; false for any other message.
    pub fn handle(&self, msg: &Message) -> bool {
        match msg {
            Message::TunnelOpen { tid, host, port } => {
                let (t, tid, addr) = (self.clone(), *tid, format!("{host}:{port}"));
                let inbox = self.register(tid);
                tokio::spawn(async move {
                    match TcpStream::connect(&addr).await {
                        Ok(s) => t.pump(tid, s, inbox),
                        Err(e) => {
                            t.conns().remove(&tid);
                            let error = Some(format!("cannot connect to {addr}: {e}"));
                            let _ = t.out.send(Message::TunnelClose { tid, error }).await;
                        }
                    }
                });
            }
            Message::TunnelData { tid, data } => {
                if let Some(inbox) = self.conns().get(tid) {
                    let _ = inbox.send(Some(data.clone()));
                }
            }
            Message::TunnelClose { tid, .. } => {
                if let Some(inbox) = self.conns().get(tid) {
                    let _ = inbox.send(None);
                }
            }
            _ => return false,
        }
        true
    }

    /// Ends every connection (the link is gone).
    pub fn close_all(&self) {
        self.conns().clear();
    }

    /// How many connections are open.
    pub fn len(&self) -> usize {
        self.conns().len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn register(&self, tid: u64) -> mpsc::UnboundedReceiver<Option<Vec<u8>>> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.conns().insert(tid, tx);
        rx
    }

    /// Copies the socket to the link and the link to the socket until both ends close.
    fn pump(
        &self,
        tid: u64,
        stream: TcpStream,
        mut inbox: mpsc::UnboundedReceiver<Option<Vec<u8>>>,
    ) {
        let (mut r, mut w) = stream.into_split();
        let out = self.out.clone();
        let reader = tokio::spawn(async move {
            let mut buf = vec![0u8; READ];
            loop {
                match r.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        let data = buf[..n].to_vec();
                        if out.send(Message::TunnelData { tid, data }).await.is_err() {
                            return;
                        }
                    }
                }
            }
            let _ = out.send(Message::TunnelClose { tid, error: None }).await;
        });
        let conns = self.conns.clone();
        tokio::spawn(async move {
            while let Some(Some(data)) = inbox.recv().await {
                if w.write_all(&data).await.is_err() {
                    break;
                }
            }
            let _ = w.shutdown().await;
            let _ = reader.await;
            conns.lock().unwrap_or_else(|p| p.into_inner()).remove(&tid);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Two `Tunnels` joined back to back, as the server and the agent are over a link.
    fn joined() -> (Tunnels, Tunnels) {
        let (a, mut a_rx) = Tunnels::new(1);
        let (b, mut b_rx) = Tunnels::new(crate::AGENT_TID_BASE);
        let (a2, b2) = (a.clone(), b.clone());
        tokio::spawn(async move {
            while let Some(m) = a_rx.recv().await {
                b2.handle(&m);
            }
        });
        tokio::spawn(async move {
            while let Some(m) = b_rx.recv().await {
                a2.handle(&m);
            }
        });
        (a, b)
    }

    #[tokio::test]
    async fn a_connection_is_carried_both_ways_and_half_closed() {
        let (a, _b) = joined();
        // The "remote" service: upper-cases what it reads until end of stream.
        let service = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = service.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = service.accept().await.unwrap();
            let mut got = Vec::new();
            s.read_to_end(&mut got).await.unwrap();
            s.write_all(&got.to_ascii_uppercase()).await.unwrap();
        });
        // The local entrance.
        let entrance = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let eport = entrance.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (s, _) = entrance.accept().await.unwrap();
            a.relay(s, "127.0.0.1".into(), port).await;
        });
        let mut c = TcpStream::connect(("127.0.0.1", eport)).await.unwrap();
        let big = vec![b'x'; 300_000];
        c.write_all(&big).await.unwrap();
        c.shutdown().await.unwrap();
        let mut back = Vec::new();
        c.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, vec![b'X'; 300_000]);
    }

    #[tokio::test]
    async fn a_closed_port_closes_the_connection_with_an_error() {
        let (a, mut a_rx) = Tunnels::new(1);
        let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        a.handle(&Message::TunnelOpen {
            tid: 9,
            host: "127.0.0.1".into(),
            port,
        });
        match a_rx.recv().await {
            Some(Message::TunnelClose {
                tid: 9,
                error: Some(e),
            }) => {
                assert!(e.contains("cannot connect"), "{e}")
            }
            other => panic!("{other:?}"),
        }
        assert!(a.is_empty());
    }
}
