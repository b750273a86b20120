//! ferromega-domain: the ControlPlane — namespaces, vm config, the VM registry, VLAN aliases,
//! files and the command engine; backends are traits it owns.
//!
//! Every operation of the language is a method of [`ControlPlane`] named like its
//! handler (`vm_config_memory`, `vlans_add` …), reached through [`ControlPlane::invoke`]
//! from HTTP and through [`ControlPlane::run_line`] from command lines.

pub mod backends;
pub mod cc;
pub mod console;
mod engine;
pub mod error;
pub mod events;
mod gate;
pub mod graphs;
pub mod mesh;
pub mod namespace;
pub mod network;
mod ops;
pub mod plumber;
mod preprocess;
pub mod vlans;
pub mod vm;
pub mod vnc;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use ferromega_command::render::Flags;

pub use backends::{HostNetwork, HostSystem, Hypervisor, PeerLink, VmRuntime};
pub use engine::Session;
pub use error::{DomainError, DomainResult};
pub use gate::{Gate, GateFn};
use namespace::{Namespace, DEFAULT_NAMESPACE};
use vlans::Vlans;

/// Where the server keeps its state and which host it is.
#[derive(Debug, Clone)]
pub struct Settings {
    /// This host's name (the `host` column).
    pub host: String,
    /// Base directory (`--base`).
    pub base: PathBuf,
    /// Files directory (`--filepath`).
    pub files_dir: PathBuf,
}

/// The host backends the domain drives.
#[derive(Clone)]
pub struct Backends {
    /// Host programs and process figures (`shell`, `background`, `check`, `debug`).
    pub system: Arc<dyn HostSystem>,
    /// KVM runtime, when this server has one.
    pub kvm: Option<Arc<dyn Hypervisor>>,
    /// Container runtime, when this server has one.
    pub container: Option<Arc<dyn VmRuntime>>,
    /// Host network (bridges, taps, qos, captures, dnsmasq), when this server has one.
    pub network: Option<Arc<dyn HostNetwork>>,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it: a
/// handler's panic must never take the server's state with it.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct Inner {
    settings: Settings,
    backends: Backends,
    namespaces: Mutex<BTreeMap<String, Arc<Mutex<Namespace>>>>,
    vlans: Mutex<Vlans>,
    history: Mutex<Vec<String>>,
    flags: Mutex<Flags>,
    aliases: Mutex<BTreeMap<String, String>>,
    env: Mutex<BTreeMap<String, String>>,
    next_vm_id: AtomicU64,
    cpu_profile: Mutex<Option<ops::misc::CpuProfile>>,
    quit: tokio::sync::watch::Sender<bool>,
    events: events::EventBus,
    net: Mutex<ops::net::NetState>,
    graphs: graphs::SharedStore,
    mesh: Mutex<mesh::MeshState>,
    vnc: Mutex<vnc::VncState>,
}

/// The control plane: one per server, cheap to clone, shared by every front end.
#[derive(Clone)]
pub struct ControlPlane {
    inner: Arc<Inner>,
}

impl ControlPlane {
    /// A control plane over `settings`, driving `backends`; the environment used by
    /// the preprocessor starts as a copy of the process environment.
    pub fn new(settings: Settings, backends: Backends) -> Self {
        let (quit, _) = tokio::sync::watch::channel(false);
        let cp = ControlPlane {
            inner: Arc::new(Inner {
                settings,
                backends,
                namespaces: Mutex::new(BTreeMap::new()),
                vlans: Mutex::new(Vlans::new()),
                history: Mutex::new(Vec::new()),
                flags: Mutex::new(Flags::default()),
                aliases: Mutex::new(BTreeMap::new()),
                env: Mutex::new(std::env::vars().collect()),
                next_vm_id: AtomicU64::new(0),
                cpu_profile: Mutex::new(None),
                quit,
                events: events::EventBus::new(),
                net: Mutex::new(ops::net::NetState::default()),
                graphs: Mutex::default(),
                mesh: Mutex::default(),
                vnc: Mutex::default(),
            }),
        };
        cp.namespace_or_create(DEFAULT_NAMESPACE);
        cp
    }

    /// This host's name.
    pub fn host(&self) -> &str {
        &self.inner.settings.host
    }

    /// The files directory.
    pub fn files_dir(&self) -> &Path {
        &self.inner.settings.files_dir
    }

    /// The base directory.
    pub fn base(&self) -> &Path {
        &self.inner.settings.base
    }

    /// A receiver that turns true when `quit` asks the server to stop.
    pub fn quit_signal(&self) -> tokio::sync::watch::Receiver<bool> {
        self.inner.quit.subscribe()
    }

    /// Tells every long-lived task and stream that the server is stopping (a signal
    /// arrived): the same as `quit` does before the server goes.
    pub fn stopping(&self) {
        self.inner.quit.send_replace(true);
    }

    /// Names of the existing namespaces.
    pub fn namespace_names(&self) -> Vec<String> {
        lock(&self.inner.namespaces).keys().cloned().collect()
    }

    /// The namespace `name`, created when missing (as minimega creates them lazily). A
    /// new namespace other than `minimega` spans every other host of the mesh (the peers
    /// and the hosts beyond them) but not this one (the head node), or only this host
    /// when there are no peers.
    pub(crate) fn namespace_or_create(&self, name: &str) -> Arc<Mutex<Namespace>> {
        if let Some(n) = self.namespace(name) {
            return n;
        }
        let peers = if name == DEFAULT_NAMESPACE {
            Vec::new()
        } else {
            self.mesh_hosts()
        };
        let mut all = lock(&self.inner.namespaces);
        all.entry(name.to_string())
            .or_insert_with(|| {
                let mut n = Namespace::new(name, self.host());
                if !peers.is_empty() {
                    n.hosts = peers.into_iter().collect();
                }
                Arc::new(Mutex::new(n))
            })
            .clone()
    }

    /// The namespace `name` if it exists.
    pub(crate) fn namespace(&self, name: &str) -> Option<Arc<Mutex<Namespace>>> {
        lock(&self.inner.namespaces).get(name).cloned()
    }

    /// Rewrites `<base>/vlans` after an alias change (best effort, logged on failure).
    pub(crate) fn write_vlans_file(&self, vlans: &Vlans) {
        let path = self.base().join("vlans");
        if let Err(e) = std::fs::write(&path, vlans.file_text()) {
            tracing::warn!("cannot write {}: {e}", path.display());
        }
    }
}

impl ControlPlane {
    /// The server-wide output flags (`.annotate`, `.csv` …) commands render with.
    pub fn output_flags(&self) -> Flags {
        *lock(&self.inner.flags)
    }

    /// Completions for a partial command line: commands, namespace names after
    /// `namespace`, and environment variables for a word starting with `$`.
    pub fn suggest(&self, line: &str) -> Vec<String> {
        let (head, last) = match line.rfind(char::is_whitespace) {
            Some(i) => (&line[..=i], &line[i + 1..]),
            None => ("", line),
        };
        if let Some(var) = last.strip_prefix('$') {
            return lock(&self.inner.env)
                .keys()
                .filter(|k| k.starts_with(var))
                .map(|k| format!("{head}${k} "))
                .collect();
        }
        let words: Vec<&str> = head.split_whitespace().collect();
        if words
            .last()
            .is_some_and(|w| *w == "namespace" || *w == "ns")
            && words.len() == 1
        {
            let mut out: Vec<String> = self
                .namespace_names()
                .into_iter()
                .filter(|n| n.starts_with(last))
                .map(|n| format!("{head}{n} "))
                .collect();
            if words[0] == "namespace" {
                return out;
            }
            out.extend(ferromega_command::compile::suggest(
                &ferromega_command::handlers::HANDLERS,
                line,
            ));
            return out;
        }
        ferromega_command::compile::suggest(&ferromega_command::handlers::HANDLERS, line)
    }
}

impl ControlPlane {
    /// Tears everything down as minimega does on exit: every namespace (and its VMs)
    /// is destroyed.
    pub async fn shutdown(&self) {
        let mut session = Session::default();
        if let Err(e) = self.clear_all(&mut session).await {
            tracing::warn!("shutdown: {e}");
        }
    }
}
