//! kb playback (reference §8.4): a task that plays a kb file into a VM over its own RFB
//! connection, honouring the recorded delays, and takes pause / continue / step / stop and
//! injected events while it runs.
//!
//! ```text
//!   playing ──pause──► paused ──continue──► playing
//!      │  step: send the next event now (either state)  │
//!      └────── stop, end of file, VM gone ──► ended ◄───┘
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::kbfile::{duration_ns, Event, Line};
use super::{Link, VmKey};
use crate::vm::registry::go_duration;
use crate::{lock, ControlPlane};

/// Deepest LoadFile nesting played; deeper ones are refused.
const MAX_DEPTH: usize = 100;
/// Nesting beyond this is warned about.
const WARN_DEPTH: usize = 10;

/// What the operations ask of a running player.
#[derive(Debug)]
enum Ctl {
    Pause,
    Continue,
    Step,
    Stop,
    Inject(Event),
}

#[derive(Debug)]
struct Status {
    paused: bool,
    ended: bool,
    /// The line being waited on (what `vnc getstep` prints).
    line: String,
    /// Delays already played, ns.
    done_ns: u64,
    /// When the current wait began, and how long it is.
    wait: (Instant, Duration),
}

/// A running playback.
pub(crate) struct Player {
    /// The file played.
    pub(crate) path: PathBuf,
    total_ns: u64,
    ctl: mpsc::UnboundedSender<Ctl>,
    status: Mutex<Status>,
}

impl Player {
    fn ask(&self, c: Ctl) {
        let _ = self.ctl.send(c);
    }

    /// `vnc pause`.
    pub(crate) fn pause(&self) -> Result<(), String> {
        let mut s = lock(&self.status);
        if s.paused || s.ended {
            return Err("playback not pauseable".into());
        }
        s.paused = true;
        self.ask(Ctl::Pause);
        Ok(())
    }

    /// `vnc continue`.
    pub(crate) fn resume(&self) -> Result<(), String> {
        let mut s = lock(&self.status);
        if !s.paused || s.ended {
            return Err("playback not playable".into());
        }
        s.paused = false;
        self.ask(Ctl::Continue);
        Ok(())
    }

    /// `vnc step`: the next event goes out now.
    pub(crate) fn step(&self) -> Result<(), String> {
        if lock(&self.status).ended {
            return Err("playback not stepable".into());
        }
        self.ask(Ctl::Step);
        Ok(())
    }

    /// `vnc getstep`: the line waited on.
    pub(crate) fn current(&self) -> String {
        lock(&self.status).line.clone()
    }

    /// `vnc stop`.
    pub(crate) fn stop(&self) -> Result<(), String> {
        let mut s = lock(&self.status);
        if s.ended {
            return Err("playback has already stopped".into());
        }
        s.ended = true;
        self.ask(Ctl::Stop);
        Ok(())
    }

    /// `vnc inject` while playing: sent at once (a LoadFile plays before the rest).
    pub(crate) fn inject(&self, e: Event) {
        self.ask(Ctl::Inject(e));
    }

    /// The `time` column of `vnc`: `PAUSED` or `<duration> remaining`.
    pub(crate) fn remaining(&self) -> String {
        let s = lock(&self.status);
        if s.paused {
            return "PAUSED".into();
        }
        let waited = s.wait.0.elapsed().min(s.wait.1).as_nanos() as u64;
        let left = self.total_ns.saturating_sub(s.done_ns + waited);
        format!("{} remaining", go_duration(Duration::from_nanos(left)))
    }
}

/// One file being played: its folder (for LoadFile), its lines and the next one.
struct Cursor {
    dir: PathBuf,
    lines: Vec<String>,
    next: usize,
}

impl Cursor {
    fn new(path: &Path, text: &str) -> Cursor {
        Cursor {
            dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            lines: text.lines().map(str::to_string).collect(),
            next: 0,
        }
    }
}

/// Starts playing `text` (the contents of `path`) over the VM's `link`.
pub(crate) fn start(
    cp: ControlPlane,
    key: VmKey,
    path: PathBuf,
    text: &str,
    link: Arc<Link>,
) -> Arc<Player> {
    let (tx, rx) = mpsc::unbounded_channel();
    let player = Arc::new(Player {
        path: path.clone(),
        total_ns: duration_ns(text),
        ctl: tx,
        status: Mutex::new(Status {
            paused: false,
            ended: false,
            line: String::new(),
            done_ns: 0,
            wait: (Instant::now(), Duration::ZERO),
        }),
    });
    let first = Cursor::new(&path, text);
    let me = player.clone();
    tokio::spawn(async move {
        if let Err(e) = play(&cp, &key, &me, first, &link, rx).await {
            tracing::warn!("vnc playback {}: {e}", me.path.display());
        }
        lock(&me.status).ended = true;
        cp.vnc_player_ended(&key, &me);
    });
    player
}

/// Reads a LoadFile's file, relative to `dir`.
fn load(dir: &Path, file: &str, depth: usize) -> Result<Cursor, String> {
    if depth >= MAX_DEPTH {
        return Err(format!(
            "LoadFile {file}: nested more than {MAX_DEPTH} deep"
        ));
    }
    if depth >= WARN_DEPTH {
        tracing::warn!("vnc playback: LoadFile {file} nested {depth} deep");
    }
    let path = dir.join(file);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(Cursor::new(&path, &text))
}

async fn play(
    cp: &ControlPlane,
    key: &VmKey,
    me: &Player,
    first: Cursor,
    link: &Link,
    mut rx: mpsc::UnboundedReceiver<Ctl>,
) -> Result<(), String> {
    let mut stack = vec![first];
    loop {
        let Some(top) = stack.last_mut() else {
            return Ok(());
        };
        let Some(text) = top.lines.get(top.next).cloned() else {
            stack.pop();
            continue;
        };
        top.next += 1;
        let (delta_ns, event) = match Line::parse(&text) {
            Ok(Line::Event { delta_ns, event }) => (delta_ns, event),
            Ok(Line::Comment(c)) => {
                tracing::info!("vnc playback: {c}");
                continue;
            }
            Ok(Line::Blank) => continue,
            Err(e) => {
                tracing::warn!("vnc playback: {e}");
                continue;
            }
        };
        let wait = Duration::from_nanos(delta_ns);
        {
            let mut s = lock(&me.status);
            s.line = text.clone();
            s.wait = (Instant::now(), wait);
        }
        let mut deadline = tokio::time::Instant::now() + wait;
        let mut paused = lock(&me.status).paused;
        let mut left = wait;
        let mut preempted = false;
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(deadline), if !paused => break,
                c = rx.recv() => match c {
                    None | Some(Ctl::Stop) => return Ok(()),
                    Some(Ctl::Pause) => {
                        paused = true;
                        left = deadline.saturating_duration_since(tokio::time::Instant::now());
                    }
                    Some(Ctl::Continue) => {
                        paused = false;
                        deadline = tokio::time::Instant::now() + left;
                    }
                    Some(Ctl::Step) => break,
                    Some(Ctl::Inject(Event::Input(i))) => cp.vnc_send(key, link, &i).await?,
                    Some(Ctl::Inject(Event::LoadFile(f))) => {
                        let dir = stack.last().map(|c| c.dir.clone()).unwrap_or_default();
                        match load(&dir, &f, stack.len()) {
                            Ok(c) => {
                                // The event waited on plays after the loaded file.
                                if let Some(top) = stack.last_mut() {
                                    top.next -= 1;
                                }
                                stack.push(c);
                                preempted = true;
                                break;
                            }
                            Err(e) => tracing::warn!("vnc inject: {e}"),
                        }
                    }
                },
            }
        }
        if preempted {
            continue;
        }
        lock(&me.status).done_ns += delta_ns;
        match event {
            Event::Input(i) => cp.vnc_send(key, link, &i).await?,
            Event::LoadFile(f) => {
                let dir = stack.last().map(|c| c.dir.clone()).unwrap_or_default();
                match load(&dir, &f, stack.len()) {
                    Ok(c) => stack.push(c),
                    Err(e) => tracing::warn!("vnc playback: {e}"),
                }
            }
        }
    }
}

impl ControlPlane {
    /// Forgets a player that ended on its own (end of file, VM gone).
    fn vnc_player_ended(&self, key: &VmKey, me: &Arc<Player>) {
        let mut st = lock(&self.inner.vnc);
        if st.play.get(key).is_some_and(|p| Arc::ptr_eq(p, me)) {
            st.play.remove(key);
        }
    }
}
