//! cc: one agent's link — handshake, pushing commands, writing responses to disk.

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferromega_cc_proto::{read_frame, write_frame, CommandResponse, Message, VERSION};
use tokio::io::{AsyncRead, AsyncWrite};

use super::CcServer;

/// A client silent this long is dropped (minimega's reaper: 30 s, heartbeats every 5 s).
const SILENCE: Duration = Duration::from_secs(30);

/// Serves one agent over `stream` until it hangs up or misbehaves, writing responses
/// under `responses`; `active` is told the client's UUID with `true` once accepted and
/// `false` when it leaves. A link that belongs to one VM (its virtio port, its container
/// socket) passes that VM's UUID as `owner`: an agent that cannot learn its UUID (a
/// container on a host without DMI) sends an empty one and is taken to be the owner.
pub async fn serve_link<S>(
    server: CcServer,
    responses: PathBuf,
    owner: Option<String>,
    stream: S,
    active: impl Fn(&str, bool),
) where
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
    if hello.version != VERSION {
        tracing::warn!(
            "cc: client {} speaks version {}, we speak {VERSION}",
            hello.uuid,
            hello.version
        );
    }
    if hello.uuid.is_empty() {
        hello.uuid = owner.unwrap_or_default();
    }
    let uuid = hello.uuid.to_lowercase();
    let (conn, mut rx) = match server.connect(hello) {
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
        active(&uuid, true);
        let writer = async {
            while let Some(m) = rx.recv().await {
                write_frame(&mut w, &m).await?;
            }
            Ok::<(), io::Error>(())
        };
        let reader = async {
            loop {
                let frame = tokio::time::timeout(SILENCE, read_frame(&mut r)).await;
                let frame = frame.map_err(|_| {
                    io::Error::new(io::ErrorKind::TimedOut, "no heartbeat for 30 s")
                })?;
                match frame? {
                    Some(Message::Response(resp)) => {
                        if let Err(e) = write_response(&responses, &uuid, &resp) {
                            tracing::warn!("cc: response {} of {uuid}: {e}", resp.id);
                        }
                        server.checked_in(resp.id, &uuid);
                    }
                    Some(_) => {}
                    None => return Ok::<(), io::Error>(()),
                }
            }
        };
        let end = tokio::select! { r = writer => r, r = reader => r };
        if let Err(e) = end {
            tracing::warn!("cc: client {uuid} dropped: {e}");
        }
    }
    server.disconnect(&uuid, conn);
    active(&uuid, false);
    tracing::info!("cc: client {uuid} disconnected");
}

/// Writes `<dir>/<id>/<uuid>/{stdout,stderr}` (each only when not empty).
fn write_response(dir: &Path, uuid: &str, r: &CommandResponse) -> io::Result<()> {
    let d = dir.join(r.id.to_string()).join(uuid);
    std::fs::create_dir_all(&d)?;
    if !r.stdout.is_empty() {
        std::fs::write(d.join("stdout"), &r.stdout)?;
    }
    if !r.stderr.is_empty() {
        std::fs::write(d.join("stderr"), &r.stderr)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ferromega_cc_proto::Hello;

    use super::*;

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
        let s = server.clone();
        tokio::spawn(async move { serve_link(s, dir, None, theirs, |_, _| {}).await });
        let (mut r, mut w) = tokio::io::split(ours);
        write_frame(&mut w, &hello("aaa")).await.unwrap();
        assert_eq!(
            read_frame(&mut r).await.unwrap(),
            Some(Message::Welcome { version: VERSION })
        );
        let id = server.add_command(vec!["hostname".into()], false);
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
        tokio::spawn(async move {
            serve_link(server, "/nonexistent".into(), None, theirs, |_, _| {}).await
        });
        let (mut r, mut w) = tokio::io::split(ours);
        write_frame(&mut w, &hello("bbb")).await.unwrap();
        assert_eq!(
            read_frame(&mut r).await.unwrap(),
            Some(Message::Refused {
                reason: "unregistered client bbb".into()
            })
        );
    }
}
