//! VNC recording, playback and injection (reference §8): the per-namespace recorders and
//! players, keyed by VM name as minimega keys them, and the tap through which every
//! viewer's input (the dashboard's console relay, playback, `vnc inject`) reaches the kb
//! recorder of its VM.
//!
//! ```text
//!  viewer ──relay──► VncTap::feed ──► ClientParser ──► kb recorder (text file)
//!  vnc play ──► Player ──┬──► Link (the server's own RFB connection) ──► QEMU's VNC socket
//!  vnc inject ───────────┘                                        └──► kb recorder
//!  vnc record fb ──► fb::record (own RFB connection) ──► gzip chunks file
//! ```

pub mod fb;
pub mod kbfile;
pub mod keysym;
pub(crate) mod player;
pub mod rfb;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

use crate::{lock, ControlPlane};
use kbfile::{Event, Line};
use rfb::{ClientParser, Input};

/// A recorder's or player's key: namespace and VM name.
pub(crate) type VmKey = (String, String);

/// How long connecting to a VM's VNC socket and the handshake may take.
pub(crate) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A kb recording: a text file the VM's input is appended to.
pub(crate) struct KbRecorder {
    pub(crate) path: PathBuf,
    pub(crate) start: Instant,
    last: Instant,
    file: std::fs::File,
}

/// An fb recording: a task that owns its own RFB connection and the file.
pub(crate) struct FbRecorder {
    pub(crate) path: PathBuf,
    pub(crate) start: Instant,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Result<u64, String>>,
}

impl FbRecorder {
    /// A running recording of `path` by `task`, stopped through `stop`.
    pub(crate) fn new(
        path: PathBuf,
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<Result<u64, String>>,
    ) -> Self {
        FbRecorder {
            path,
            start: Instant::now(),
            stop,
            task,
        }
    }

    /// Whether the recording ended on its own (the VM's VNC closed).
    pub(crate) fn ended(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops the recording and waits until the file is complete.
    pub(crate) async fn finish(self) {
        let _ = self.stop.send(());
        match self.task.await {
            Ok(Ok(n)) => tracing::info!("fb recording {}: {n} bytes", self.path.display()),
            Ok(Err(e)) => tracing::warn!("fb recording {}: {e}", self.path.display()),
            Err(e) => tracing::warn!("fb recording {}: {e}", self.path.display()),
        }
    }
}

/// Every recorder, player and connection of the server.
#[derive(Default)]
pub(crate) struct VncState {
    pub(crate) kb: BTreeMap<VmKey, KbRecorder>,
    pub(crate) fb: BTreeMap<VmKey, FbRecorder>,
    pub(crate) play: BTreeMap<VmKey, Arc<player::Player>>,
    pub(crate) links: BTreeMap<VmKey, Arc<Link>>,
    next_link: u64,
}

/// The server's own RFB connection to a VM, through which playback and `vnc inject`
/// send input. It stays open between uses: QEMU drops input that arrives just before a
/// client hangs up, so short-lived connections lose keys. What QEMU sends is read and
/// discarded; when it hangs up (the VM stopped), the link is forgotten.
pub(crate) struct Link {
    id: u64,
    writer: tokio::sync::Mutex<tokio::net::unix::OwnedWriteHalf>,
    drain: tokio::task::AbortHandle,
}

impl Drop for Link {
    fn drop(&mut self) {
        self.drain.abort();
    }
}

/// Watches one viewer's client→server RFB stream and records its key and pointer events
/// while a kb recording of the VM runs (it may start and stop during the session).
pub struct VncTap {
    cp: ControlPlane,
    key: VmKey,
    parser: ClientParser,
}

impl VncTap {
    /// Takes the next bytes the viewer sent.
    pub fn feed(&mut self, bytes: &[u8]) {
        for input in self.parser.feed(bytes) {
            self.cp.vnc_record_input(&self.key, &input);
        }
    }
}

impl KbRecorder {
    /// Creates the file (and, for a path in the files directory, its folders).
    pub(crate) fn create(path: PathBuf, make_dirs: bool) -> Result<Self, String> {
        let file = create_file(&path, make_dirs)?;
        let now = Instant::now();
        Ok(KbRecorder {
            path,
            start: now,
            last: now,
            file,
        })
    }
}

impl ControlPlane {
    /// A tap for a viewer of VM `vm` (its name) in namespace `ns`.
    pub fn vnc_tap(&self, ns: &str, vm: &str) -> VncTap {
        VncTap {
            cp: self.clone(),
            key: (ns.to_string(), vm.to_string()),
            parser: ClientParser::new(),
        }
    }

    /// Appends `input` to the VM's kb recording, if one runs.
    pub(crate) fn vnc_record_input(&self, key: &VmKey, input: &Input) {
        let mut st = lock(&self.inner.vnc);
        let Some(r) = st.kb.get_mut(key) else {
            return;
        };
        let now = Instant::now();
        let delta = now.duration_since(r.last).as_nanos() as u64;
        r.last = now;
        let line = Line::event(delta, &Event::Input(*input));
        if let Err(e) = r.file.write_all(line.as_bytes()) {
            tracing::warn!("kb recording {}: {e}", r.path.display());
        }
    }

    /// Sends `input` to the VM over its link and records it, as input through the shim
    /// is. A link that fails is forgotten, so the next use dials again.
    pub(crate) async fn vnc_send(
        &self,
        key: &VmKey,
        link: &Link,
        input: &Input,
    ) -> Result<(), String> {
        let sent = link.writer.lock().await.write_all(&input.encode()).await;
        if let Err(e) = sent {
            self.vnc_link_gone(key, link.id);
            return Err(format!("vnc write: {e}"));
        }
        self.vnc_record_input(key, input);
        Ok(())
    }

    /// The VM's link, dialled to `socket` when there is none.
    pub(crate) async fn vnc_link(&self, key: &VmKey, socket: &Path) -> Result<Arc<Link>, String> {
        if let Some(l) = lock(&self.inner.vnc).links.get(key) {
            return Ok(l.clone());
        }
        let (conn, _) = connect(socket).await?;
        let (mut rd, mut wr) = conn.into_split();
        wr.write_all(&rfb::set_encodings(&[rfb::CURSOR]))
            .await
            .map_err(|e| format!("vnc write: {e}"))?;
        let mut st = lock(&self.inner.vnc);
        st.next_link += 1;
        let id = st.next_link;
        let weak = Arc::downgrade(&self.inner);
        let k = key.clone();
        let drain = tokio::spawn(async move {
            let mut sink = vec![0u8; 16 * 1024];
            while matches!(rd.read(&mut sink).await, Ok(n) if n > 0) {}
            if let Some(inner) = weak.upgrade() {
                ControlPlane { inner }.vnc_link_gone(&k, id);
            }
        });
        let link = Arc::new(Link {
            id,
            writer: tokio::sync::Mutex::new(wr),
            drain: drain.abort_handle(),
        });
        st.links.insert(key.clone(), link.clone());
        Ok(link)
    }

    /// Forgets link `id` of the VM, if it is still the current one.
    fn vnc_link_gone(&self, key: &VmKey, id: u64) {
        let mut st = lock(&self.inner.vnc);
        if st.links.get(key).is_some_and(|l| l.id == id) {
            st.links.remove(key);
        }
    }
}

/// Creates a recording's file (and, for a path in the files directory, its folders).
pub(crate) fn create_file(path: &Path, make_dirs: bool) -> Result<std::fs::File, String> {
    if make_dirs {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
    }
    std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Connects to a VM's VNC socket and runs the handshake, within [`CONNECT_TIMEOUT`].
pub(crate) async fn connect(socket: &Path) -> Result<(UnixStream, rfb::ServerInit), String> {
    let dial = async {
        let mut s = UnixStream::connect(socket)
            .await
            .map_err(|e| format!("cannot reach vnc at {}: {e}", socket.display()))?;
        let init = rfb::handshake(&mut s).await?;
        Ok((s, init))
    };
    tokio::time::timeout(CONNECT_TIMEOUT, dial)
        .await
        .map_err(|_| format!("vnc at {}: no answer", socket.display()))?
}
