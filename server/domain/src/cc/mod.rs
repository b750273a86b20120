//! cc: the command-and-control server of one namespace — its agents (clients), queued
//! commands, filter and prefix, and the link each agent speaks over.
//!
//! A client is known by the UUID of a VM registered here at launch; an agent with
//! another UUID, or a second agent with a UUID already connected, is refused. Commands
//! get increasing IDs from 1; each client is sent, in ID order, the commands above the
//! highest it has been sent whose filter it matches. Responses are written by the
//! link under the namespace's responses directory as `<id>/<uuid>/{stdout,stderr}`,
//! with the files a command receives beside them. A client that says hello again (a
//! rebooted guest) is not sent the commands it already answered.

pub mod filter;
mod link;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use ferromega_cc_proto::tunnel::Tunnels;
use ferromega_cc_proto::{Command, Hello, Message, Process};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

pub use filter::Filter;
pub use link::{serve_link, LinkContext, LinkEvent};

/// One queued command.
#[derive(Debug, Clone)]
pub struct CcCommand {
    /// Its ID (also `cmd.id`).
    pub id: u64,
    /// The prefix it was queued with.
    pub prefix: String,
    /// What the agents are sent.
    pub cmd: Command,
    /// The filter it was queued with.
    pub filter: Option<Filter>,
    /// UUIDs of the clients that answered.
    pub checked_in: BTreeSet<String>,
}

/// A connected agent.
#[derive(Debug)]
pub struct Client {
    /// What it said about itself.
    pub hello: Hello,
    /// Its background processes, as last reported.
    pub processes: Vec<Process>,
    /// Frames to send it.
    tx: mpsc::UnboundedSender<Message>,
    /// Its link's tunnels.
    tunnels: Option<Tunnels>,
    /// `(host, port)` the server may dial for its reverse tunnels.
    rtunnels: BTreeSet<(String, u16)>,
    /// Highest command ID sent to it.
    sent: u64,
    /// Which connection this is (so an old link's end does not remove a new one).
    conn: u64,
}

#[derive(Debug, Default)]
struct State {
    last_id: u64,
    commands: BTreeMap<u64, CcCommand>,
    filter: Option<Filter>,
    prefix: String,
    clients: BTreeMap<String, Client>,
    /// UUIDs of the namespace's VMs on this host, and their tags.
    registered: BTreeMap<String, BTreeMap<String, String>>,
    conns: u64,
    /// `cc listen` and `cc tunnel` listeners, stopped with the namespace.
    listeners: Vec<(String, AbortHandle)>,
}

/// The cc server of one namespace; clones share it.
#[derive(Debug, Clone, Default)]
pub struct CcServer {
    state: Arc<Mutex<State>>,
}

/// Why an agent is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CcError {
    /// No VM of the namespace has its UUID.
    #[error("unregistered client {0}")]
    Unregistered(String),
    /// Another agent with its UUID is connected.
    #[error("client {0} already exists!")]
    Duplicate(String),
}

impl CcServer {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a VM's UUID (at launch) with its tags, used by filters.
    pub fn register(&self, uuid: &str, tags: BTreeMap<String, String>) {
        self.lock().registered.insert(uuid.to_lowercase(), tags);
    }

    /// Forgets a VM (flushed): its agent is disconnected and refused from now on.
    pub fn unregister(&self, uuid: &str) {
        let mut s = self.lock();
        s.registered.remove(&uuid.to_lowercase());
        s.clients.remove(&uuid.to_lowercase());
    }

    /// Whether a VM with this UUID is registered.
    pub fn is_registered(&self, uuid: &str) -> bool {
        self.lock().registered.contains_key(&uuid.to_lowercase())
    }

    /// Merges tags set inside a guest into the ones its filters see.
    pub(crate) fn add_tags(&self, uuid: &str, tags: &BTreeMap<String, String>) {
        if let Some(t) = self.lock().registered.get_mut(uuid) {
            t.extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }

    /// Keeps a listener of the namespace (`cc listen`, `cc tunnel`), described by
    /// `what`, to stop with it.
    pub fn keep_listener(&self, what: String, handle: AbortHandle) {
        self.lock().listeners.push((what, handle));
    }

    /// The listeners' descriptions.
    pub fn listeners(&self) -> Vec<String> {
        let mut s = self.lock();
        s.listeners.retain(|(_, h)| !h.is_finished());
        s.listeners.iter().map(|(w, _)| w.clone()).collect()
    }

    /// Stops every listener and drops every client (the namespace is going).
    pub fn shutdown(&self) {
        let mut s = self.lock();
        for (_, h) in s.listeners.drain(..) {
            h.abort();
        }
        s.clients.clear();
    }

    /// Accepts a client; returns its connection number, the frames to send it and the
    /// UUID it is known by. A
    /// UUID no VM has is tried "unmangled" too (the first three groups byte-swapped, as
    /// some QEMU versions show them to the guest), as minimega does.
    pub(crate) fn connect(
        &self,
        mut hello: Hello,
    ) -> Result<(u64, mpsc::UnboundedReceiver<Message>, String), CcError> {
        let mut uuid = hello.uuid.to_lowercase();
        let mut s = self.lock();
        if !s.registered.contains_key(&uuid) {
            match unmangle(&uuid).filter(|u| s.registered.contains_key(u)) {
                Some(u) => {
                    tracing::info!("cc: client {uuid} is VM {u} (unmangled UUID)");
                    uuid = u;
                    hello.uuid.clone_from(&uuid);
                }
                None => return Err(CcError::Unregistered(uuid)),
            }
        }
        if s.clients.contains_key(&uuid) {
            return Err(CcError::Duplicate(uuid));
        }
        s.conns += 1;
        let conn = s.conns;
        let (tx, rx) = mpsc::unbounded_channel();
        if let Some(t) = s.registered.get_mut(&uuid) {
            t.extend(hello.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        s.clients.insert(
            uuid.clone(),
            Client {
                hello,
                processes: Vec::new(),
                tx,
                tunnels: None,
                rtunnels: BTreeSet::new(),
                sent: 0,
                conn,
            },
        );
        push(&mut s, Some(&uuid));
        Ok((conn, rx, uuid))
    }

    /// A connected client said hello again (its guest rebooted behind a link that
    /// stayed up): its record is renewed and it is sent what it has not answered.
    pub(crate) fn rehello(&self, uuid: &str, hello: Hello) {
        let mut s = self.lock();
        if let Some(c) = s.clients.get_mut(uuid) {
            c.hello = hello;
            c.processes.clear();
            c.rtunnels.clear();
            c.sent = 0;
        }
        push(&mut s, Some(uuid));
    }

    /// Records a link's tunnels.
    pub(crate) fn set_tunnels(&self, uuid: &str, t: Tunnels) {
        if let Some(c) = self.lock().clients.get_mut(uuid) {
            c.tunnels = Some(t);
        }
    }

    /// The tunnels of a connected client's link.
    pub fn tunnels(&self, uuid: &str) -> Option<Tunnels> {
        let s = self.lock();
        s.clients
            .get(&uuid.to_lowercase())
            .and_then(|c| c.tunnels.clone())
    }

    /// Whether the server may dial `host:port` for this client's reverse tunnels.
    pub(crate) fn rtunnel_allowed(&self, uuid: &str, host: &str, port: u16) -> bool {
        self.lock()
            .clients
            .get(uuid)
            .is_some_and(|c| c.rtunnels.contains(&(host.to_string(), port)))
    }

    /// Asks every client that matches the filter to listen on `port` and tunnel back
    /// to `host:dst_port`; how many were asked.
    pub fn rtunnel(&self, port: u16, host: &str, dst_port: u16) -> usize {
        let mut s = self.lock();
        let State {
            clients,
            registered,
            filter,
            ..
        } = &mut *s;
        let empty = BTreeMap::new();
        let mut n = 0;
        for (uuid, c) in clients.iter_mut() {
            let tags = registered.get(uuid).unwrap_or(&empty);
            if filter.as_ref().is_some_and(|f| !f.matches(&c.hello, tags)) {
                continue;
            }
            c.rtunnels.insert((host.to_string(), dst_port));
            let msg = Message::RtunnelListen {
                port,
                host: host.to_string(),
                dst_port,
            };
            if c.tx.send(msg).is_ok() {
                n += 1;
            }
        }
        n
    }

    /// Records a client's background processes.
    pub(crate) fn set_processes(&self, uuid: &str, p: Vec<Process>) {
        if let Some(c) = self.lock().clients.get_mut(uuid) {
            c.processes = p;
        }
    }

    /// Each connected client's UUID and background processes.
    pub fn processes(&self) -> Vec<(String, Vec<Process>)> {
        self.lock()
            .clients
            .iter()
            .map(|(u, c)| (u.clone(), c.processes.clone()))
            .collect()
    }

    /// Sends a frame to a connected client; false when it is not connected.
    pub(crate) fn send_to(&self, uuid: &str, m: Message) -> bool {
        self.lock()
            .clients
            .get(uuid)
            .is_some_and(|c| c.tx.send(m).is_ok())
    }

    /// Drops a client when its link ends.
    pub(crate) fn disconnect(&self, uuid: &str, conn: u64) {
        let mut s = self.lock();
        if s.clients.get(uuid).is_some_and(|c| c.conn == conn) {
            s.clients.remove(uuid);
        }
    }

    /// Marks a command answered by `uuid`.
    pub(crate) fn checked_in(&self, id: u64, uuid: &str) {
        if let Some(c) = self.lock().commands.get_mut(&id) {
            c.checked_in.insert(uuid.to_string());
        }
    }

    /// Queues a command (its `id` is given here) with the current filter and prefix
    /// and sends it; its ID.
    pub fn add_command(&self, mut cmd: Command) -> u64 {
        let mut s = self.lock();
        s.last_id += 1;
        let id = s.last_id;
        cmd.id = id;
        let cmd = CcCommand {
            id,
            prefix: s.prefix.clone(),
            cmd,
            filter: s.filter.clone(),
            checked_in: BTreeSet::new(),
        };
        s.commands.insert(id, cmd);
        push(&mut s, None);
        id
    }

    /// The connected clients.
    pub fn clients(&self) -> Vec<Hello> {
        self.lock()
            .clients
            .values()
            .map(|c| c.hello.clone())
            .collect()
    }

    /// Whether an agent with this UUID is connected.
    pub fn is_active(&self, uuid: &str) -> bool {
        self.lock().clients.contains_key(&uuid.to_lowercase())
    }

    /// The queued commands, by ID.
    pub fn commands(&self) -> Vec<CcCommand> {
        self.lock().commands.values().cloned().collect()
    }

    /// Deletes commands with this ID or prefix, or all.
    pub fn delete_commands(&self, what: &str) {
        let mut s = self.lock();
        s.commands
            .retain(|id, c| !(what == "all" || id.to_string() == what || c.prefix == what));
    }

    /// Deletes every command and restarts IDs at 1.
    pub fn clear_commands(&self) {
        let mut s = self.lock();
        s.commands.clear();
        s.last_id = 0;
        for c in s.clients.values_mut() {
            c.sent = 0;
        }
    }

    /// The current filter.
    pub fn filter(&self) -> Option<Filter> {
        self.lock().filter.clone()
    }

    /// Sets (or clears, with `None`) the filter.
    pub fn set_filter(&self, f: Option<Filter>) {
        self.lock().filter = f;
    }

    /// The current prefix.
    pub fn prefix(&self) -> String {
        self.lock().prefix.clone()
    }

    /// Sets the prefix.
    pub fn set_prefix(&self, p: &str) {
        self.lock().prefix = p.to_string();
    }

    /// IDs of the commands with this prefix.
    pub fn ids_with_prefix(&self, prefix: &str) -> Vec<u64> {
        self.lock()
            .commands
            .values()
            .filter(|c| c.prefix == prefix)
            .map(|c| c.id)
            .collect()
    }
}

/// `uuid` with the bytes of its first three groups reversed (`00112233-4455-6677-…` →
/// `33221100-5544-7766-…`), or `None` when it is not a UUID.
fn unmangle(uuid: &str) -> Option<String> {
    let groups: Vec<&str> = uuid.split('-').collect();
    let lens = [8, 4, 4, 4, 12];
    if groups.len() != 5
        || groups.iter().zip(lens).any(|(g, l)| g.len() != l)
        || !uuid.chars().all(|c| c == '-' || c.is_ascii_hexdigit())
    {
        return None;
    }
    let swap = |g: &str| -> String {
        let bytes: Vec<&str> = (0..g.len()).step_by(2).map(|i| &g[i..i + 2]).collect();
        bytes.into_iter().rev().collect()
    };
    Some(format!(
        "{}-{}-{}-{}-{}",
        swap(groups[0]),
        swap(groups[1]),
        swap(groups[2]),
        groups[3],
        groups[4]
    ))
}

/// Sends every client (or only `only`) the commands it has not been sent and matches.
fn push(s: &mut State, only: Option<&str>) {
    let State {
        commands,
        clients,
        registered,
        ..
    } = s;
    for (uuid, c) in clients.iter_mut() {
        if only.is_some_and(|o| o != uuid) {
            continue;
        }
        let empty = BTreeMap::new();
        let tags = registered.get(uuid).unwrap_or(&empty);
        let new: Vec<Command> = commands
            .range(c.sent + 1..)
            .filter(|(_, cmd)| {
                !cmd.checked_in.contains(uuid)
                    && cmd
                        .filter
                        .as_ref()
                        .is_none_or(|f| f.matches(&c.hello, tags))
            })
            .map(|(_, cmd)| cmd.cmd.clone())
            .collect();
        if let Some((last, _)) = commands.iter().next_back() {
            c.sent = c.sent.max(*last);
        }
        if !new.is_empty() {
            let _ = c.tx.send(Message::Commands { commands: new });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello(uuid: &str) -> Hello {
        Hello {
            uuid: uuid.into(),
            ..Hello::default()
        }
    }

    fn ids(rx: &mut mpsc::UnboundedReceiver<Message>) -> Vec<u64> {
        let mut v = Vec::new();
        while let Ok(m) = rx.try_recv() {
            if let Message::Commands { commands } = m {
                v.extend(commands.iter().map(|c| c.id));
            }
        }
        v
    }

    #[test]
    fn a_client_saying_hello_again_gets_only_what_it_has_not_answered() {
        let s = CcServer::default();
        s.register("u1", BTreeMap::new());
        let (_, mut rx, _) = s.connect(hello("u1")).unwrap();
        let a = s.add_command(Command::default());
        let b = s.add_command(Command::default());
        assert_eq!(ids(&mut rx), vec![a, b]);
        s.checked_in(a, "u1");
        s.rehello("u1", hello("u1"));
        assert_eq!(ids(&mut rx), vec![b]);
    }

    #[test]
    fn unregistered_and_duplicate_clients_are_refused_and_flushed_ones_forgotten() {
        let s = CcServer::default();
        assert_eq!(
            s.connect(hello("u9")).unwrap_err(),
            CcError::Unregistered("u9".into())
        );
        s.register("U1", BTreeMap::new());
        let _link = s.connect(hello("u1")).unwrap();
        assert_eq!(
            s.connect(hello("u1")).unwrap_err(),
            CcError::Duplicate("u1".into())
        );
        s.unregister("u1");
        assert!(!s.is_active("u1"));
        assert!(s.connect(hello("u1")).is_err());
    }

    #[test]
    fn a_mangled_uuid_finds_its_vm() {
        assert_eq!(
            unmangle("00112233-4455-6677-8899-aabbccddeeff").as_deref(),
            Some("33221100-5544-7766-8899-aabbccddeeff")
        );
        assert_eq!(unmangle("nope"), None);
        let s = CcServer::default();
        s.register("33221100-5544-7766-8899-aabbccddeeff", BTreeMap::new());
        let _link = s
            .connect(hello("00112233-4455-6677-8899-aabbccddeeff"))
            .unwrap();
        assert!(s.is_active("33221100-5544-7766-8899-aabbccddeeff"));
    }

    #[test]
    fn rtunnels_go_to_matching_clients_and_only_they_may_open_them() {
        let s = CcServer::default();
        s.register("u1", BTreeMap::new());
        s.register("u2", BTreeMap::new());
        let (_, _rx1, _) = s.connect(hello("u1")).unwrap();
        let (_, _rx2, _) = s.connect(hello("u2")).unwrap();
        s.set_filter(Some(Filter::parse(&["uuid=u2".to_string()]).unwrap()));
        assert_eq!(s.rtunnel(9000, "127.0.0.1", 80), 1);
        assert!(s.rtunnel_allowed("u2", "127.0.0.1", 80));
        assert!(!s.rtunnel_allowed("u1", "127.0.0.1", 80));
        assert!(!s.rtunnel_allowed("u2", "127.0.0.1", 22));
    }
}
