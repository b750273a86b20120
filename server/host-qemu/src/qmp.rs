//! A QMP session: greeting, capabilities negotiation, one command at a time, events logged.
//!
//! Generic over `AsyncRead + AsyncWrite` so it is tested over `tokio::io::duplex`; the
//! runtime uses it over QEMU's unix socket.

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::{oneshot, Mutex};

/// What a QMP exchange can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QmpError {
    /// The socket closed (QEMU exited).
    #[error("qmp connection closed")]
    Closed,
    /// QEMU answered with an error object.
    #[error("{0}")]
    Qemu(String),
    /// The greeting or a reply was not what QMP promises.
    #[error("qmp protocol error: {0}")]
    Protocol(String),
    /// Reading or writing the socket failed.
    #[error("qmp i/o: {0}")]
    Io(String),
}

type Waiters = Arc<std::sync::Mutex<Option<VecDeque<oneshot::Sender<Value>>>>>;

/// One QMP connection. Commands are serialised; replies are matched in order.
pub struct Qmp {
    writer: Mutex<Box<dyn AsyncWrite + Send + Unpin>>,
    waiters: Waiters,
    closed: tokio::sync::watch::Receiver<bool>,
}

fn lock_waiters(
    w: &std::sync::Mutex<Option<VecDeque<oneshot::Sender<Value>>>>,
) -> std::sync::MutexGuard<'_, Option<VecDeque<oneshot::Sender<Value>>>> {
    w.lock().unwrap_or_else(|e| e.into_inner())
}

impl Qmp {
    /// Reads the greeting, negotiates capabilities and starts the reader task.
    pub async fn connect<S>(stream: S) -> Result<Qmp, QmpError>
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (r, w) = tokio::io::split(stream);
        let mut lines = BufReader::new(r).lines();
        let greeting = lines
            .next_line()
            .await
            .map_err(|e| QmpError::Io(e.to_string()))?
            .ok_or(QmpError::Closed)?;
        let greeting: Value =
            serde_json::from_str(&greeting).map_err(|e| QmpError::Protocol(e.to_string()))?;
        if greeting.get("QMP").is_none() {
            return Err(QmpError::Protocol(format!(
                "unexpected greeting {greeting}"
            )));
        }
        let waiters: Waiters = Arc::new(std::sync::Mutex::new(Some(VecDeque::new())));
        let (closed_tx, closed) = tokio::sync::watch::channel(false);
        let reader_waiters = waiters.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(v) = serde_json::from_str::<Value>(&line) else {
                    tracing::warn!("qmp: unparsable line {line}");
                    continue;
                };
                if v.get("event").is_some() {
                    tracing::debug!("qmp event: {v}");
                    continue;
                }
                let next = lock_waiters(&reader_waiters)
                    .as_mut()
                    .and_then(VecDeque::pop_front);
                if let Some(tx) = next {
                    let _ = tx.send(v);
                }
            }
            // Dropping the waiters wakes every caller with `Closed`.
            lock_waiters(&reader_waiters).take();
            let _ = closed_tx.send(true);
        });
        let qmp = Qmp {
            writer: Mutex::new(Box::new(w)),
            waiters,
            closed,
        };
        qmp.execute("qmp_capabilities", None).await?;
        Ok(qmp)
    }

    /// Sends one raw JSON request and returns QEMU's raw reply (with `return` or `error`).
    pub async fn raw(&self, request: &Value) -> Result<Value, QmpError> {
        let mut writer = self.writer.lock().await;
        let (tx, rx) = oneshot::channel();
        match lock_waiters(&self.waiters).as_mut() {
            Some(q) => q.push_back(tx),
            None => return Err(QmpError::Closed),
        }
        let mut line =
            serde_json::to_vec(request).map_err(|e| QmpError::Protocol(e.to_string()))?;
        line.push(b'\n');
        writer
            .write_all(&line)
            .await
            .map_err(|e| QmpError::Io(e.to_string()))?;
        writer
            .flush()
            .await
            .map_err(|e| QmpError::Io(e.to_string()))?;
        drop(writer);
        rx.await.map_err(|_| QmpError::Closed)
    }

    /// Runs a command and returns its `return` value; an `error` reply becomes `Qemu`.
    pub async fn execute(
        &self,
        command: &str,
        arguments: Option<Value>,
    ) -> Result<Value, QmpError> {
        let mut req = json!({ "execute": command });
        if let Some(a) = arguments {
            req["arguments"] = a;
        }
        let reply = self.raw(&req).await?;
        if let Some(r) = reply.get("return") {
            return Ok(r.clone());
        }
        let desc = reply
            .pointer("/error/desc")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| reply.to_string());
        Err(QmpError::Qemu(desc))
    }

    /// Runs a human-monitor command (for `drive_add`/`device_del`); its text output is
    /// an error when not empty, as HMP reports failures only in text.
    pub async fn hmp(&self, command: &str) -> Result<String, QmpError> {
        let out = self
            .execute(
                "human-monitor-command",
                Some(json!({ "command-line": command })),
            )
            .await?;
        Ok(out.as_str().unwrap_or_default().to_string())
    }

    /// Whether the connection has closed (QEMU exited).
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    /// Waits until the connection closes.
    pub async fn closed(&self) {
        let mut c = self.closed.clone();
        let _ = c.wait_for(|v| *v).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake QEMU on the other end of a duplex pipe: greets, then answers each
    /// request from `replies` in order.
    async fn fake_qemu(replies: Vec<&'static str>) -> (Qmp, tokio::task::JoinHandle<Vec<String>>) {
        let (client, server) = tokio::io::duplex(4096);
        let task = tokio::spawn(async move {
            let (r, mut w) = tokio::io::split(server);
            let mut lines = BufReader::new(r).lines();
            w.write_all(b"{\"QMP\":{\"version\":{},\"capabilities\":[]}}\n")
                .await
                .unwrap();
            // One request per reply, then hang up: the client sees the socket close.
            let mut seen = Vec::new();
            for r in replies {
                let Ok(Some(line)) = lines.next_line().await else {
                    break;
                };
                seen.push(line);
                w.write_all(format!("{r}\n").as_bytes()).await.unwrap();
            }
            seen
        });
        let qmp = Qmp::connect(client).await.unwrap();
        (qmp, task)
    }

    #[tokio::test]
    async fn events_are_skipped_and_replies_matched_in_order() {
        let (qmp, task) = fake_qemu(vec![
            r#"{"return":{}}"#,
            "{\"event\":\"RESUME\",\"timestamp\":{}}\n{\"return\":{}}",
            r#"{"return":{"status":"running"}}"#,
        ])
        .await;
        assert_eq!(qmp.execute("cont", None).await.unwrap(), json!({}));
        let status = qmp.execute("query-status", None).await.unwrap();
        assert_eq!(status, json!({"status": "running"}));
        drop(qmp);
        let seen = task.await.unwrap();
        assert!(seen[0].contains("qmp_capabilities"));
        assert!(seen[1].contains("\"cont\""));
    }

    #[tokio::test]
    async fn error_replies_become_qemu_errors() {
        let (qmp, _task) = fake_qemu(vec![
            r#"{"return":{}}"#,
            r#"{"error":{"class":"GenericError","desc":"Device 'x' not found"}}"#,
        ])
        .await;
        let err = qmp
            .execute("eject", Some(json!({"device":"x"})))
            .await
            .unwrap_err();
        assert_eq!(err, QmpError::Qemu("Device 'x' not found".to_string()));
    }

    #[tokio::test]
    async fn a_closed_socket_fails_pending_and_later_calls() {
        let (qmp, _task) = fake_qemu(vec![r#"{"return":{}}"#]).await;
        let err = qmp.execute("query-status", None).await.unwrap_err();
        assert_eq!(err, QmpError::Closed);
        qmp.closed().await;
        assert!(qmp.is_closed());
    }
}
