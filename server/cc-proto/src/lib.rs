//! cc-proto: the messages of the cc link between the server and `ferromega-agent`, and
//! their framing.
//!
//! # Framing (version 1)
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
//! ```
//!
//! A version mismatch is logged by both sides, never fatal: fields are added, not
//! changed, and unknown fields are ignored.

use std::io;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol version this build speaks.
pub const VERSION: u32 = 1;

/// The largest frame either side accepts, in bytes.
pub const MAX_FRAME: u32 = 16 * 1024 * 1024;

/// Seconds between the agent's heartbeats.
pub const HEARTBEAT_SECS: u64 = 5;

/// What an agent tells about itself when it connects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Hello {
    /// The agent's protocol version.
    pub version: u32,
    /// The VM's UUID (lower case).
    pub uuid: String,
    /// The guest's hostname.
    pub hostname: String,
    /// The guest's architecture (`x86_64`).
    pub arch: String,
    /// The guest's operating system (`linux`).
    pub os: String,
    /// Addresses of the guest's interfaces that have a MAC address.
    pub ips: Vec<String>,
    /// MAC addresses of the guest's interfaces.
    pub macs: Vec<String>,
}

/// One command for the agent to run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Its ID; agents run commands in ascending ID order, each once.
    pub id: u64,
    /// Start it and answer at once, without waiting or capturing output.
    pub background: bool,
    /// Program and arguments.
    pub argv: Vec<String>,
}

/// What running one command gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CommandResponse {
    /// The command's ID.
    pub id: u64,
    /// Its standard output (empty for background commands).
    pub stdout: String,
    /// Its standard error, or why it could not run.
    pub stderr: String,
}

/// One frame's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Agent → server, first frame.
    Hello(Hello),
    /// Server → agent: accepted.
    Welcome {
        /// The server's protocol version.
        version: u32,
    },
    /// Server → agent: refused; the server closes the link.
    Refused {
        /// Why.
        reason: String,
    },
    /// Server → agent: commands to run.
    Commands {
        /// The commands, by ascending ID.
        commands: Vec<Command>,
    },
    /// Agent → server: one command's result.
    Response(CommandResponse),
    /// Agent → server: still alive.
    Heartbeat,
}

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
            }),
            Message::Welcome { version: VERSION },
            Message::Commands {
                commands: vec![Command {
                    id: 1,
                    background: false,
                    argv: vec!["hostname".into()],
                }],
            },
            Message::Response(CommandResponse {
                id: 1,
                stdout: "foo\n".into(),
                stderr: String::new(),
            }),
            Message::Heartbeat,
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
