//! `vnc`: kb and fb recording, kb playback and its controls, injection, the listing and
//! `clear vnc` (reference §8). Recorders and players live in [`crate::vnc`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use ferromega_api::{Args, Response};

use crate::vm::registry::go_duration;
use crate::vnc::kbfile::Event;
use crate::vnc::player::{self, Player};
use crate::vnc::{self, FbRecorder, KbRecorder, VmKey};
use crate::{lock, ControlPlane, DomainError, DomainResult};

impl ControlPlane {
    /// The key of the KVM VM named by `args`'s `vm`, which must exist.
    fn vnc_vm(&self, ns: &str, args: &Args) -> DomainResult<VmKey> {
        let vm = self.kvm_vm(ns, args.string("vm").unwrap_or_default())?;
        Ok((ns.to_string(), vm.name))
    }

    /// The VNC socket of a running KVM VM.
    fn vnc_socket(&self, key: &VmKey) -> DomainResult<PathBuf> {
        Ok(self.console_target(&key.0, &key.1)?.socket)
    }

    /// A file named by `args`'s `filename`: relative paths are in the files directory.
    fn vnc_file(&self, args: &Args) -> DomainResult<(PathBuf, bool)> {
        let name = args.string("filename").unwrap_or_default();
        if name.is_empty() {
            return Err(DomainError::invalid("a file name is needed"));
        }
        let relative = Path::new(name).is_relative();
        Ok((self.files_path(name), relative))
    }

    pub(crate) fn vnc(&self, ns: &str) -> DomainResult<Response> {
        let st = lock(&self.inner.vnc);
        let mine = |k: &VmKey| k.0 == ns;
        let since = |t: Instant| go_duration(t.elapsed());
        let mut rows = Vec::new();
        for (k, r) in st.kb.iter().filter(|(k, _)| mine(k)) {
            rows.push(row(&k.1, "record kb", since(r.start), &r.path));
        }
        for (k, r) in st.fb.iter().filter(|(k, _)| mine(k)) {
            rows.push(row(&k.1, "record fb", since(r.start), &r.path));
        }
        for (k, p) in st.play.iter().filter(|(k, _)| mine(k)) {
            rows.push(row(&k.1, "playback kb", p.remaining(), &p.path));
        }
        Ok(self.table(&["name", "type", "time", "filename"], rows))
    }

    pub(crate) async fn vnc_record(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let key = self.vnc_vm(ns, args)?;
        let (path, relative) = self.vnc_file(args)?;
        if args.flag("fb") {
            return self.vnc_record_fb(key, path, relative).await;
        }
        let mut st = lock(&self.inner.vnc);
        if st.kb.contains_key(&key) {
            return Err(DomainError::Conflict(format!(
                "kb recording for {} already running",
                key.1
            )));
        }
        let r = KbRecorder::create(path, relative).map_err(DomainError::Host)?;
        st.kb.insert(key, r);
        Ok(self.ok())
    }

    async fn vnc_record_fb(
        &self,
        key: VmKey,
        path: PathBuf,
        relative: bool,
    ) -> DomainResult<Response> {
        let busy = || DomainError::Conflict(format!("fb recording for {} already running", key.1));
        // One whose VM went away (its connection closed) is over: it makes room.
        let ended = {
            let mut st = lock(&self.inner.vnc);
            match st.fb.get(&key) {
                Some(r) if r.ended() => st.fb.remove(&key),
                Some(_) => return Err(busy()),
                None => None,
            }
        };
        if let Some(r) = ended {
            r.finish().await;
        }
        let socket = self.vnc_socket(&key)?;
        let (conn, init) = vnc::connect(&socket).await.map_err(DomainError::Host)?;
        // Created after the VM answered, so a failure leaves no empty file behind.
        let file = vnc::create_file(&path, relative).map_err(DomainError::Host)?;
        let mut st = lock(&self.inner.vnc);
        if st.fb.contains_key(&key) {
            return Err(busy());
        }
        let (stop, stop_rx) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(vnc::fb::record(conn, init, file, stop_rx));
        st.fb.insert(key, FbRecorder::new(path, stop, task));
        Ok(self.ok())
    }

    pub(crate) async fn vnc_stop(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let key = self.vnc_vm(ns, args)?;
        if args.flag("kb") {
            let gone = lock(&self.inner.vnc).kb.remove(&key);
            return match gone {
                Some(_) => Ok(self.ok()),
                None => Err(DomainError::NotFound(format!(
                    "kb recording for {} not found",
                    key.1
                ))),
            };
        }
        if args.flag("fb") {
            let gone = lock(&self.inner.vnc).fb.remove(&key);
            return match gone {
                Some(r) => {
                    r.finish().await;
                    Ok(self.ok())
                }
                None => Err(DomainError::NotFound(format!(
                    "fb recording for {} not found",
                    key.1
                ))),
            };
        }
        let p = self.vnc_player(&key)?;
        lock(&self.inner.vnc).play.remove(&key);
        p.stop().map_err(DomainError::Conflict)?;
        Ok(self.ok())
    }

    /// The running player of a VM.
    fn vnc_player(&self, key: &VmKey) -> DomainResult<Arc<Player>> {
        lock(&self.inner.vnc)
            .play
            .get(key)
            .cloned()
            .ok_or_else(|| DomainError::NotFound(format!("kb playback {} not found", key.1)))
    }

    pub(crate) async fn vnc_play(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let key = self.vnc_vm(ns, args)?;
        let (path, _) = self.vnc_file(args)?;
        self.vnc_play_file(key, path).await
    }

    async fn vnc_play_file(&self, key: VmKey, path: PathBuf) -> DomainResult<Response> {
        let busy = || DomainError::Conflict(format!("kb playback {} already playing", key.1));
        if lock(&self.inner.vnc).play.contains_key(&key) {
            return Err(busy());
        }
        let text = std::fs::read_to_string(&path)
            .map_err(|e| DomainError::NotFound(format!("{}: {e}", path.display())))?;
        let socket = self.vnc_socket(&key)?;
        let link = self
            .vnc_link(&key, &socket)
            .await
            .map_err(DomainError::Host)?;
        let mut st = lock(&self.inner.vnc);
        if st.play.contains_key(&key) {
            return Err(busy());
        }
        let p = player::start(self.clone(), key.clone(), path, &text, link);
        st.play.insert(key, p);
        Ok(self.ok())
    }

    /// Applies a playback control (`pause`, `continue`, `step`) to the VM's player.
    fn vnc_control(
        &self,
        ns: &str,
        args: &Args,
        control: fn(&Player) -> Result<(), String>,
    ) -> DomainResult<Response> {
        let p = self.vnc_player(&self.vnc_vm(ns, args)?)?;
        control(&p).map_err(DomainError::Conflict)?;
        Ok(self.ok())
    }

    pub(crate) fn vnc_pause(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        self.vnc_control(ns, args, Player::pause)
    }

    pub(crate) fn vnc_continue(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        self.vnc_control(ns, args, Player::resume)
    }

    pub(crate) fn vnc_step(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        self.vnc_control(ns, args, Player::step)
    }

    pub(crate) fn vnc_getstep(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let p = self.vnc_player(&self.vnc_vm(ns, args)?)?;
        Ok(self.text(p.current()))
    }

    pub(crate) async fn vnc_inject(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let key = self.vnc_vm(ns, args)?;
        let event =
            Event::parse(args.string("cmd").unwrap_or_default()).map_err(DomainError::invalid)?;
        let playing = lock(&self.inner.vnc).play.get(&key).cloned();
        if let Some(p) = playing {
            p.inject(event);
            return Ok(self.ok());
        }
        match event {
            Event::LoadFile(f) => self.vnc_play_file(key, self.files_path(&f)).await,
            Event::Input(i) => {
                let socket = self.vnc_socket(&key)?;
                let link = self
                    .vnc_link(&key, &socket)
                    .await
                    .map_err(DomainError::Host)?;
                self.vnc_send(&key, &link, &i)
                    .await
                    .map_err(DomainError::Host)?;
                Ok(self.ok())
            }
        }
    }

    pub(crate) async fn clear_vnc(&self, ns: &str) -> DomainResult<Response> {
        self.vnc_stop_all(|k| k.0 == ns).await;
        Ok(self.ok())
    }

    /// Stops the recordings and playback of VM `name` of `ns` (it is being flushed).
    pub(crate) async fn vnc_stop_vm(&self, ns: &str, name: &str) {
        self.vnc_stop_all(|k| k.0 == ns && k.1 == name).await;
    }

    async fn vnc_stop_all(&self, pick: impl Fn(&VmKey) -> bool) {
        let (fb, play) = {
            let mut st = lock(&self.inner.vnc);
            st.kb.retain(|k, _| !pick(k));
            st.links.retain(|k, _| !pick(k));
            let fb: Vec<VmKey> = st.fb.keys().filter(|k| pick(k)).cloned().collect();
            let fb: Vec<FbRecorder> = fb.iter().filter_map(|k| st.fb.remove(k)).collect();
            let play: Vec<VmKey> = st.play.keys().filter(|k| pick(k)).cloned().collect();
            let play: Vec<Arc<Player>> = play.iter().filter_map(|k| st.play.remove(k)).collect();
            (fb, play)
        };
        for p in play {
            let _ = p.stop();
        }
        for r in fb {
            r.finish().await;
        }
    }
}

fn row(name: &str, kind: &str, time: String, path: &Path) -> Vec<String> {
    vec![
        name.to_string(),
        kind.to_string(),
        time,
        path.display().to_string(),
    ]
}
