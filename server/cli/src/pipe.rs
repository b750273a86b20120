//! `ferromega pipe NAME`: a named pipe from a shell, as `minimega -pipe`: lines of
//! standard input are written into the pipe (the `pipe` operation), the pipe's messages
//! are printed on standard output (its stream endpoint). With `--write-only` it ends
//! when standard input does; otherwise it keeps reading until interrupted.

use std::collections::BTreeMap;

use anyhow::bail;
use ferromega_api::Args;
use ferromega_client::Client;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Runs the pipe client for pipe `name` of namespace `ns`.
pub async fn pipe(client: &Client, ns: &str, name: &str, write_only: bool) -> anyhow::Result<()> {
    let reader = if write_only {
        None
    } else {
        let mut resp = client.pipe_read(ns, name).await?;
        Some(tokio::spawn(async move {
            let mut out = tokio::io::stdout();
            while let Ok(Some(chunk)) = resp.chunk().await {
                if out.write_all(&chunk).await.is_err() || out.flush().await.is_err() {
                    break;
                }
            }
        }))
    };
    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        let args = Args {
            strings: BTreeMap::from([
                ("pipe".to_string(), name.to_string()),
                ("data".to_string(), line),
            ]),
            ..Args::default()
        };
        for r in client.invoke("pipe", ns, &args).await? {
            if !r.error.is_empty() {
                bail!("{}", r.error);
            }
        }
    }
    if let Some(r) = reader {
        let _ = r.await;
    }
    Ok(())
}
