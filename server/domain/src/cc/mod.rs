//! cc: the command-and-control server of one namespace — its agents (clients), queued
//! commands, filter and prefix, and the link each agent speaks over.
//!
//! A client is known by the UUID of a VM registered here at launch; an agent with
//! another UUID, or a second agent with a UUID already connected, is refused. Commands
//! get increasing IDs from 1; each client is sent, in ID order, the commands above the
//! highest it has been sent whose filter it matches. Responses are written by the
//! link under the namespace's responses directory as `<id>/<uuid>/{stdout,stderr}`.

pub mod filter;
mod link;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};

use ferromega_cc_proto::{Command, Hello, Message};
use tokio::sync::mpsc;

pub use filter::Filter;
pub use link::serve_link;

/// One queued command.
#[derive(Debug, Clone)]
pub struct CcCommand {
    /// Its ID.
    pub id: u64,
    /// The prefix it was queued with.
    pub prefix: String,
    /// Program and arguments.
    pub argv: Vec<String>,
    /// Run in the background.
    pub background: bool,
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
    /// Frames to send it.
    tx: mpsc::UnboundedSender<Message>,
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

    /// Forgets a VM (flushed or killed).
    pub fn unregister(&self, uuid: &str) {
        let mut s = self.lock();
        s.registered.remove(&uuid.to_lowercase());
        s.clients.remove(&uuid.to_lowercase());
    }

    /// Accepts a client; returns its connection number and the frames to send it.
    pub(crate) fn connect(
        &self,
        hello: Hello,
    ) -> Result<(u64, mpsc::UnboundedReceiver<Message>), CcError> {
        let uuid = hello.uuid.to_lowercase();
        let mut s = self.lock();
        if !s.registered.contains_key(&uuid) {
            return Err(CcError::Unregistered(uuid));
        }
        if s.clients.contains_key(&uuid) {
            return Err(CcError::Duplicate(uuid));
        }
        s.conns += 1;
        let conn = s.conns;
        let (tx, rx) = mpsc::unbounded_channel();
        s.clients.insert(
            uuid.clone(),
            Client {
                hello,
                tx,
                sent: 0,
                conn,
            },
        );
        push(&mut s, Some(&uuid));
        Ok((conn, rx))
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

    /// Queues a command with the current filter and prefix and sends it; its ID.
    pub fn add_command(&self, argv: Vec<String>, background: bool) -> u64 {
        let mut s = self.lock();
        s.last_id += 1;
        let id = s.last_id;
        let cmd = CcCommand {
            id,
            prefix: s.prefix.clone(),
            argv,
            background,
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
                cmd.filter
                    .as_ref()
                    .is_none_or(|f| f.matches(&c.hello, tags))
            })
            .map(|(id, cmd)| Command {
                id: *id,
                background: cmd.background,
                argv: cmd.argv.clone(),
            })
            .collect();
        if let Some((last, _)) = commands.iter().next_back() {
            c.sent = c.sent.max(*last);
        }
        if !new.is_empty() {
            let _ = c.tx.send(Message::Commands { commands: new });
        }
    }
}
