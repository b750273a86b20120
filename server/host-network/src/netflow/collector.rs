//! The NetFlow collector of one bridge: a UDP socket on loopback that the exporter sends
//! v5 datagrams to, fanned out to writers (files, gzipped or not, and sockets) in raw
//! mode (the datagrams verbatim) or ascii mode (one line per flow).

use std::collections::HashMap;
use std::io::{self, BufWriter, Write};
use std::net::{TcpStream, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use ferromega_domain::network::NetflowSink;
use flate2::write::GzEncoder;
use tokio::sync::oneshot;

use super::v5;

enum Out {
    File(BufWriter<std::fs::File>),
    Gzip(GzEncoder<BufWriter<std::fs::File>>),
    Tcp(TcpStream),
    Udp(UdpSocket),
}

/// One destination of a bridge's flows.
pub struct Writer {
    out: Out,
    ascii: bool,
}

impl Writer {
    /// Opens the file or connects the socket `sink` names.
    pub fn open(sink: &NetflowSink, ascii: bool) -> io::Result<Writer> {
        let out = match sink {
            NetflowSink::File { path, gzip } => {
                let f = BufWriter::new(std::fs::File::create(path)?);
                match gzip {
                    true => Out::Gzip(GzEncoder::new(f, flate2::Compression::default())),
                    false => Out::File(f),
                }
            }
            NetflowSink::Socket { tcp: true, addr } => {
                let s = TcpStream::connect(addr)?;
                s.set_write_timeout(Some(Duration::from_secs(1)))?;
                Out::Tcp(s)
            }
            NetflowSink::Socket { tcp: false, addr } => {
                let s = UdpSocket::bind(("0.0.0.0", 0))?;
                s.connect(addr)?;
                Out::Udp(s)
            }
        };
        Ok(Writer { out, ascii })
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match &mut self.out {
            Out::File(f) => f.write_all(bytes),
            Out::Gzip(g) => g.write_all(bytes),
            Out::Tcp(s) => s.write_all(bytes),
            Out::Udp(s) => s.send(bytes).map(drop),
        }
    }

    /// Writes one datagram as this writer's mode says.
    pub fn write(&mut self, datagram: &[u8], parsed: Option<&v5::Packet>) -> io::Result<()> {
        if !self.ascii {
            return self.send(datagram);
        }
        let Some(p) = parsed else { return Ok(()) };
        let text: String = p
            .records
            .iter()
            .map(|r| v5::ascii_line(&p.header, r))
            .collect();
        self.send(text.as_bytes())
    }

    fn flush(&mut self) {
        let r = match &mut self.out {
            Out::File(f) => f.flush(),
            Out::Gzip(g) => g.flush(),
            _ => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!("netflow writer: {e}");
        }
    }

    /// Completes the output (the gzip trailer) and closes it.
    pub fn finish(self) {
        let r = match self.out {
            Out::File(mut f) => f.flush(),
            Out::Gzip(g) => g.finish().and_then(|mut f| f.flush()),
            _ => Ok(()),
        };
        if let Err(e) = r {
            tracing::warn!("netflow writer: {e}");
        }
    }
}

type Writers = Arc<Mutex<HashMap<u64, Writer>>>;

fn lock(w: &Writers) -> std::sync::MutexGuard<'_, HashMap<u64, Writer>> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

/// A bridge's collector: its UDP port and its writers.
pub struct Collector {
    port: u16,
    writers: Writers,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

fn deliver(writers: &Writers, datagram: &[u8]) {
    let parsed = match v5::parse(datagram) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::warn!("netflow collector: {e}");
            None
        }
    };
    for (id, w) in lock(writers).iter_mut() {
        if let Err(e) = w.write(datagram, parsed.as_ref()) {
            tracing::warn!("netflow writer {id}: {e}");
        }
    }
}

impl Collector {
    /// Binds a UDP port on loopback and starts reading it.
    pub async fn bind() -> io::Result<Collector> {
        let sock = tokio::net::UdpSocket::bind(("127.0.0.1", 0)).await?;
        let port = sock.local_addr()?.port();
        let writers: Writers = Arc::default();
        let (stop, mut stopped) = oneshot::channel::<()>();
        let w = writers.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 65_536];
            loop {
                tokio::select! {
                    _ = &mut stopped => break,
                    got = sock.recv(&mut buf) => match got {
                        Ok(n) => {
                            deliver(&w, &buf[..n]);
                            lock(&w).values_mut().for_each(Writer::flush);
                        }
                        Err(e) => tracing::warn!("netflow collector: {e}"),
                    },
                }
            }
            // What the exporter sent before it stopped is still queued: write it too.
            while let Ok(n) = sock.try_recv(&mut buf) {
                deliver(&w, &buf[..n]);
            }
        });
        Ok(Collector {
            port,
            writers,
            stop,
            task,
        })
    }

    /// The loopback UDP port exporters send to.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Adds writer `id`.
    pub fn add(&self, id: u64, w: Writer) {
        lock(&self.writers).insert(id, w);
    }

    /// Removes and completes writer `id`; false when it is not one of this collector's.
    pub fn remove(&self, id: u64) -> bool {
        let w = lock(&self.writers).remove(&id);
        w.map(Writer::finish).is_some()
    }

    /// Whether writer `id` is one of this collector's.
    pub fn has(&self, id: u64) -> bool {
        lock(&self.writers).contains_key(&id)
    }

    /// Whether no writer is left.
    pub fn is_empty(&self) -> bool {
        lock(&self.writers).is_empty()
    }

    /// Writes what is queued, completes every writer and closes the socket.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
        let all: Vec<Writer> = lock(&self.writers).drain().map(|(_, w)| w).collect();
        all.into_iter().for_each(Writer::finish);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::net::Ipv4Addr;

    fn datagram() -> Vec<u8> {
        let h = v5::Header {
            count: 1,
            sys_uptime: 5000,
            unix_secs: 1_700_000_000,
            unix_nsecs: 0,
            sequence: 1,
        };
        let r = v5::Record {
            src: Ipv4Addr::new(10, 1, 0, 1),
            dst: Ipv4Addr::new(10, 1, 0, 2),
            packets: 4,
            bytes: 336,
            first: 4000,
            last: 5000,
            src_port: 0,
            dst_port: 0,
            protocol: 1,
        };
        v5::encode(&h, &[r])
    }

    #[tokio::test]
    async fn datagrams_reach_raw_ascii_and_gzip_writers() {
        let dir = tempfile::tempdir().expect("tmp");
        let raw = dir.path().join("raw");
        let text = dir.path().join("text.gz");
        let c = Collector::bind().await.expect("bind");
        let file = |path: &std::path::Path, gzip| NetflowSink::File {
            path: path.to_path_buf(),
            gzip,
        };
        c.add(1, Writer::open(&file(&raw, false), false).expect("raw"));
        c.add(2, Writer::open(&file(&text, true), true).expect("gz"));
        let exporter = std::net::UdpSocket::bind("127.0.0.1:0").expect("udp");
        let d = datagram();
        exporter.send_to(&d, ("127.0.0.1", c.port())).expect("send");
        exporter.send_to(&d, ("127.0.0.1", c.port())).expect("send");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(c.remove(1));
        assert!(!c.remove(1));
        c.stop().await;
        assert_eq!(std::fs::read(&raw).expect("raw"), [d.clone(), d].concat());
        let mut lines = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&text).expect("gz"))
            .read_to_string(&mut lines)
            .expect("gunzip");
        assert_eq!(lines.lines().count(), 2, "{lines}");
        assert!(
            lines.contains("\t1s\t1\t10.1.0.1:0\t<->\t10.1.0.2:0\t4\t336"),
            "{lines}"
        );
    }

    #[test]
    fn an_unwritable_file_is_an_error() {
        let sink = NetflowSink::File {
            path: "/nonexistent/dir/f".into(),
            gzip: false,
        };
        assert!(Writer::open(&sink, false).is_err());
    }
}
