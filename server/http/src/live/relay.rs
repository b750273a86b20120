//! The console relay: bytes between a WebSocket (binary frames) and a byte stream — QEMU's
//! VNC unix socket (raw RFB) or a container's console socket — in both directions, with a
//! ping every [`PING_EVERY`] so proxies keep an idle console open.
//!
//! Generic over the stream (`AsyncRead + AsyncWrite`) and over the WebSocket's two halves
//! (a `Sink` and a `Stream` of messages), so it is tested over `tokio::io::duplex` and
//! channels; the relay does no RFB of its own, so any number of viewers each get their
//! own connection to the socket and QEMU shares the screen between them. What the browser
//! sends also goes to a tap (the kb recorder's RFB parser for VNC consoles).

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How often the relay pings the browser.
pub const PING_EVERY: Duration = Duration::from_secs(20);

/// How many bytes one read of the socket may carry into one frame.
const CHUNK: usize = 64 * 1024;

/// Why a relay ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The browser closed the WebSocket.
    ByViewer,
    /// The socket closed (the VM stopped or restarted).
    ByConsole,
    /// Reading or writing failed on either side.
    Failed(String),
}

/// Byte counts of a finished relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Relayed {
    /// Bytes from the socket to the browser.
    pub to_viewer: u64,
    /// Bytes from the browser to the socket.
    pub to_console: u64,
    /// Why it ended.
    pub ended: Ended,
}

/// Relays until either side closes; then closes the other (a close frame to the
/// browser, a shutdown of the socket's write side). Every chunk the browser sends is shown
/// to `tap` before it is written to the socket.
pub async fn relay<Tx, Rx, E, S>(
    mut ws_tx: Tx,
    mut ws_rx: Rx,
    io: S,
    ping_every: Duration,
    mut tap: impl FnMut(&[u8]),
) -> Relayed
where
    Tx: Sink<Message> + Unpin,
    Tx::Error: std::fmt::Display,
    Rx: Stream<Item = Result<Message, E>> + Unpin,
    E: std::fmt::Display,
    S: AsyncRead + AsyncWrite,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let mut to_viewer = 0u64;
    let mut to_console = 0u64;
    let ended = {
        let down = async {
            let mut buf = vec![0u8; CHUNK];
            let mut ping = tokio::time::interval(ping_every);
            ping.tick().await;
            loop {
                tokio::select! {
                    n = rd.read(&mut buf) => match n {
                        Ok(0) => return Ended::ByConsole,
                        Ok(n) => {
                            to_viewer += n as u64;
                            let frame = Message::Binary(buf[..n].to_vec().into());
                            if let Err(e) = ws_tx.send(frame).await {
                                return Ended::Failed(format!("to viewer: {e}"));
                            }
                        }
                        Err(e) => return Ended::Failed(format!("console read: {e}")),
                    },
                    _ = ping.tick() => {
                        if let Err(e) = ws_tx.send(Message::Ping(Default::default())).await {
                            return Ended::Failed(format!("ping: {e}"));
                        }
                    }
                }
            }
        };
        let up = async {
            while let Some(msg) = ws_rx.next().await {
                let bytes = match msg {
                    Ok(Message::Binary(b)) => b,
                    // xterm.js and hand-made clients may send text; it is the same bytes.
                    Ok(Message::Text(t)) => axum::body::Bytes::from(t.as_str().to_owned()),
                    Ok(Message::Close(_)) => return Ended::ByViewer,
                    Ok(Message::Ping(_) | Message::Pong(_)) => continue,
                    Err(e) => return Ended::Failed(format!("from viewer: {e}")),
                };
                tap(&bytes);
                if let Err(e) = wr.write_all(&bytes).await {
                    return Ended::Failed(format!("console write: {e}"));
                }
                to_console += bytes.len() as u64;
            }
            Ended::ByViewer
        };
        tokio::select! {
            e = down => e,
            e = up => e,
        }
    };
    let _ = wr.shutdown().await;
    if ended != Ended::ByViewer {
        let reason = match &ended {
            Ended::ByConsole => "console closed",
            _ => "relay failed",
        };
        let _ = ws_tx
            .send(Message::Close(Some(CloseFrame {
                code: 1000,
                reason: reason.into(),
            })))
            .await;
    }
    let _ = ws_tx.close().await;
    Relayed {
        to_viewer,
        to_console,
        ended,
    }
}

#[cfg(test)]
mod tests {

    use std::convert::Infallible;

    use futures::channel::mpsc;

    use super::*;

    type Viewer = (
        mpsc::UnboundedSender<Message>,
        mpsc::UnboundedReceiver<Message>,
    );

    /// A relay over a duplex pipe, with the browser played by two channels.
    fn start(
        ping_every: Duration,
    ) -> (
        Viewer,
        tokio::io::DuplexStream,
        tokio::task::JoinHandle<Relayed>,
    ) {
        let (console, relay_end) = tokio::io::duplex(CHUNK);
        let (to_relay, from_viewer) = mpsc::unbounded::<Message>();
        let (to_viewer, from_relay) = mpsc::unbounded::<Message>();
        let task = tokio::spawn(relay(
            to_viewer,
            from_viewer.map(Ok::<_, Infallible>),
            relay_end,
            ping_every,
            |_: &[u8]| {},
        ));
        ((to_relay, from_relay), console, task)
    }

    async fn next_binary(rx: &mut mpsc::UnboundedReceiver<Message>) -> Vec<u8> {
        loop {
            match rx.next().await.unwrap() {
                Message::Binary(b) => return b.to_vec(),
                Message::Ping(_) => continue,
                m => panic!("unexpected {m:?}"),
            }
        }
    }

    #[tokio::test]
    async fn bytes_flow_both_ways_unchanged() {
        let ((tx, mut rx), mut console, task) = start(PING_EVERY);
        console.write_all(b"RFB 003.008\n").await.unwrap();
        assert_eq!(next_binary(&mut rx).await, b"RFB 003.008\n");
        tx.unbounded_send(Message::Binary(b"RFB 003.008\n".to_vec().into()))
            .unwrap();
        tx.unbounded_send(Message::Text("typed".into())).unwrap();
        let mut got = vec![0u8; 17];
        console.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"RFB 003.008\ntyped");
        tx.unbounded_send(Message::Close(None)).unwrap();
        let r = task.await.unwrap();
        assert_eq!(r.ended, Ended::ByViewer);
        assert_eq!((r.to_viewer, r.to_console), (12, 17));
        // The socket's write side was shut down: the console sees EOF.
        assert_eq!(console.read(&mut got).await.unwrap(), 0);
    }

    #[tokio::test]
    async fn the_tap_sees_what_the_viewer_sends() {
        let (console, relay_end) = tokio::io::duplex(CHUNK);
        let (to_relay, from_viewer) = mpsc::unbounded::<Message>();
        let (to_viewer, _from_relay) = mpsc::unbounded::<Message>();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        let task = tokio::spawn(relay(
            to_viewer,
            from_viewer.map(Ok::<_, Infallible>),
            relay_end,
            PING_EVERY,
            move |b: &[u8]| s.lock().unwrap().extend_from_slice(b),
        ));
        to_relay
            .unbounded_send(Message::Binary(b"RFB 003.008\n".to_vec().into()))
            .unwrap();
        to_relay
            .unbounded_send(Message::Binary(
                vec![1, 1, 4, 1, 0, 0, 0, 0, 0, 0x61].into(),
            ))
            .unwrap();
        to_relay.unbounded_send(Message::Close(None)).unwrap();
        task.await.unwrap();
        drop(console);
        let seen = seen.lock().unwrap().clone();
        assert_eq!(&seen[..12], b"RFB 003.008\n");
        assert_eq!(&seen[12..], &[1, 1, 4, 1, 0, 0, 0, 0, 0, 0x61]);
    }

    #[tokio::test]
    async fn a_closed_console_closes_the_websocket() {
        let ((_tx, mut rx), console, task) = start(PING_EVERY);
        drop(console);
        let r = task.await.unwrap();
        assert_eq!(r.ended, Ended::ByConsole);
        match rx.next().await.unwrap() {
            Message::Close(Some(f)) => assert_eq!(f.reason.as_str(), "console closed"),
            m => panic!("expected a close frame, got {m:?}"),
        }
    }

    #[tokio::test]
    async fn a_large_screen_update_arrives_whole_and_in_order() {
        let ((tx, mut rx), mut console, task) = start(PING_EVERY);
        let update: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let writer = {
            let update = update.clone();
            tokio::spawn(async move {
                console.write_all(&update).await.unwrap();
                console
            })
        };
        let mut got = Vec::new();
        while got.len() < update.len() {
            got.extend(next_binary(&mut rx).await);
        }
        assert_eq!(got, update);
        let _console = writer.await.unwrap();
        drop(tx);
        assert_eq!(task.await.unwrap().ended, Ended::ByViewer);
    }

    #[tokio::test]
    async fn an_idle_console_is_pinged() {
        let ((_tx, mut rx), _console, _task) = start(Duration::from_millis(50));
        let first = tokio::time::timeout(Duration::from_secs(5), rx.next()).await;
        assert!(matches!(first, Ok(Some(Message::Ping(_)))), "{first:?}");
    }

    #[tokio::test]
    async fn several_viewers_each_have_their_own_relay() {
        let ((_a, mut ra), mut ca, _ta) = start(PING_EVERY);
        let ((_b, mut rb), mut cb, _tb) = start(PING_EVERY);
        ca.write_all(b"to a").await.unwrap();
        cb.write_all(b"to b").await.unwrap();
        assert_eq!(next_binary(&mut ra).await, b"to a");
        assert_eq!(next_binary(&mut rb).await, b"to b");
    }
}
