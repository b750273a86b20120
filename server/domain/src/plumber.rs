//! plumber: the named pipes of one namespace (minimega's miniplumber) and the `plumb`
//! pipelines that join host processes and pipes. A pipe carries messages (lines) from
//! its writers to its readers: to all of them, to one in turn (round-robin) or to one
//! at random; a `via` program may rewrite each message on its way to each reader.
//! Pipe readers and writers are host pipelines, agents inside guests (`cc exec
//! stdin=p1 stdout=p2 …`), `pipe <name> <data>` and `ferromega pipe <name>`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc;
use tokio::task::AbortHandle;

/// How a pipe delivers a message to its readers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Every reader gets it.
    #[default]
    All,
    /// The readers get messages in turn.
    RoundRobin,
    /// A reader picked at random gets it.
    Random,
}

impl Mode {
    /// Its name in commands and listings.
    pub fn name(self) -> &'static str {
        match self {
            Mode::All => "all",
            Mode::RoundRobin => "round-robin",
            Mode::Random => "random",
        }
    }

    /// The mode called `s`.
    pub fn parse(s: &str) -> Option<Mode> {
        [Mode::All, Mode::RoundRobin, Mode::Random]
            .into_iter()
            .find(|m| m.name() == s)
    }
}

/// A reader's inbox.
pub type Inbox = mpsc::UnboundedReceiver<String>;

#[derive(Debug, Default)]
struct Pipe {
    mode: Mode,
    readers: BTreeMap<u64, mpsc::UnboundedSender<String>>,
    writers: usize,
    via: Vec<String>,
    last: String,
    log: bool,
    turn: usize,
}

/// A running `plumb` pipeline: its tasks, and the kill switches of its processes
/// (dropping the pipeline stops the tasks and kills the processes).
#[derive(Debug, Default)]
pub struct Pipeline {
    /// Tasks moving its data.
    pub tasks: Vec<AbortHandle>,
    /// Dropping these kills its processes.
    pub kills: Vec<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

#[derive(Debug, Default)]
struct State {
    pipes: BTreeMap<String, Pipe>,
    next_reader: u64,
    pipelines: BTreeMap<String, Pipeline>,
}

/// The pipes and pipelines of one namespace; clones share them.
#[derive(Debug, Clone, Default)]
pub struct Plumber {
    state: Arc<Mutex<State>>,
}

/// One row of the `pipe` listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipeInfo {
    /// The pipe's name.
    pub name: String,
    /// Its mode.
    pub mode: Mode,
    /// How many readers it has.
    pub readers: usize,
    /// How many writers it has.
    pub writers: usize,
    /// Its via program.
    pub via: Vec<String>,
    /// The last message written.
    pub last: String,
}

/// What a write has to deliver: to these readers, through `via` when not empty.
#[derive(Debug)]
pub struct Delivery {
    /// The readers to give the message to.
    pub to: Vec<mpsc::UnboundedSender<String>>,
    /// The via program.
    pub via: Vec<String>,
}

impl Plumber {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads `name` (created when new); the reader's ID and inbox.
    pub fn reader(&self, name: &str) -> (u64, Inbox) {
        let mut s = self.lock();
        s.next_reader += 1;
        let id = s.next_reader;
        let (tx, rx) = mpsc::unbounded_channel();
        s.pipes
            .entry(name.to_string())
            .or_default()
            .readers
            .insert(id, tx);
        (id, rx)
    }

    /// Stops reader `id` of `name`.
    pub fn close_reader(&self, name: &str, id: u64) {
        if let Some(p) = self.lock().pipes.get_mut(name) {
            p.readers.remove(&id);
        }
    }

    /// A writer of `name` (created when new) starts.
    pub fn open_writer(&self, name: &str) {
        self.lock()
            .pipes
            .entry(name.to_string())
            .or_default()
            .writers += 1;
    }

    /// A writer of `name` ends.
    pub fn close_writer(&self, name: &str) {
        if let Some(p) = self.lock().pipes.get_mut(name) {
            p.writers = p.writers.saturating_sub(1);
        }
    }

    /// Writes a message into `name` (created when new); what remains to deliver.
    pub fn write(&self, name: &str, msg: &str) -> Delivery {
        let mut s = self.lock();
        let p = s.pipes.entry(name.to_string()).or_default();
        p.readers.retain(|_, t| !t.is_closed());
        p.last = msg.to_string();
        if p.log {
            tracing::info!("pipe {name}: {msg}");
        }
        let all: Vec<_> = p.readers.values().cloned().collect();
        let to = if all.is_empty() {
            all
        } else {
            match p.mode {
                Mode::All => all,
                Mode::RoundRobin => {
                    p.turn = (p.turn + 1) % all.len();
                    vec![all[p.turn].clone()]
                }
                Mode::Random => {
                    let pick = (uuid::Uuid::new_v4().as_u128() % all.len() as u128) as usize;
                    vec![all[pick].clone()]
                }
            }
        };
        Delivery {
            to,
            via: p.via.clone(),
        }
    }

    /// Whether a pipe called `name` exists.
    pub fn exists(&self, name: &str) -> bool {
        self.lock().pipes.contains_key(name)
    }

    /// Sets a pipe's mode.
    pub fn set_mode(&self, name: &str, mode: Mode) {
        self.lock().pipes.entry(name.to_string()).or_default().mode = mode;
    }

    /// Logs (or stops logging) a pipe's messages.
    pub fn set_log(&self, name: &str, log: bool) {
        self.lock().pipes.entry(name.to_string()).or_default().log = log;
    }

    /// Sets (or clears, with an empty argv) a pipe's via program.
    pub fn set_via(&self, name: &str, via: Vec<String>) {
        self.lock().pipes.entry(name.to_string()).or_default().via = via;
    }

    /// The pipes, by name.
    pub fn pipes(&self) -> Vec<PipeInfo> {
        self.lock()
            .pipes
            .iter()
            .map(|(name, p)| PipeInfo {
                name: name.clone(),
                mode: p.mode,
                readers: p.readers.values().filter(|t| !t.is_closed()).count(),
                writers: p.writers,
                via: p.via.clone(),
                last: p.last.clone(),
            })
            .collect()
    }

    /// Deletes a pipe (its readers see it end); false when there is none.
    pub fn delete(&self, name: &str) -> bool {
        self.lock().pipes.remove(name).is_some()
    }

    /// Deletes every pipe.
    pub fn delete_all(&self) {
        self.lock().pipes.clear();
    }

    /// Keeps a running pipeline under its name.
    pub fn add_pipeline(&self, name: String, p: Pipeline) {
        self.lock().pipelines.insert(name, p);
    }

    /// The pipelines' names.
    pub fn pipelines(&self) -> Vec<String> {
        self.lock().pipelines.keys().cloned().collect()
    }

    /// Stops a pipeline (killing its processes); false when there is none.
    pub fn stop_pipeline(&self, name: &str) -> bool {
        let p = self.lock().pipelines.remove(name);
        p.is_some()
    }

    /// Stops every pipeline.
    pub fn stop_all(&self) {
        let all = std::mem::take(&mut self.lock().pipelines);
        drop(all);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_mode_gives_every_reader_the_message() {
        let p = Plumber::default();
        let (_, mut a) = p.reader("x");
        let (_, mut b) = p.reader("x");
        for t in p.write("x", "hi").to {
            t.send("hi".into()).unwrap();
        }
        assert_eq!(a.try_recv().unwrap(), "hi");
        assert_eq!(b.try_recv().unwrap(), "hi");
        assert_eq!(p.pipes()[0].last, "hi");
    }

    #[test]
    fn round_robin_takes_turns_and_random_picks_one() {
        let p = Plumber::default();
        let (_, mut a) = p.reader("x");
        let (_, mut b) = p.reader("x");
        p.set_mode("x", Mode::RoundRobin);
        for i in 0..4 {
            for t in p.write("x", "m").to {
                t.send(i.to_string()).unwrap();
            }
        }
        let got_a: Vec<String> = std::iter::from_fn(|| a.try_recv().ok()).collect();
        let got_b: Vec<String> = std::iter::from_fn(|| b.try_recv().ok()).collect();
        assert_eq!((got_a.len(), got_b.len()), (2, 2));
        p.set_mode("x", Mode::Random);
        assert_eq!(p.write("x", "m").to.len(), 1);
    }

    #[test]
    fn closed_readers_are_forgotten_and_pipes_deleted() {
        let p = Plumber::default();
        let (id, _a) = p.reader("x");
        let (_, b) = p.reader("x");
        drop(b);
        p.close_reader("x", id);
        assert_eq!(p.write("x", "m").to.len(), 0);
        assert_eq!(p.pipes()[0].readers, 0);
        assert!(p.delete("x"));
        assert!(!p.delete("x"));
        assert_eq!(Mode::parse("round-robin"), Some(Mode::RoundRobin));
        assert_eq!(Mode::parse("sometimes"), None);
    }
}
