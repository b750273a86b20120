//! `GET /api/v1/events`: the events WebSocket — a snapshot, then every change from the
//! control plane's bus, one JSON text frame per event.
//!
//! A slow reader is dropped, never waited for: when it falls [`ferromega_domain::events::CAPACITY`]
//! events behind (the bus reports `Lagged`) or one send takes longer than [`SEND_TIMEOUT`],
//! it gets close code 4000 (`lagged`) and should reconnect for a fresh snapshot.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message};
use ferromega_api::events::Event;
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use tokio::sync::broadcast::{self, error::RecvError};

/// Close code sent to a reader that fell behind.
pub const LAGGED: u16 = 4000;

/// Longest a single send may take before the reader counts as stuck.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// At most this many queued events go out before the socket is flushed.
const BATCH: usize = 512;

/// Why an events stream ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// The reader closed it.
    ByReader,
    /// The reader fell behind and was dropped.
    Lagged,
    /// The server is going away (the bus closed).
    ServerGone,
    /// A send failed or timed out.
    Failed,
}

fn frame(e: &Event) -> Message {
    Message::Text(serde_json::to_string(e).unwrap_or_default().into())
}

async fn send<Tx>(tx: &mut Tx, m: Message) -> bool
where
    Tx: Sink<Message> + Unpin,
{
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, tx.send(m)).await,
        Ok(Ok(()))
    )
}

/// `e` as a reader who may see only the namespaces `visible` accepts sees it, if at all
/// (exhaustive on purpose: a new kind of event must say who sees it).
pub fn visible_part(e: &Event, visible: &dyn Fn(&str) -> bool) -> Option<Event> {
    match e {
        Event::Snapshot { host, vms } => Some(Event::Snapshot {
            host: host.clone(),
            vms: vms
                .iter()
                .filter(|v| visible(&v.namespace))
                .cloned()
                .collect(),
        }),
        Event::Vm { vm } => visible(&vm.namespace).then(|| e.clone()),
        Event::VmRemoved { namespace, .. } | Event::Screenshot { namespace, .. } => {
            visible(namespace).then(|| e.clone())
        }
        // The host's own figures: the hosts page of any namespace shows them.
        Event::HostStats { .. } => Some(e.clone()),
    }
}

/// Streams `snapshot` and then every event of `bus` to the WebSocket halves until the
/// reader leaves, lags, or the server goes away; pings every `ping_every`.
pub async fn pump<Tx, Rx, E>(
    snapshot: Event,
    bus: broadcast::Receiver<Event>,
    tx: Tx,
    rx: Rx,
    ping_every: Duration,
) -> Ended
where
    Tx: Sink<Message> + Unpin,
    Rx: Stream<Item = Result<Message, E>> + Unpin,
{
    pump_visible(snapshot, bus, tx, rx, ping_every, &|_| true).await
}

/// [`pump`] for a reader who may see only the namespaces `visible` accepts (a user of
/// the auth file limited to some namespaces).
pub async fn pump_visible<Tx, Rx, E>(
    snapshot: Event,
    mut bus: broadcast::Receiver<Event>,
    mut tx: Tx,
    mut rx: Rx,
    ping_every: Duration,
    visible: &(dyn Fn(&str) -> bool + Sync),
) -> Ended
where
    Tx: Sink<Message> + Unpin,
    Rx: Stream<Item = Result<Message, E>> + Unpin,
{
    let snapshot = visible_part(&snapshot, visible).unwrap_or(snapshot);
    if !send(&mut tx, frame(&snapshot)).await {
        return Ended::Failed;
    }
    let mut ping = tokio::time::interval(ping_every);
    ping.tick().await;
    let ended = loop {
        tokio::select! {
            ev = bus.recv() => {
                let first = match ev {
                    Ok(e) => e,
                    Err(RecvError::Lagged(_)) => break Ended::Lagged,
                    Err(RecvError::Closed) => break Ended::ServerGone,
                };
                // Whatever else is already queued goes out in the same flush.
                let mut batch = vec![first];
                let mut lagged = false;
                while batch.len() < BATCH {
                    match bus.try_recv() {
                        Ok(e) => batch.push(e),
                        Err(broadcast::error::TryRecvError::Lagged(_)) => {
                            lagged = true;
                            break;
                        }
                        Err(_) => break,
                    }
                }
                if lagged {
                    break Ended::Lagged;
                }
                let sent = tokio::time::timeout(SEND_TIMEOUT, async {
                    for e in batch.iter().filter_map(|e| visible_part(e, visible)) {
                        tx.feed(frame(&e)).await.map_err(|_| ())?;
                    }
                    tx.flush().await.map_err(|_| ())
                })
                .await;
                if !matches!(sent, Ok(Ok(()))) {
                    break Ended::Failed;
                }
            }
            msg = rx.next() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break Ended::ByReader,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if !send(&mut tx, Message::Ping(Default::default())).await {
                    break Ended::Failed;
                }
            }
        }
    };
    if ended == Ended::Lagged {
        let close = Message::Close(Some(CloseFrame {
            code: LAGGED,
            reason: "lagged".into(),
        }));
        let _ = send(&mut tx, close).await;
    }
    let _ = tx.close().await;
    ended
}

#[cfg(test)]
mod tests {

    use std::convert::Infallible;

    use ferromega_api::events::VmSummary;
    use futures::channel::mpsc;

    use super::*;

    fn vm(name: &str, state: &str) -> Event {
        Event::Vm {
            vm: VmSummary {
                namespace: "minimega".into(),
                id: 0,
                name: name.into(),
                host: "h".into(),
                state: state.into(),
                vm_type: "kvm".into(),
                pid: 1,
                error: String::new(),
            },
        }
    }

    fn snapshot() -> Event {
        Event::Snapshot {
            host: "h".into(),
            vms: vec![],
        }
    }

    #[test]
    fn a_reader_sees_only_its_namespaces() {
        let only_foo = |ns: &str| ns == "foo";
        assert_eq!(visible_part(&vm("a", "RUNNING"), &only_foo), None);
        let Event::Vm { vm: mut v } = vm("b", "RUNNING") else {
            unreachable!()
        };
        v.namespace = "foo".into();
        let foo_vm = Event::Vm { vm: v.clone() };
        assert_eq!(visible_part(&foo_vm, &only_foo), Some(foo_vm.clone()));
        let Event::Vm { vm: other } = vm("c", "RUNNING") else {
            unreachable!()
        };
        let snap = Event::Snapshot {
            host: "h".into(),
            vms: vec![v.clone(), other],
        };
        assert_eq!(
            visible_part(&snap, &only_foo),
            Some(Event::Snapshot {
                host: "h".into(),
                vms: vec![v]
            })
        );
        let gone = Event::VmRemoved {
            host: "h".into(),
            namespace: "bar".into(),
            id: 1,
            name: "x".into(),
        };
        assert_eq!(visible_part(&gone, &only_foo), None);
    }

    fn parse(m: Message) -> Event {
        match m {
            Message::Text(t) => serde_json::from_str(t.as_str()).unwrap(),
            m => panic!("expected text, got {m:?}"),
        }
    }

    /// A pump over `bus`, with the reader played by channels, started as a task.
    fn pumping(
        bus: broadcast::Receiver<Event>,
    ) -> (
        mpsc::UnboundedReceiver<Message>,
        mpsc::UnboundedSender<Message>,
        tokio::task::JoinHandle<Ended>,
    ) {
        let (to_reader, reader) = mpsc::unbounded::<Message>();
        let (keep, from_reader) = mpsc::unbounded::<Message>();
        let task = tokio::spawn(pump(
            snapshot(),
            bus,
            to_reader,
            from_reader.map(Ok::<_, Infallible>),
            Duration::from_secs(20),
        ));
        (reader, keep, task)
    }

    #[tokio::test]
    async fn the_snapshot_comes_first_then_changes_in_order() {
        let (bus_tx, bus_rx) = broadcast::channel(16);
        let (mut reader, _keep, task) = pumping(bus_rx);
        assert_eq!(parse(reader.next().await.unwrap()), snapshot());
        bus_tx.send(vm("a", "BUILDING")).unwrap();
        bus_tx.send(vm("a", "RUNNING")).unwrap();
        assert_eq!(parse(reader.next().await.unwrap()), vm("a", "BUILDING"));
        assert_eq!(parse(reader.next().await.unwrap()), vm("a", "RUNNING"));
        drop(bus_tx);
        assert_eq!(task.await.unwrap(), Ended::ServerGone);
    }

    #[tokio::test]
    async fn a_reader_that_falls_behind_is_closed_with_4000() {
        let (bus_tx, bus_rx) = broadcast::channel(4);
        // Nothing is read until the bus has overflowed.
        for i in 0..10 {
            bus_tx.send(vm(&format!("v{i}"), "RUNNING")).unwrap();
        }
        let (to_reader, mut reader) = mpsc::unbounded::<Message>();
        let (_keep, from_reader) = mpsc::unbounded::<Message>();
        let ended = pump(
            snapshot(),
            bus_rx,
            to_reader,
            from_reader.map(Ok::<_, Infallible>),
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(ended, Ended::Lagged);
        assert_eq!(parse(reader.next().await.unwrap()), snapshot());
        match reader.next().await.unwrap() {
            Message::Close(Some(f)) => {
                assert_eq!(f.code, LAGGED);
                assert_eq!(f.reason.as_str(), "lagged");
            }
            m => panic!("expected close, got {m:?}"),
        }
        drop(bus_tx);
    }

    #[tokio::test]
    async fn screenshots_and_host_stats_go_out_tagged() {
        let (bus_tx, bus_rx) = broadcast::channel(16);
        let (mut reader, _keep, task) = pumping(bus_rx);
        reader.next().await.unwrap();
        let shot = Event::Screenshot {
            host: "h".into(),
            namespace: "minimega".into(),
            id: 3,
            name: "vm3".into(),
            bytes: 4096,
        };
        let stats = Event::HostStats {
            host: "h".into(),
            t: 1_700_000_000,
            cpu: 12.5,
            mem: 900.0,
            rx: 0.25,
            tx: 0.5,
        };
        bus_tx.send(shot.clone()).unwrap();
        bus_tx.send(stats.clone()).unwrap();
        for want in [(shot, "screenshot"), (stats, "host_stats")] {
            let Message::Text(t) = reader.next().await.unwrap() else {
                panic!("expected text");
            };
            let v: serde_json::Value = serde_json::from_str(t.as_str()).unwrap();
            assert_eq!(v["type"], want.1);
            assert_eq!(serde_json::from_value::<Event>(v).unwrap(), want.0);
        }
        drop(bus_tx);
        assert_eq!(task.await.unwrap(), Ended::ServerGone);
    }

    #[tokio::test]
    async fn a_reader_behind_on_host_stats_is_dropped_too() {
        let (bus_tx, bus_rx) = broadcast::channel(4);
        for t in 0..10 {
            let stats = Event::HostStats {
                host: "h".into(),
                t,
                cpu: 0.0,
                mem: 0.0,
                rx: 0.0,
                tx: 0.0,
            };
            bus_tx.send(stats).unwrap();
        }
        let (_reader, _keep, task) = pumping(bus_rx);
        assert_eq!(task.await.unwrap(), Ended::Lagged);
    }

    #[tokio::test]
    async fn the_reader_leaving_ends_the_stream() {
        let (_bus_tx, bus_rx) = broadcast::channel::<Event>(4);
        let (to_reader, _reader) = mpsc::unbounded::<Message>();
        let (from_tx, from_reader) = mpsc::unbounded::<Message>();
        from_tx.unbounded_send(Message::Close(None)).unwrap();
        let ended = pump(
            snapshot(),
            bus_rx,
            to_reader,
            from_reader.map(Ok::<_, Infallible>),
            Duration::from_secs(20),
        )
        .await;
        assert_eq!(ended, Ended::ByReader);
    }
}
