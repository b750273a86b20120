//! RFB (VNC) wire format, the little the server speaks itself: a parser of the
//! client→server stream a viewer sends QEMU (it picks out key and pointer events for kb
//! recording), encoders of the client messages the server sends, and the client side of
//! the RFB 3.3 handshake used by fb recording, playback and injection.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// An input event a viewer sent: what kb recording keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// A key pressed (`down`) or released, as an X11 keysym.
    Key {
        /// Pressed or released.
        down: bool,
        /// X11 keysym.
        keysym: u32,
    },
    /// The pointer moved or its buttons changed (mask bit 1 left, 2 middle, 4 right).
    Pointer {
        /// Button mask.
        mask: u8,
        /// X position.
        x: u16,
        /// Y position.
        y: u16,
    },
}

impl Input {
    /// The client message that sends this event to a VNC server.
    pub fn encode(&self) -> Vec<u8> {
        match *self {
            Input::Key { down, keysym } => {
                let mut m = vec![4, u8::from(down), 0, 0];
                m.extend_from_slice(&keysym.to_be_bytes());
                m
            }
            Input::Pointer { mask, x, y } => {
                let mut m = vec![5, mask];
                m.extend_from_slice(&x.to_be_bytes());
                m.extend_from_slice(&y.to_be_bytes());
                m
            }
        }
    }
}

/// Where the parser is in the client's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// `RFB 003.00x\n` (12 bytes).
    Version,
    /// The security type the client chose (one byte, RFB 3.7 and later).
    Security,
    /// The 16-byte answer to VNC authentication.
    AuthResponse,
    /// ClientInit: the shared flag (one byte).
    ClientInit,
    /// Client messages.
    Messages,
    /// Something it cannot frame: it stops looking (the bytes still flow).
    Lost,
}

/// Parses the bytes a viewer sends a VNC server, from the first byte of the connection,
/// into key and pointer events. Fed in arbitrary chunks; keeps what it cannot frame yet.
#[derive(Debug)]
pub struct ClientParser {
    stage: Stage,
    buf: Vec<u8>,
}

impl Default for ClientParser {
    fn default() -> Self {
        ClientParser::new()
    }
}

/// Longest message kept while waiting for its end; a longer one (a huge cut text) makes
/// the parser give up rather than hold memory for a viewer.
const MAX_MESSAGE: usize = 1 << 20;

impl ClientParser {
    /// A parser at the start of a connection (the version string comes first).
    pub fn new() -> Self {
        ClientParser {
            stage: Stage::Version,
            buf: Vec::new(),
        }
    }

    /// A parser of a stream past the handshake (client messages only).
    pub fn after_handshake() -> Self {
        ClientParser {
            stage: Stage::Messages,
            buf: Vec::new(),
        }
    }

    /// Whether the parser gave up on the stream (an unknown message type).
    pub fn lost(&self) -> bool {
        self.stage == Stage::Lost
    }

    /// Takes the next chunk of the stream; returns the events it completed.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<Input> {
        let mut out = Vec::new();
        if self.stage == Stage::Lost {
            return out;
        }
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let rest = &self.buf[at..];
            let step = match self.stage {
                Stage::Version => match rest.get(..12) {
                    None => None,
                    Some(v) if v.starts_with(b"RFB ") => {
                        let minor: u32 = std::str::from_utf8(&v[8..11])
                            .ok()
                            .and_then(|m| m.parse().ok())
                            .unwrap_or(0);
                        self.stage = if minor >= 7 {
                            Stage::Security
                        } else {
                            Stage::ClientInit
                        };
                        Some(12)
                    }
                    Some(_) => {
                        self.stage = Stage::Lost;
                        None
                    }
                },
                Stage::Security => rest.first().map(|t| {
                    self.stage = if *t == 2 {
                        Stage::AuthResponse
                    } else {
                        Stage::ClientInit
                    };
                    1
                }),
                Stage::AuthResponse => (rest.len() >= 16).then(|| {
                    self.stage = Stage::ClientInit;
                    16
                }),
                Stage::ClientInit => (!rest.is_empty()).then(|| {
                    self.stage = Stage::Messages;
                    1
                }),
                Stage::Messages => match message_len(rest) {
                    Err(()) => {
                        self.stage = Stage::Lost;
                        None
                    }
                    Ok(Some(n)) if rest.len() >= n => {
                        if let Some(e) = input_of(&rest[..n]) {
                            out.push(e);
                        }
                        Some(n)
                    }
                    Ok(Some(n)) if n > MAX_MESSAGE => {
                        self.stage = Stage::Lost;
                        None
                    }
                    Ok(_) => None,
                },
                Stage::Lost => None,
            };
            match step {
                Some(n) => at += n,
                None => break,
            }
        }
        if self.stage == Stage::Lost {
            self.buf = Vec::new();
        } else {
            self.buf.drain(..at);
        }
        out
    }
}

fn u16_at(b: &[u8], i: usize) -> u16 {
    u16::from_be_bytes([b[i], b[i + 1]])
}

fn u32_at(b: &[u8], i: usize) -> u32 {
    u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

/// The length of the client message at the start of `b`: `Ok(None)` when more bytes are
/// needed to tell, `Err` for a type it does not know.
fn message_len(b: &[u8]) -> Result<Option<usize>, ()> {
    let Some(&kind) = b.first() else {
        return Ok(None);
    };
    let need = |n: usize| b.len() >= n;
    Ok(match kind {
        0 => Some(20),                                           // SetPixelFormat
        2 => need(4).then(|| 4 + 4 * usize::from(u16_at(b, 2))), // SetEncodings
        3 => Some(10),                                           // FramebufferUpdateRequest
        4 => Some(8),                                            // KeyEvent
        5 => Some(6),                                            // PointerEvent
        6 => need(8).then(|| 8 + u32_at(b, 4) as usize),         // ClientCutText
        150 => Some(10),                                         // EnableContinuousUpdates
        248 => Some(4),                                          // xvp
        250 => need(9).then(|| 9 + usize::from(b[8])),           // Fence
        251 => need(7).then(|| 8 + 16 * usize::from(b[6])),      // SetDesktopSize
        252 => need(4).then(|| 4 + usize::from(u16_at(b, 2))),   // gii
        255 => match b.get(1) {
            // QEMU: extended key event, audio.
            None => None,
            Some(0) => Some(12),
            Some(1) => match need(4).then(|| u16_at(b, 2)) {
                None => None,
                Some(0 | 1) => Some(4),
                Some(2) => Some(10),
                Some(_) => return Err(()),
            },
            Some(_) => return Err(()),
        },
        _ => return Err(()),
    })
}

/// The event a whole client message carries, if it is one kb recording keeps.
fn input_of(m: &[u8]) -> Option<Input> {
    match m[0] {
        4 => Some(Input::Key {
            down: m[1] != 0,
            keysym: u32_at(m, 4),
        }),
        5 => Some(Input::Pointer {
            mask: m[1],
            x: u16_at(m, 2),
            y: u16_at(m, 4),
        }),
        // QEMU's extended key event (noVNC sends these when QEMU offers them).
        255 if m[1] == 0 => Some(Input::Key {
            down: u16_at(m, 2) != 0,
            keysym: u32_at(m, 4),
        }),
        _ => None,
    }
}

/// Raw encoding.
pub const RAW: i32 = 0;
/// DesktopSize pseudo-encoding.
pub const DESKTOP_SIZE: i32 = -223;
/// Cursor pseudo-encoding.
pub const CURSOR: i32 = -239;

/// SetPixelFormat: 32 bits per pixel, depth 24, true colour, 255 per channel, shifts
/// 16/8/0 (what fb recording asks for).
pub fn set_pixel_format_rgb32() -> Vec<u8> {
    let mut m = vec![0, 0, 0, 0, 32, 24, 0, 1];
    for max in [255u16; 3] {
        m.extend_from_slice(&max.to_be_bytes());
    }
    m.extend_from_slice(&[16, 8, 0, 0, 0, 0]);
    m
}

/// SetEncodings with `encodings` in order of preference.
pub fn set_encodings(encodings: &[i32]) -> Vec<u8> {
    let mut m = vec![2, 0];
    m.extend_from_slice(&(encodings.len() as u16).to_be_bytes());
    for e in encodings {
        m.extend_from_slice(&e.to_be_bytes());
    }
    m
}

/// FramebufferUpdateRequest of the rectangle `w`×`h` at the origin.
pub fn update_request(incremental: bool, w: u16, h: u16) -> Vec<u8> {
    let mut m = vec![3, u8::from(incremental), 0, 0, 0, 0];
    m.extend_from_slice(&w.to_be_bytes());
    m.extend_from_slice(&h.to_be_bytes());
    m
}

/// What the server said at the end of the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerInit {
    /// Framebuffer width.
    pub width: u16,
    /// Framebuffer height.
    pub height: u16,
    /// Desktop name.
    pub name: String,
}

/// Runs the client side of an RFB 3.3 handshake (no authentication, shared session) and
/// reads ServerInit. Errors are texts for the user.
pub async fn handshake<S>(s: &mut S) -> Result<ServerInit, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let io = |e: std::io::Error| format!("vnc handshake: {e}");
    let mut version = [0u8; 12];
    s.read_exact(&mut version).await.map_err(io)?;
    if !version.starts_with(b"RFB ") {
        return Err("vnc handshake: not an RFB server".into());
    }
    s.write_all(b"RFB 003.003\n").await.map_err(io)?;
    let mut word = [0u8; 4];
    s.read_exact(&mut word).await.map_err(io)?;
    match u32::from_be_bytes(word) {
        1 => {}
        0 => {
            s.read_exact(&mut word).await.map_err(io)?;
            let mut reason = vec![0u8; (u32::from_be_bytes(word) as usize).min(4096)];
            s.read_exact(&mut reason).await.map_err(io)?;
            return Err(format!(
                "vnc handshake refused: {}",
                String::from_utf8_lossy(&reason)
            ));
        }
        t => return Err(format!("vnc handshake: unsupported security type {t}")),
    }
    s.write_all(&[1]).await.map_err(io)?;
    let mut init = [0u8; 24];
    s.read_exact(&mut init).await.map_err(io)?;
    let mut name = vec![0u8; (u32_at(&init, 20) as usize).min(4096)];
    s.read_exact(&mut name).await.map_err(io)?;
    Ok(ServerInit {
        width: u16_at(&init, 0),
        height: u16_at(&init, 2),
        name: String::from_utf8_lossy(&name).into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(down: bool, keysym: u32) -> Input {
        Input::Key { down, keysym }
    }

    fn ptr(mask: u8, x: u16, y: u16) -> Input {
        Input::Pointer { mask, x, y }
    }

    /// What noVNC sends on connecting to QEMU with RFB 3.8: version, security None,
    /// ClientInit (shared), SetPixelFormat, SetEncodings (3), an update request.
    fn novnc_prelude() -> Vec<u8> {
        let mut b = b"RFB 003.008\n".to_vec();
        b.extend_from_slice(&[1, 1]);
        b.extend(set_pixel_format_rgb32());
        b.extend(set_encodings(&[RAW, CURSOR, -258]));
        b.extend(update_request(false, 800, 600));
        b
    }

    #[test]
    fn key_and_pointer_events_after_a_38_handshake() {
        let mut b = novnc_prelude();
        b.extend([4, 1, 0, 0, 0, 0, 0, 0x61]); // 'a' down
        b.extend([5, 1, 0, 10, 0, 20]); // left button at 10,20
        b.extend([4, 0, 0, 0, 0, 0, 0xff, 0x0d]); // Return up
        let mut p = ClientParser::new();
        assert_eq!(
            p.feed(&b),
            vec![key(true, 0x61), ptr(1, 10, 20), key(false, 0xff0d),]
        );
        assert!(!p.lost());
    }

    #[test]
    fn messages_split_across_chunks_arrive_once() {
        let mut b = novnc_prelude();
        b.extend(key(true, 0x41).encode());
        b.extend([6, 0, 0, 0, 0, 0, 0, 3, b'c', b'u', b't']); // cut text, ignored
        b.extend(ptr(4, 300, 2).encode());
        let mut p = ClientParser::new();
        let mut got = Vec::new();
        for byte in &b {
            got.extend(p.feed(std::slice::from_ref(byte)));
        }
        assert_eq!(got, vec![key(true, 0x41), ptr(4, 300, 2)]);
    }

    #[test]
    fn qemu_extended_key_events_are_key_events() {
        let mut b = novnc_prelude();
        // type 255, subtype 0, down 1, keysym 'z', XT keycode 0x2c
        b.extend([255, 0, 0, 1, 0, 0, 0, 0x7a, 0, 0, 0, 0x2c]);
        b.extend([255, 1, 0, 0]); // audio enable
        b.extend([255, 0, 0, 0, 0, 0, 0, 0x7a, 0, 0, 0, 0x2c]);
        let mut p = ClientParser::new();
        assert_eq!(p.feed(&b), vec![key(true, 0x7a), key(false, 0x7a)]);
    }

    #[test]
    fn rfb_33_has_no_security_byte() {
        let mut b = b"RFB 003.003\n".to_vec();
        b.push(1); // ClientInit
        b.extend([5, 0, 0, 1, 0, 2]);
        let mut p = ClientParser::new();
        assert_eq!(p.feed(&b), vec![ptr(0, 1, 2)]);
    }

    #[test]
    fn an_unknown_message_stops_parsing_without_panicking() {
        let mut b = novnc_prelude();
        b.extend([99, 1, 2, 3]);
        b.extend([4, 1, 0, 0, 0, 0, 0, 0x61]);
        let mut p = ClientParser::new();
        assert!(p.feed(&b).is_empty());
        assert!(p.lost());
        assert!(p.feed(&[4, 1, 0, 0, 0, 0, 0, 0x61]).is_empty());
        assert!(ClientParser::new().feed(b"GET / HTTP/1.1\r\n").is_empty());
    }

    #[test]
    fn the_minimega_client_message_vector_frames() {
        // The byte vector of minimega's vnc client tests: SetPixelFormat, SetEncodings
        // (11 encodings), FramebufferUpdateRequest, SetEncodings… — no key events.
        let b: &[u8] = &[
            0, 0, 0, 0, 32, 24, 0, 1, 0, 255, 0, 255, 0, 255, 16, 8, 0, 0, 0, 0, 2, 0, 0, 11, 0, 0,
            0, 1, 0, 0, 0, 7, 255, 255, 254, 252, 0, 0, 0, 5, 0, 0, 0, 2, 0, 0, 0, 0, 255, 255,
            255, 33, 255, 255, 255, 17, 255, 255, 255, 230, 255, 255, 255, 9, 255, 255, 255, 32, 3,
            0, 0, 0, 0, 0, 3, 32, 2, 88, 2, 0, 0, 2, 0, 0, 0, 0, 255, 255, 255, 33,
        ];
        let mut p = ClientParser::after_handshake();
        assert!(p.feed(b).is_empty());
        assert!(!p.lost());
        assert_eq!(p.feed(&[5, 2, 0, 3, 0, 4]), vec![ptr(2, 3, 4)]);
    }

    #[tokio::test]
    async fn handshake_reads_server_init() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        let srv = tokio::spawn(async move {
            server.write_all(b"RFB 003.008\n").await.unwrap();
            let mut v = [0u8; 12];
            server.read_exact(&mut v).await.unwrap();
            assert_eq!(&v, b"RFB 003.003\n");
            server.write_all(&1u32.to_be_bytes()).await.unwrap();
            let mut shared = [0u8; 1];
            server.read_exact(&mut shared).await.unwrap();
            assert_eq!(shared, [1]);
            let mut init = vec![0x02, 0xd0, 0x01, 0x90];
            init.extend([0u8; 16]);
            init.extend(4u32.to_be_bytes());
            init.extend(b"QEMU");
            server.write_all(&init).await.unwrap();
        });
        let init = handshake(&mut client).await.unwrap();
        srv.await.unwrap();
        assert_eq!(
            (init.width, init.height, init.name.as_str()),
            (720, 400, "QEMU")
        );
    }

    #[tokio::test]
    async fn a_refusing_server_gives_its_reason() {
        let (mut client, mut server) = tokio::io::duplex(1024);
        tokio::spawn(async move {
            server.write_all(b"RFB 003.003\n").await.unwrap();
            let mut v = [0u8; 12];
            server.read_exact(&mut v).await.unwrap();
            server.write_all(&0u32.to_be_bytes()).await.unwrap();
            server.write_all(&4u32.to_be_bytes()).await.unwrap();
            server.write_all(b"busy").await.unwrap();
        });
        let e = handshake(&mut client).await.unwrap_err();
        assert_eq!(e, "vnc handshake refused: busy");
    }
}
