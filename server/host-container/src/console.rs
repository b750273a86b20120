//! A container's console: the pty master relayed to any number of clients on the unix
//! socket `<instance>/console`, with a 64 KiB scrollback. A new client first gets the
//! scrollback, then live output; what clients write goes to the pty (init's stdin). The
//! relay is generic over the pty stream, so it is tested over `tokio::io::duplex`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{broadcast, mpsc, watch};

/// Bytes of output kept for new clients.
pub const SCROLLBACK: usize = 64 * 1024;

/// The last [`SCROLLBACK`] bytes of output.
#[derive(Debug, Default)]
struct Ring {
    buf: VecDeque<u8>,
}

impl Ring {
    fn push(&mut self, data: &[u8]) {
        let data = &data[data.len().saturating_sub(SCROLLBACK)..];
        let over = (self.buf.len() + data.len()).saturating_sub(SCROLLBACK);
        self.buf.drain(..over);
        self.buf.extend(data);
    }
}

struct Shared {
    ring: Mutex<Ring>,
    live: broadcast::Sender<Arc<[u8]>>,
    input: mpsc::Sender<Vec<u8>>,
}

impl Shared {
    fn ring(&self) -> std::sync::MutexGuard<'_, Ring> {
        self.ring.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running console; closing it (or dropping it) stops the relay and removes the socket.
pub struct Console {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    socket: Option<PathBuf>,
}

impl Console {
    /// Relays `pty` (no socket).
    pub fn relay<P>(pty: P) -> Console
    where
        P: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (live, _) = broadcast::channel(256);
        let (input, input_rx) = mpsc::channel(64);
        let shared = Arc::new(Shared {
            ring: Mutex::new(Ring::default()),
            live,
            input,
        });
        let (stop, stop_rx) = watch::channel(false);
        let (reader, writer) = tokio::io::split(pty);
        tokio::spawn(pump_out(reader, shared.clone(), stop_rx.clone()));
        tokio::spawn(pump_in(writer, input_rx, stop_rx));
        Console {
            shared,
            stop,
            socket: None,
        }
    }

    /// Relays `pty` and serves it on the unix socket `socket` (replacing a stale one).
    pub fn serve<P>(pty: P, socket: &Path) -> io::Result<Console>
    where
        P: AsyncRead + AsyncWrite + Send + 'static,
    {
        let _ = std::fs::remove_file(socket);
        let listener = UnixListener::bind(socket)?;
        let mut console = Console::relay(pty);
        console.socket = Some(socket.to_path_buf());
        tokio::spawn(accept(
            listener,
            console.shared.clone(),
            console.stop.subscribe(),
        ));
        Ok(console)
    }

    /// The output kept so far.
    pub fn scrollback(&self) -> Vec<u8> {
        self.shared.ring().buf.iter().copied().collect()
    }

    /// Serves one client over any byte stream (the socket's clients go through this).
    pub fn attach<S>(&self, stream: S)
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        tokio::spawn(client(stream, self.shared.clone(), self.stop.subscribe()));
    }

    /// Stops the relay and removes the socket.
    pub fn close(&mut self) {
        let _ = self.stop.send(true);
        if let Some(s) = self.socket.take() {
            let _ = std::fs::remove_file(s);
        }
    }
}

impl Drop for Console {
    fn drop(&mut self) {
        self.close();
    }
}

/// Resolves once the console is told to stop (or the console is gone).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    loop {
        let now = *stop.borrow_and_update();
        if now || stop.changed().await.is_err() {
            return;
        }
    }
}

async fn pump_out<R: AsyncRead + Unpin>(
    mut reader: R,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut buf = vec![0u8; 4096];
    loop {
        let n = tokio::select! {
            r = reader.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            _ = stopped(&mut stop) => return,
        };
        let chunk: Arc<[u8]> = Arc::from(&buf[..n]);
        // Pushed and sent under the ring's lock, so a client that snapshots the ring and
        // subscribes under the same lock sees every byte exactly once.
        let mut ring = shared.ring();
        ring.push(&chunk);
        let _ = shared.live.send(chunk);
    }
}

async fn pump_in<W: AsyncWrite + Unpin>(
    mut writer: W,
    mut input: mpsc::Receiver<Vec<u8>>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            data = input.recv() => match data {
                Some(d) => if writer.write_all(&d).await.is_err() { return },
                None => return,
            },
            _ = stopped(&mut stop) => return,
        }
    }
}

async fn accept(listener: UnixListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            conn = listener.accept() => match conn {
                Ok((stream, _)) => {
                    tokio::spawn(client::<UnixStream>(stream, shared.clone(), stop.clone()));
                }
                Err(e) => {
                    tracing::warn!("console accept: {e}");
                    return;
                }
            },
            _ = stopped(&mut stop) => return,
        }
    }
}

async fn client<S: AsyncRead + AsyncWrite>(
    stream: S,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (backlog, mut live) = {
        let ring = shared.ring();
        (
            ring.buf.iter().copied().collect::<Vec<u8>>(),
            shared.live.subscribe(),
        )
    };
    if wr.write_all(&backlog).await.is_err() {
        return;
    }
    let mut buf = vec![0u8; 1024];
    loop {
        tokio::select! {
            out = live.recv() => match out {
                Ok(chunk) => if wr.write_all(&chunk).await.is_err() { return },
                // A slow client misses output rather than holding up the container.
                Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => return,
            },
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => if shared.input.send(buf[..n].to_vec()).await.is_err() { return },
            },
            _ = stopped(&mut stop) => return,
        }
    }
}

/// A non-blocking pty master as an async byte stream. Reading EIO (no slave open any
/// more: the container ended) is end of file.
pub struct PtyStream {
    fd: AsyncFd<File>,
}

impl PtyStream {
    /// Wraps a master opened non-blocking.
    pub fn new(master: OwnedFd) -> io::Result<PtyStream> {
        Ok(PtyStream {
            fd: crate::sys::register(master)?,
        })
    }
}

impl AsyncRead for PtyStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            let mut guard = ready!(self.fd.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            match guard.try_io(|f| {
                let mut file: &File = f.get_ref();
                file.read(unfilled)
            }) {
                Ok(Ok(n)) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Poll::Ready(Ok(())),
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for PtyStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let mut guard = ready!(self.fd.poll_write_ready(cx))?;
            match guard.try_io(|f| {
                let mut file: &File = f.get_ref();
                file.write(data)
            }) {
                Ok(r) => return Poll::Ready(r),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    async fn read_until<R: AsyncRead + Unpin>(r: &mut R, want: &str) -> String {
        let mut got = Vec::new();
        let mut buf = [0u8; 256];
        tokio::time::timeout(Duration::from_secs(5), async {
            while !String::from_utf8_lossy(&got).contains(want) {
                let n = r.read(&mut buf).await.unwrap();
                assert!(
                    n > 0,
                    "eof before {want:?}: {:?}",
                    String::from_utf8_lossy(&got)
                );
                got.extend_from_slice(&buf[..n]);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no {want:?} in {:?}", String::from_utf8_lossy(&got)));
        String::from_utf8_lossy(&got).into_owned()
    }

    #[test]
    fn ring_keeps_the_last_64_kib() {
        let mut r = Ring::default();
        r.push(&vec![b'a'; SCROLLBACK - 1]);
        r.push(b"bc");
        assert_eq!(r.buf.len(), SCROLLBACK);
        assert_eq!(r.buf.front(), Some(&b'a'));
        assert_eq!(r.buf.back(), Some(&b'c'));
        r.push(&vec![b'z'; SCROLLBACK * 2]);
        assert!(r.buf.iter().all(|b| *b == b'z') && r.buf.len() == SCROLLBACK);
    }

    #[tokio::test]
    async fn new_client_gets_scrollback_then_live_output() {
        let (pty, mut container) = tokio::io::duplex(4096);
        let console = Console::relay(pty);
        container.write_all(b"boot marker\n").await.unwrap();
        tokio::time::timeout(Duration::from_secs(5), async {
            while console.scrollback().is_empty() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
        .await
        .unwrap();
        let (mine, theirs) = tokio::io::duplex(4096);
        console.attach(theirs);
        let (mut rd, mut wr) = tokio::io::split(mine);
        read_until(&mut rd, "boot marker\n").await;
        container.write_all(b"later\n").await.unwrap();
        read_until(&mut rd, "later\n").await;
        wr.write_all(b"echo hi\n").await.unwrap();
        read_until(&mut container, "echo hi\n").await;
    }

    #[tokio::test]
    async fn socket_serves_several_clients_and_goes_away_on_close() {
        let t = tempfile::tempdir().unwrap();
        let sock = t.path().join("console");
        let (pty, mut container) = tokio::io::duplex(4096);
        let mut console = Console::serve(pty, &sock).unwrap();
        container.write_all(b"one\n").await.unwrap();
        let mut a = UnixStream::connect(&sock).await.unwrap();
        read_until(&mut a, "one\n").await;
        let mut b = UnixStream::connect(&sock).await.unwrap();
        read_until(&mut b, "one\n").await;
        container.write_all(b"two\n").await.unwrap();
        read_until(&mut a, "two\n").await;
        read_until(&mut b, "two\n").await;
        console.close();
        assert!(!sock.exists());
    }
}
