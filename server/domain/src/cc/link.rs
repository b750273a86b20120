//! cc: one agent's link — handshake, pushing commands, writing responses and received
//! files to disk, serving the files commands send, tunnels, and pipe traffic.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ferromega_cc_proto::tunnel::Tunnels;
use ferromega_cc_proto::{
    read_frame, relative_path, write_frame, CommandResponse, Message, PipeMode, CHUNK, VERSION,
};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;

use super::CcServer;
use crate::plumber::Plumber;

/// A client silent this long is dropped (minimega's reaper: 30 s, heartbeats every 5 s).
const SILENCE: Duration = Duration::from_secs(30);

/// What a link tells the rest of the server about its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The client is connected (true) or gone (false).
    Active(bool),
    /// Tags set inside the guest.
    Tags(BTreeMap<String, String>),
    /// The client wrote a message into a pipe.
    PipeWrite {
        /// The pipe.
        name: String,
        /// The message.
        data: String,
    },
}

/// Told of a client's comings and goings, tags and pipe writes (its UUID, the event).
pub type LinkHooks = Arc<dyn Fn(&str, LinkEvent) + Send + Sync>;

/// What a link needs besides its stream.
#[derive(Clone)]
pub struct LinkContext {
    /// The namespace's cc server.
    pub server: CcServer,
    /// The namespace's responses directory.
    pub responses: PathBuf,
    /// The files directory commands send files from.
    pub files: PathBuf,
    /// The namespace's pipes.
    pub plumber: Plumber,
    /// Told of the client's comings and goings, tags and pipe writes.
    pub hooks: LinkHooks,
}

/// Serves one agent over `stream` until it hangs up or misbehaves. A link that belongs
/// to one VM (its virtio port, its container socket) passes that VM's UUID as `owner`:
/// an agent that cannot learn its UUID (a container on a host without DMI) sends an
/// empty one and is taken to be the owner.
pub async fn serve_link<S>(ctx: LinkContext, owner: Option<String>, stream: S)
where
    S: AsyncRead + AsyncWrite + Send + 'static,
{
    let (mut r, mut w) = tokio::io::split(stream);
    let mut hello = match read_frame(&mut r).await {
        Ok(Some(Message::Hello(h))) => h,
        Ok(Some(other)) => {
            tracing::warn!("cc: first frame is not a hello: {other:?}");
            return;
        }
        Ok(None) => return,
        Err(e) => {
            tracing::warn!("cc: bad handshake: {e}");
            return;
        }
    };
    check_version(&hello.uuid, hello.version);
    if hello.uuid.is_empty() {
        hello
            .uuid
            .clone_from(owner.as_ref().unwrap_or(&String::new()));
    }
    let tags = hello.tags.clone();
    let server = ctx.server.clone();
    let (conn, mut rx, uuid) = match server.connect(hello) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!("cc: refusing client: {e}");
            let _ = write_frame(
                &mut w,
                &Message::Refused {
                    reason: e.to_string(),
                },
            )
            .await;
            return;
        }
    };
    tracing::info!("cc: client {uuid} connected");
    if write_frame(&mut w, &Message::Welcome { version: VERSION })
        .await
        .is_ok()
    {
        (ctx.hooks)(&uuid, LinkEvent::Active(true));
        if !tags.is_empty() {
            (ctx.hooks)(&uuid, LinkEvent::Tags(tags));
        }
        let (tunnels, mut tunnel_rx) = Tunnels::new(1);
        server.set_tunnels(&uuid, tunnels.clone());
        let (reply, mut replies) = mpsc::unbounded_channel::<Message>();
        let writer = async {
            loop {
                let m = tokio::select! {
                    m = rx.recv() => m,
                    m = replies.recv() => m,
                    Some(m) = tunnel_rx.recv() => Some(m),
                };
                let Some(m) = m else { break };
                write_frame(&mut w, &m).await?;
            }
            Ok::<(), io::Error>(())
        };
        let mut link = Link {
            ctx: ctx.clone(),
            uuid: uuid.clone(),
            reply,
            tunnels: tunnels.clone(),
            readers: Vec::new(),
        };
        let reader = async {
            loop {
                let frame = tokio::time::timeout(SILENCE, read_frame(&mut r)).await;
                let frame = frame.map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "no heartbeat for 30 s")
                })?;
                match frame? {
                    Some(m) => link.handle(m).await,
                    None => return Ok::<(), io::Error>(()),
                }
            }
        };
        let end = tokio::select! { r = writer => r, r = reader => r };
        if let Err(e) = end {
            tracing::warn!("cc: client {uuid} dropped: {e}");
        }
        tunnels.close_all();
        link.close_readers();
    }
    server.disconnect(&uuid, conn);
    (ctx.hooks)(&uuid, LinkEvent::Active(false));
    tracing::info!("cc: client {uuid} disconnected");
}

fn check_version(uuid: &str, version: u32) {
    if version != VERSION {
        tracing::warn!("cc: client {uuid} speaks version {version}, we speak {VERSION}");
    }
}

/// The state of one accepted link.
struct Link {
    ctx: LinkContext,
    uuid: String,
    reply: mpsc::UnboundedSender<Message>,
    tunnels: Tunnels,
    /// Pipes this client reads: (name, reader ID).
    readers: Vec<(String, u64)>,
}

impl Link {
    async fn handle(&mut self, m: Message) {
        let uuid = self.uuid.clone();
        match m {
            Message::Hello(h) => {
                check_version(&uuid, h.version);
                tracing::info!("cc: client {uuid} said hello again (rebooted?)");
                let tags = h.tags.clone();
                self.close_readers();
                self.tunnels.close_all();
                let _ = self.reply.send(Message::Welcome { version: VERSION });
                self.ctx.server.rehello(&uuid, h);
                if !tags.is_empty() {
                    (self.ctx.hooks)(&uuid, LinkEvent::Tags(tags));
                }
            }
            Message::Response(resp) => {
                if let Err(e) = write_response(&self.ctx.responses, &uuid, &resp) {
                    tracing::warn!("cc: response {} of {uuid}: {e}", resp.id);
                }
                self.ctx.server.checked_in(resp.id, &uuid);
            }
            Message::FileGet { name, offset } => {
                let files = self.ctx.files.clone();
                let chunk =
                    tokio::task::spawn_blocking(move || file_chunk(&files, name, offset)).await;
                if let Ok(chunk) = chunk {
                    let _ = self.reply.send(chunk);
                }
            }
            Message::FileData {
                id,
                path,
                offset,
                perm,
                data,
            } => {
                let dir = self.ctx.responses.join(id.to_string()).join(&uuid);
                let r = tokio::task::spawn_blocking(move || {
                    write_received(&dir, &path, offset, perm, &data)
                })
                .await;
                if let Ok(Err(e)) = r {
                    tracing::warn!("cc: file from {uuid} for command {id}: {e}");
                }
            }
            Message::Processes { processes } => self.ctx.server.set_processes(&uuid, processes),
            Message::Tags { tags } => {
                self.ctx.server.add_tags(&uuid, &tags);
                (self.ctx.hooks)(&uuid, LinkEvent::Tags(tags));
            }
            Message::TunnelOpen { tid, host, port } => {
                if self.ctx.server.rtunnel_allowed(&uuid, &host, port) {
                    self.tunnels
                        .handle(&Message::TunnelOpen { tid, host, port });
                } else {
                    tracing::warn!(
                        "cc: client {uuid} asked for an unrequested tunnel to {host}:{port}"
                    );
                    let error = Some(format!("no reverse tunnel to {host}:{port}"));
                    let _ = self.reply.send(Message::TunnelClose { tid, error });
                }
            }
            Message::TunnelClose {
                tid,
                error: Some(e),
            } => {
                tracing::warn!("cc: tunnel through {uuid}: {e}");
                self.tunnels
                    .handle(&Message::TunnelClose { tid, error: None });
            }
            Message::Pipe { name, mode, data } => self.pipe(name, mode, data),
            m => {
                self.tunnels.handle(&m);
            }
        }
    }

    fn pipe(&mut self, name: String, mode: PipeMode, data: String) {
        let plumber = &self.ctx.plumber;
        match mode {
            PipeMode::NewReader => {
                let (id, mut inbox) = plumber.reader(&name);
                self.readers.push((name.clone(), id));
                let (server, uuid) = (self.ctx.server.clone(), self.uuid.clone());
                tokio::spawn(async move {
                    while let Some(data) = inbox.recv().await {
                        let m = Message::Pipe {
                            name: name.clone(),
                            mode: PipeMode::Data,
                            data,
                        };
                        if !server.send_to(&uuid, m) {
                            break;
                        }
                    }
                });
            }
            PipeMode::CloseReader => {
                self.readers.retain(|(n, id)| {
                    let keep = *n != name;
                    if !keep {
                        plumber.close_reader(n, *id);
                    }
                    keep
                });
            }
            PipeMode::NewWriter => plumber.open_writer(&name),
            PipeMode::CloseWriter => plumber.close_writer(&name),
            PipeMode::Data => (self.ctx.hooks)(&self.uuid, LinkEvent::PipeWrite { name, data }),
        }
    }

    fn close_readers(&mut self) {
        for (name, id) in self.readers.drain(..) {
            self.ctx.plumber.close_reader(&name, id);
        }
    }
}

/// The part of `<files>/<name>` at `offset`, or why it cannot be read.
fn file_chunk(files: &Path, name: String, offset: u64) -> Message {
    use std::io::{Read, Seek, SeekFrom};
    let read = || -> io::Result<(u64, u32, Vec<u8>)> {
        let rel = relative_path(&name)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "bad file name"))?;
        let mut f = std::fs::File::open(files.join(rel))?;
        let meta = f.metadata()?;
        use std::os::unix::fs::PermissionsExt;
        f.seek(SeekFrom::Start(offset))?;
        let mut data = Vec::with_capacity(CHUNK);
        f.take(CHUNK as u64).read_to_end(&mut data)?;
        Ok((meta.len(), meta.permissions().mode(), data))
    };
    match read() {
        Ok((size, perm, data)) => Message::FileChunk {
            name,
            offset,
            size,
            perm,
            data,
            error: None,
        },
        Err(e) => Message::FileChunk {
            error: Some(format!("cannot read {name}: {e}")),
            name,
            offset,
            size: 0,
            perm: 0,
            data: Vec::new(),
        },
    }
}

/// Writes a part of a received file under `dir` at the guest's path.
fn write_received(dir: &Path, path: &str, offset: u64, perm: u32, data: &[u8]) -> io::Result<()> {
    use std::io::{Seek, SeekFrom, Write};
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let rel = relative_path(path)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, format!("bad path {path}")))?;
    let dst = dir.join(rel);
    if let Some(parent) = dst.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(offset == 0)
        .mode(0o600)
        .open(&dst)?;
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(data)?;
    f.set_permissions(std::fs::Permissions::from_mode(perm & 0o777))
}

/// Writes `<dir>/<id>/<uuid>/{stdout,stderr}` (each only when not empty), each whole
/// at once (written aside, then renamed), so a reader never sees half of one.
fn write_response(dir: &Path, uuid: &str, r: &CommandResponse) -> io::Result<()> {
    let d = dir.join(r.id.to_string()).join(uuid);
    std::fs::create_dir_all(&d)?;
    for (name, text) in [("stdout", &r.stdout), ("stderr", &r.stderr)] {
        if !text.is_empty() {
            let part = d.join(format!(".{name}.part"));
            std::fs::write(&part, text)?;
            std::fs::rename(&part, d.join(name))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferromega_cc_proto::Hello;

    use super::*;

    fn ctx(server: &CcServer, responses: PathBuf, files: PathBuf) -> LinkContext {
        LinkContext {
            server: server.clone(),
            responses,
            files,
            plumber: Plumber::default(),
            hooks: Arc::new(|_, _| {}),
        }
    }

    #[test]
    fn file_parts_are_read_at_offsets_and_missing_files_are_errors() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::write(tmp.path().join("f"), vec![7u8; CHUNK + 10]).unwrap();
        match file_chunk(tmp.path(), "f".into(), CHUNK as u64) {
            Message::FileChunk {
                size, data, error, ..
            } => {
                assert_eq!((size, data.len(), error), ((CHUNK + 10) as u64, 10, None))
            }
            m => panic!("{m:?}"),
        }
        match file_chunk(tmp.path(), "../f".into(), 0) {
            Message::FileChunk { error, .. } => assert!(error.is_some()),
            m => panic!("{m:?}"),
        }
        match file_chunk(tmp.path(), "nope".into(), 0) {
            Message::FileChunk { error, .. } => assert!(error.unwrap().contains("nope")),
            m => panic!("{m:?}"),
        }
    }

    fn hello(uuid: &str) -> Message {
        Message::Hello(Hello {
            version: VERSION,
            uuid: uuid.into(),
            hostname: "foo".into(),
            ..Hello::default()
        })
    }

    #[tokio::test]
    async fn registered_client_gets_commands_and_its_response_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let server = CcServer::default();
        let dir = tmp.path().join("miniccc_responses");
        server.register("AAA", BTreeMap::new());
        let (ours, theirs) = tokio::io::duplex(4096);
        let c = ctx(&server, dir, tmp.path().into());
        tokio::spawn(async move { serve_link(c, None, theirs).await });
        let (mut r, mut w) = tokio::io::split(ours);
        write_frame(&mut w, &hello("aaa")).await.unwrap();
        assert_eq!(
            read_frame(&mut r).await.unwrap(),
            Some(Message::Welcome { version: VERSION })
        );
        let id = server.add_command(ferromega_cc_proto::Command {
            argv: vec!["hostname".into()],
            ..Default::default()
        });
        match read_frame(&mut r).await.unwrap() {
            Some(Message::Commands { commands }) => assert_eq!(commands[0].id, id),
            other => panic!("{other:?}"),
        }
        let resp = CommandResponse {
            id,
            stdout: "foo\n".into(),
            stderr: String::new(),
        };
        write_frame(&mut w, &Message::Response(resp)).await.unwrap();
        for _ in 0..100 {
            if server.commands()[0].checked_in.contains("aaa") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let out = tmp.path().join("miniccc_responses/1/aaa/stdout");
        assert_eq!(std::fs::read_to_string(out).unwrap(), "foo\n");
    }

    #[tokio::test]
    async fn unknown_uuid_is_refused() {
        let server = CcServer::default();
        let (ours, theirs) = tokio::io::duplex(4096);
        let c = ctx(&server, "/nonexistent".into(), "/nonexistent".into());
        tokio::spawn(async move { serve_link(c, None, theirs).await });
        let (mut r, mut w) = tokio::io::split(ours);
        write_frame(&mut w, &hello("bbb")).await.unwrap();
        assert_eq!(
            read_frame(&mut r).await.unwrap(),
            Some(Message::Refused {
                reason: "unregistered client bbb".into()
            })
        );
    }

    #[tokio::test]
    async fn a_misbehaving_agent_is_dropped_and_others_keep_working() {
        use tokio::io::AsyncWriteExt;
        let tmp = tempfile::tempdir().unwrap();
        let server = CcServer::default();
        server.register("good", BTreeMap::new());
        server.register("bad", BTreeMap::new());
        let dir = tmp.path().join("r");
        let (good, good_side) = tokio::io::duplex(1 << 16);
        let (bad, bad_side) = tokio::io::duplex(1 << 16);
        for side in [good_side, bad_side] {
            let c = ctx(&server, dir.clone(), tmp.path().into());
            tokio::spawn(async move { serve_link(c, None, side).await });
        }
        let (mut gr, mut gw) = tokio::io::split(good);
        let (mut br, mut bw) = tokio::io::split(bad);
        write_frame(&mut gw, &hello("good")).await.unwrap();
        write_frame(&mut bw, &hello("bad")).await.unwrap();
        assert!(matches!(
            read_frame(&mut gr).await.unwrap(),
            Some(Message::Welcome { .. })
        ));
        assert!(matches!(
            read_frame(&mut br).await.unwrap(),
            Some(Message::Welcome { .. })
        ));
        // The bad one announces a frame over the limit, then garbage.
        bw.write_all(&(ferromega_cc_proto::MAX_FRAME + 1).to_be_bytes())
            .await
            .unwrap();
        bw.write_all(b"garbage").await.unwrap();
        for _ in 0..100 {
            if !server.is_active("bad") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(!server.is_active("bad"), "the bad agent is still connected");
        assert!(server.is_active("good"));
        server.add_command(ferromega_cc_proto::Command {
            argv: vec!["true".into()],
            ..Default::default()
        });
        assert!(matches!(
            read_frame(&mut gr).await.unwrap(),
            Some(Message::Commands { .. })
        ));
    }
}
