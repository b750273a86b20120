//! minimega's unix-socket protocol at `<base>/minimega`, so minimega's own clients
//! (`minimega -e`, minitest, miniweb, its Python bindings) drive ferromega unchanged.
//!
//! Requests and replies are JSON values, one per line. A connection is one session:
//! `namespace foo` on it changes the namespace of its later commands.

use std::path::Path;

use ferromega_api::Response;
use ferromega_domain::{ControlPlane, Session};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;

/// A request as miniclient sends it.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Request {
    #[serde(rename = "Command")]
    command: String,
    #[serde(rename = "Suggest")]
    suggest: String,
    #[serde(rename = "PlumbPipe")]
    plumb_pipe: String,
}

/// One response with minimega's field names.
#[derive(Debug, Serialize)]
struct MmResponse<'a> {
    #[serde(rename = "Host")]
    host: &'a str,
    #[serde(rename = "Response")]
    response: &'a str,
    #[serde(rename = "Header")]
    header: Option<&'a [String]>,
    #[serde(rename = "Tabular")]
    tabular: Option<&'a [Vec<String>]>,
    #[serde(rename = "Error")]
    error: &'a str,
    #[serde(rename = "Data")]
    data: &'a Option<serde_json::Value>,
}

impl<'a> From<&'a Response> for MmResponse<'a> {
    fn from(r: &'a Response) -> Self {
        MmResponse {
            host: &r.host,
            response: &r.response,
            header: (!r.header.is_empty()).then_some(r.header.as_slice()),
            tabular: (!r.tabular.is_empty()).then_some(r.tabular.as_slice()),
            error: &r.error,
            data: &r.data,
        }
    }
}

/// One reply message. The suggestion list really is serialised under the key
/// `omitempty` in minimega 2.4 (its struct tag was written as the name).
#[derive(Debug, Serialize)]
struct Reply<'a> {
    #[serde(rename = "Resp")]
    resp: Option<Vec<MmResponse<'a>>>,
    #[serde(rename = "Rendered")]
    rendered: &'a str,
    #[serde(rename = "More")]
    more: bool,
    #[serde(rename = "omitempty")]
    suggest: Option<Vec<String>>,
}

async fn send<W: AsyncWrite + Unpin>(w: &mut W, reply: &Reply<'_>) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(reply).map_err(std::io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line).await
}

/// Serves one connection until the client hangs up.
pub async fn serve_conn<S: AsyncRead + AsyncWrite + Unpin>(
    cp: ControlPlane,
    stream: S,
) -> std::io::Result<()> {
    let (r, mut w) = tokio::io::split(stream);
    let mut lines = BufReader::new(r).lines();
    let mut session = Session::default();
    while let Some(line) = lines.next_line().await? {
        if line.trim().is_empty() {
            continue;
        }
        let req: Request = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                let err = Response::error(cp.host(), format!("invalid request: {e}"));
                let reply = Reply {
                    resp: Some(vec![(&err).into()]),
                    rendered: "",
                    more: false,
                    suggest: None,
                };
                send(&mut w, &reply).await?;
                continue;
            }
        };
        if !req.suggest.is_empty() {
            let reply = Reply {
                resp: None,
                rendered: "",
                more: false,
                suggest: Some(cp.suggest(&req.suggest)),
            };
            send(&mut w, &reply).await?;
            continue;
        }
        if req.command.is_empty() {
            let msg = if req.plumb_pipe.is_empty() {
                "must specify either command or suggest"
            } else {
                "pipes are not available on this server yet"
            };
            let err = Response::error(cp.host(), msg);
            let reply = Reply {
                resp: Some(vec![(&err).into()]),
                rendered: "",
                more: false,
                suggest: None,
            };
            send(&mut w, &reply).await?;
            continue;
        }
        let batches = cp.run_line(&mut session, &req.command).await;
        if batches.is_empty() {
            let reply = Reply {
                resp: None,
                rendered: "",
                more: false,
                suggest: None,
            };
            send(&mut w, &reply).await?;
            continue;
        }
        let n = batches.len();
        for (i, b) in batches.iter().enumerate() {
            let reply = Reply {
                resp: Some(b.resp.iter().map(MmResponse::from).collect()),
                rendered: &b.rendered,
                more: i + 1 < n,
                suggest: None,
            };
            send(&mut w, &reply).await?;
        }
    }
    Ok(())
}

/// Listens on the unix socket at `path` forever, one task per connection.
pub async fn serve(cp: ControlPlane, path: &Path) -> std::io::Result<()> {
    let _ = std::fs::remove_file(path);
    let listener = UnixListener::bind(path)?;
    loop {
        let (stream, _) = listener.accept().await?;
        let cp = cp.clone();
        tokio::spawn(async move {
            if let Err(e) = serve_conn(cp, stream).await {
                tracing::debug!("minimega socket client: {e}");
            }
        });
    }
}
