//! What the agent keeps across links: its directory, tags, background processes, the
//! highest command run, local pipe readers, and the current link to the server.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use ferromega_cc_proto::{Message, PipeMode, Process};
use tokio::sync::mpsc;

/// The agent; clones share it.
#[derive(Clone)]
pub struct Agent(Arc<Inner>);

struct Inner {
    dir: PathBuf,
    tags: Mutex<BTreeMap<String, String>>,
    procs: Mutex<BTreeMap<u32, Vec<String>>>,
    done: AtomicU64,
    link: Mutex<Option<mpsc::Sender<Message>>>,
    readers: Mutex<HashMap<String, Vec<mpsc::UnboundedSender<String>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Agent {
    /// An agent working in `dir` (`/tmp/miniccc`: files it is sent, its local socket).
    pub fn new(dir: PathBuf) -> Self {
        Agent(Arc::new(Inner {
            dir,
            tags: Mutex::default(),
            procs: Mutex::default(),
            done: AtomicU64::new(0),
            link: Mutex::default(),
            readers: Mutex::default(),
        }))
    }

    /// Its working directory.
    pub fn dir(&self) -> &PathBuf {
        &self.0.dir
    }

    /// Where sent files go.
    pub fn files_dir(&self) -> PathBuf {
        self.0.dir.join("files")
    }

    /// The highest command ID already run.
    pub fn done(&self) -> u64 {
        self.0.done.load(Ordering::Relaxed)
    }

    /// Records that command `id` ran.
    pub fn ran(&self, id: u64) {
        self.0.done.fetch_max(id, Ordering::Relaxed);
    }

    /// Sets (or clears, with `None`) the link to the server.
    pub fn set_link(&self, out: Option<mpsc::Sender<Message>>) {
        *lock(&self.0.link) = out;
    }

    /// Sends a message over the current link; dropped when there is none.
    pub async fn send(&self, m: Message) {
        let out = lock(&self.0.link).clone();
        if let Some(out) = out {
            let _ = out.send(m).await;
        }
    }

    /// Tags set inside the guest.
    pub fn tags(&self) -> BTreeMap<String, String> {
        lock(&self.0.tags).clone()
    }

    /// Sets a tag and tells the server.
    pub async fn set_tag(&self, key: &str, value: &str) {
        let tags = {
            let mut t = lock(&self.0.tags);
            t.insert(key.to_string(), value.to_string());
            t.clone()
        };
        self.send(Message::Tags { tags }).await;
    }

    /// The background processes still running.
    pub fn processes(&self) -> Vec<Process> {
        lock(&self.0.procs)
            .iter()
            .map(|(pid, argv)| Process {
                pid: *pid,
                argv: argv.clone(),
            })
            .collect()
    }

    /// Starts or stops tracking a background process, and tells the server.
    pub async fn track(&self, pid: u32, argv: Option<Vec<String>>) {
        {
            let mut p = lock(&self.0.procs);
            match argv {
                Some(a) => p.insert(pid, a),
                None => p.remove(&pid),
            };
        }
        let processes = self.processes();
        self.send(Message::Processes { processes }).await;
    }

    /// Reads pipe `name` from now on: what the server sends of it arrives on the
    /// receiver. The first local reader of a name tells the server.
    pub async fn pipe_reader(&self, name: &str) -> mpsc::UnboundedReceiver<String> {
        let (tx, rx) = mpsc::unbounded_channel();
        let first = {
            let mut r = lock(&self.0.readers);
            let v = r.entry(name.to_string()).or_default();
            v.retain(|t| !t.is_closed());
            v.push(tx);
            v.len() == 1
        };
        if first {
            self.pipe(name, PipeMode::NewReader, String::new()).await;
        }
        rx
    }

    /// Stops reading pipe `name` once its local readers are gone.
    pub async fn pipe_reader_gone(&self, name: &str) {
        let last = {
            let mut r = lock(&self.0.readers);
            let v = r.entry(name.to_string()).or_default();
            v.retain(|t| !t.is_closed());
            let empty = v.is_empty();
            if empty {
                r.remove(name);
            }
            empty
        };
        if last {
            self.pipe(name, PipeMode::CloseReader, String::new()).await;
        }
    }

    /// Hands data the server sent for pipe `name` to its local readers.
    pub fn pipe_data(&self, name: &str, data: &str) {
        if let Some(v) = lock(&self.0.readers).get(name) {
            for t in v {
                let _ = t.send(data.to_string());
            }
        }
    }

    /// Names of the pipes read here (announced again on a new link).
    pub fn read_pipes(&self) -> Vec<String> {
        lock(&self.0.readers).keys().cloned().collect()
    }

    /// Sends a pipe message.
    pub async fn pipe(&self, name: &str, mode: PipeMode, data: String) {
        let name = name.to_string();
        self.send(Message::Pipe { name, mode, data }).await;
    }
}
