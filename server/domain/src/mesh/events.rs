//! VM events across the mesh: each host serves its own VM events to its peers
//! ([`ControlPlane::peer_events`]), and follows each up peer's, re-publishing them on its
//! own bus — so the dashboard of any host sees the VMs of every host its namespaces span.
//!
//! A followed peer's VMs are cached here (they make part of the snapshot a new reader
//! gets); when the peer goes down or hangs up they are removed (`vm_removed` events),
//! and its next snapshot brings them back. Only the peer's own events travel (never the
//! ones it relays), so two hosts following each other cannot loop; and only VMs of
//! namespaces that span the peer on this host are shown (a peer's `minimega` is not
//! this host's `minimega`).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use ferromega_api::events::{Event, VmSummary};
use futures::{Stream, StreamExt};
use tokio::sync::broadcast::error::RecvError;

use crate::backends::PeerLink;
use crate::{lock, ControlPlane};

/// A followed peer: its follower task and its VMs as last heard.
pub(crate) struct Followed {
    generation: u64,
    task: tokio::task::AbortHandle,
    vms: BTreeMap<Key, Known>,
}

impl ControlPlane {
    /// This host's own VM events for a peer: a snapshot of its VMs, then each change of
    /// them (events relayed from other hosts are left out). The stream ends when this
    /// reader falls behind; the peer then follows again and gets a fresh snapshot.
    pub fn peer_events(&self) -> impl Stream<Item = Event> + Send + 'static {
        let me = self.host().to_string();
        let rx = self.inner.events.subscribe();
        let first = Event::Snapshot {
            host: me.clone(),
            vms: self.local_vms(),
        };
        let changes = futures::stream::unfold((rx, me), |(mut rx, me)| async move {
            loop {
                match rx.recv().await {
                    Ok(e) if e.host() == me && !matches!(e, Event::HostStats { .. }) => {
                        return Some((e, (rx, me)));
                    }
                    Ok(_) => continue,
                    Err(RecvError::Lagged(_) | RecvError::Closed) => return None,
                }
            }
        });
        futures::stream::once(async move { first }).chain(changes)
    }

    /// Whether VMs of `host` in namespace `ns` belong to what this host shows: the
    /// namespace exists here and spans `host`.
    pub(crate) fn spans(&self, ns: &str, host: &str) -> bool {
        self.namespace(ns)
            .is_some_and(|n| lock(&n).hosts.contains(host))
    }

    /// VMs of followed peers in namespaces spanning them, for a snapshot.
    pub(crate) fn remote_vms(&self) -> Vec<VmSummary> {
        let all: Vec<VmSummary> = lock(&self.inner.mesh)
            .followed
            .values()
            .flat_map(|f| f.vms.values().map(|k| k.vm.clone()))
            .collect();
        all.into_iter()
            .filter(|v| self.spans(&v.namespace, &v.host))
            .collect()
    }

    /// The VM `vm` (name or ID) of namespace `ns` on a followed peer that the namespace
    /// spans, as last heard.
    pub(crate) fn remote_vm(&self, ns: &str, vm: &str) -> Option<VmSummary> {
        let found = lock(&self.inner.mesh)
            .followed
            .values()
            .flat_map(|f| f.vms.values().map(|k| &k.vm))
            .find(|v| v.namespace == ns && (v.name == vm || v.id.to_string() == vm))
            .cloned()?;
        self.spans(ns, &found.host).then_some(found)
    }

    /// Follows the hosts reached only through peers too (at the address they announce:
    /// the dashboard talks to a VM's host directly, as miniweb does), and stops
    /// following those no longer reached.
    pub(crate) fn follow_far_hosts(&self, link: &Arc<dyn PeerLink>) {
        let (far, stale): (Vec<(String, String)>, Vec<String>) = {
            let m = lock(&self.inner.mesh);
            let reached = m.next_hops();
            let far = reached
                .keys()
                .filter(|h| !m.peers.contains_key(*h))
                .filter_map(|h| Some((h.clone(), m.heard_addr(h)?)))
                .collect();
            let stale = m
                .followed
                .keys()
                .filter(|h| !m.peers.contains_key(*h) && !reached.contains_key(*h))
                .cloned()
                .collect();
            (far, stale)
        };
        for host in stale {
            self.unfollow_events(&host, None);
        }
        for (host, addr) in far {
            self.follow_events(link, &host, &addr);
        }
    }

    /// Starts following `host` at `addr` unless it is already followed.
    pub(crate) fn follow_events(&self, link: &Arc<dyn PeerLink>, host: &str, addr: &str) {
        let mut m = lock(&self.inner.mesh);
        if m.followed.contains_key(host) {
            return;
        }
        m.generation += 1;
        let generation = m.generation;
        let (cp, link, h, a) = (
            self.clone(),
            link.clone(),
            host.to_string(),
            addr.to_string(),
        );
        let task = tokio::spawn(async move {
            let mut heard = false;
            let ended = match link.events(&a).await {
                Ok(mut stream) => loop {
                    match stream.next().await {
                        Some(Ok(e)) => {
                            heard = true;
                            cp.remote_event(&h, e);
                        }
                        Some(Err(e)) => break e,
                        None => break "the stream ended".to_string(),
                    }
                },
                Err(e) => e,
            };
            // A peer that never answers is retried every heartbeat: only a lost stream
            // is worth the log.
            if heard {
                tracing::info!("lost the VM events of {h}: {ended}");
            } else {
                tracing::debug!("cannot follow the VM events of {h}: {ended}");
            }
            cp.unfollow_events(&h, Some(generation));
        });
        m.followed.insert(
            host.to_string(),
            Followed {
                generation,
                task: task.abort_handle(),
                vms: BTreeMap::new(),
            },
        );
    }

    /// Stops following `host` (down, hung up, or its stream ended — then only if it is
    /// still that follower's `generation`) and removes its VMs from what is shown.
    pub(crate) fn unfollow_events(&self, host: &str, generation: Option<u64>) {
        let gone = {
            let mut m = lock(&self.inner.mesh);
            match m.followed.get(host) {
                Some(f) if generation.is_none_or(|g| g == f.generation) => {}
                _ => return,
            }
            m.followed.remove(host)
        };
        let Some(f) = gone else { return };
        f.task.abort();
        for known in f.vms.into_values().filter(|k| k.shown) {
            self.inner.events.send(removed(&known.vm));
        }
    }

    /// One event of the followed peer `host`: updates its cache and re-publishes it.
    fn remote_event(&self, host: &str, e: Event) {
        if e.host() != host {
            return;
        }
        // Asked before the mesh lock is taken: the two locks are never held together.
        let spanning: BTreeSet<String> = namespaces_of(&e)
            .into_iter()
            .filter(|ns| self.spans(ns, host))
            .collect();
        let mut out = Vec::new();
        {
            let mut m = lock(&self.inner.mesh);
            let Some(f) = m.followed.get_mut(host) else {
                return;
            };
            match e {
                Event::Snapshot { vms, .. } => {
                    let fresh: BTreeMap<Key, Known> = vms
                        .into_iter()
                        .filter(|v| v.host == host)
                        .map(|vm| {
                            let shown = spanning.contains(&vm.namespace);
                            (key(&vm), Known { vm, shown })
                        })
                        .collect();
                    for (k, known) in &f.vms {
                        if known.shown && !fresh.contains_key(k) {
                            out.push(removed(&known.vm));
                        }
                    }
                    out.extend(
                        fresh
                            .values()
                            .filter(|k| k.shown)
                            .map(|k| Event::Vm { vm: k.vm.clone() }),
                    );
                    f.vms = fresh;
                }
                Event::Vm { vm } => {
                    let k = key(&vm);
                    // Once shown, a VM's changes keep coming until it is removed.
                    let shown = spanning.contains(&vm.namespace)
                        || f.vms.get(&k).is_some_and(|known| known.shown);
                    if shown {
                        out.push(Event::Vm { vm: vm.clone() });
                    }
                    f.vms.insert(k, Known { vm, shown });
                }
                Event::VmRemoved {
                    ref namespace,
                    ref name,
                    ..
                } => {
                    let gone = f.vms.remove(&(namespace.clone(), name.clone()));
                    // Even when the namespace is gone here (`clear namespace` ends it
                    // here first): whoever was shown the VM must see it go.
                    if gone.is_some_and(|known| known.shown) {
                        out.push(e);
                    }
                }
                Event::Screenshot { ref namespace, .. } => {
                    if spanning.contains(namespace) {
                        out.push(e);
                    }
                }
                // Each host's graphs are its own.
                Event::HostStats { .. } => {}
            }
        }
        for e in out {
            self.inner.events.send(e);
        }
    }
}

/// A VM of a peer by namespace and name.
type Key = (String, String);

fn key(v: &VmSummary) -> Key {
    (v.namespace.clone(), v.name.clone())
}

/// A peer's VM as last heard, and whether it was shown here (published on the bus).
struct Known {
    vm: VmSummary,
    shown: bool,
}

/// The namespaces an event is about.
fn namespaces_of(e: &Event) -> BTreeSet<String> {
    match e {
        Event::Snapshot { vms, .. } => vms.iter().map(|v| v.namespace.clone()).collect(),
        Event::Vm { vm } => BTreeSet::from([vm.namespace.clone()]),
        Event::VmRemoved { namespace, .. } | Event::Screenshot { namespace, .. } => {
            BTreeSet::from([namespace.clone()])
        }
        Event::HostStats { .. } => BTreeSet::new(),
    }
}

/// The removal event of a VM last heard as `v`.
fn removed(v: &VmSummary) -> Event {
    Event::VmRemoved {
        host: v.host.clone(),
        namespace: v.namespace.clone(),
        id: v.id,
        name: v.name.clone(),
    }
}
