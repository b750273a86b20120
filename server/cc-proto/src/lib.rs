//! cc-proto: the messages of the cc link between the server and `ferromega-agent`, and
//! their framing.
//!
//! # Framing (versions 1 and 2)
//!
//! Each direction is a sequence of frames: a big-endian `u32` length followed by that
//! many bytes of one JSON-encoded [`Message`]. Frames longer than [`MAX_FRAME`] are a
//! protocol error: the reader refuses them without reading the body, and the peer is
//! disconnected.
//!
//! # Session
//!
//! ```text
//! agent                              server
//!   ── Hello{version, uuid, …} ──────►   refuses an unknown or duplicate UUID:
//!   ◄──────────────── Refused{reason} ─   (then closes)
//!   ◄──────────────── Welcome{version} ─  otherwise
//!   ◄──────────── Commands{[Command]} ─   whenever commands are added (IDs ascending)
//!   ── Response{CommandResponse} ─────►   once per command, in ID order
//!   ── Heartbeat ─────────────────────►   every HEARTBEAT_SECS
//!
//!   ── FileGet{name, offset} ─────────►   for each file a command sends
//!   ◄──── FileChunk{name, offset, data} ─   one part (≤ CHUNK bytes) per FileGet
//!   ── FileData{id, path, offset, data} ►   parts of files the command receives
//!   ── Processes{…} / Tags{…} ─────────►   when they change
//!   ◄── TunnelOpen/TunnelData/TunnelClose ─►  tunnels, either way (tids: server's
//!                                             from 1, agent's from 2^63)
//!   ◄──────────── RtunnelListen{port, …} ─   `cc rtunnel`
//!   ◄────────── Pipe{name, mode, data} ──►   plumbing
//! ```
//!
//! Binary data (file parts, tunnel bytes) travels as base64 strings. A `Hello` on a
//! link that is already up (a rebooted guest behind a virtio port that stayed open)
//! starts the session again; commands the UUID already answered are not sent again.
//!
//! A version mismatch is logged by both sides, never fatal: fields are added, not
//! changed, and unknown fields are ignored. Version 2 added everything after
//! `Heartbeat`.

use std::io;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

mod message;
pub mod tunnel;

pub use message::{Command, CommandResponse, Hello, Message, PipeMode, Process, SendFile};

/// The protocol version this build speaks.
pub const VERSION: u32 = 2;

/// The largest part of a file or tunnel stream one frame carries, in bytes.
pub const CHUNK: usize = 1024 * 1024;

/// The first tunnel ID the agent gives to connections it accepts.
pub const AGENT_TID_BASE: u64 = 1 << 63;

/// The agent's log levels (minimega's), lowest first: what `Command::level` may say.
pub const LOG_LEVELS: [&str; 5] = ["debug", "info", "warn", "error", "fatal"];

/// A path the other side named (a file to send, a guest path received), made relative so
/// it stays below the directory it is joined to: root and `.` dropped; `None` when it has
/// a `..` or nothing is left.
pub fn relative_path(p: &str) -> Option<std::path::PathBuf> {
    use std::path::{Component, Path, PathBuf};
    let rel: PathBuf = Path::new(p)
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::CurDir))
        .map(|c| match c {
            Component::Normal(s) => Some(s),
            _ => None,
        })
        .collect::<Option<PathBuf>>()?;
    (!rel.as_os_str().is_empty()).then_some(rel)
}

/// The largest frame either side accepts, in bytes.
pub const MAX_FRAME: u32 = 16 * 1024 * 1024;

/// Seconds between the agent's heartbeats.
pub const HEARTBEAT_SECS: u64 = 5;

/// Writes one frame.
pub async fn write_frame<W: AsyncWrite + Unpin>(w: &mut W, msg: &Message) -> io::Result<()> {
    let body = serde_json::to_vec(msg).map_err(io::Error::other)?;
    let len = u32::try_from(body.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "frame too large"))?;
    let mut buf = Vec::with_capacity(body.len() + 4);
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(&body);
    w.write_all(&buf).await?;
    w.flush().await
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> io::Result<Option<Message>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len).await {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the limit of {MAX_FRAME}"),
        ));
    }
    let mut body = vec![0u8; len as usize];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body)
        .map(Some)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("bad frame: {e}")))
}

/// serde of bytes as a base64 string.
mod b64 {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(v))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        STANDARD.decode(text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn messages_round_trip_over_a_duplex() {
        let (mut a, mut b) = tokio::io::duplex(64);
        let msgs = vec![
            Message::Hello(Hello {
                version: VERSION,
                uuid: "a5e980ca-3958-48cc-92e9-93d50c0157ad".into(),
                hostname: "foo".into(),
                arch: "x86_64".into(),
                os: "linux".into(),
                ips: vec!["10.0.0.2".into()],
                macs: vec!["00:11:22:33:44:55".into()],
                ..Hello::default()
            }),
            Message::Welcome { version: VERSION },
            Message::Commands {
                commands: vec![Command {
                    id: 1,
                    argv: vec!["hostname".into()],
                    ..Command::default()
                }],
            },
            Message::Response(CommandResponse {
                id: 1,
                stdout: "foo\n".into(),
                stderr: String::new(),
            }),
            Message::Heartbeat,
            Message::FileChunk {
                name: "a/b".into(),
                offset: 0,
                size: 3,
                perm: 0o644,
                data: vec![0, 255, 7],
                error: None,
            },
            Message::TunnelData {
                tid: AGENT_TID_BASE + 1,
                data: b"hello".to_vec(),
            },
        ];
        let sent = msgs.clone();
        let writer = tokio::spawn(async move {
            for m in &sent {
                write_frame(&mut a, m).await.unwrap();
            }
        });
        for m in &msgs {
            assert_eq!(read_frame(&mut b).await.unwrap().as_ref(), Some(m));
        }
        writer.await.unwrap();
        assert_eq!(read_frame(&mut b).await.unwrap(), None);
    }

    #[test]
    fn paths_from_the_other_side_stay_inside() {
        use std::path::PathBuf;
        assert_eq!(
            relative_path("/etc/passwd"),
            Some(PathBuf::from("etc/passwd"))
        );
        assert_eq!(relative_path("a/./b"), Some(PathBuf::from("a/b")));
        assert_eq!(relative_path("../x"), None);
        assert_eq!(relative_path("/a/../../x"), None);
        assert_eq!(relative_path("/"), None);
    }

    #[tokio::test]
    async fn oversized_frame_is_refused_without_reading_it() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&(MAX_FRAME + 1).to_be_bytes()).await.unwrap();
        let e = read_frame(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }

    #[tokio::test]
    async fn garbage_frame_is_invalid_data() {
        let (mut a, mut b) = tokio::io::duplex(64);
        a.write_all(&3u32.to_be_bytes()).await.unwrap();
        a.write_all(b"{x}").await.unwrap();
        let e = read_frame(&mut b).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData);
    }
}
