//! The mesh of ferromega hosts: peers, their liveness, and the `mesh …` operations.
//!
//! Each host stays the owner of its VMs; peers reach each other's HTTP API through the
//! [`PeerLink`] backend with the shared cluster secret. A peer is added by `mesh dial`
//! (or `serve --peers`), both sides learn each other in the handshake, and a heartbeat
//! marks peers down when they stop answering and up when they answer again:
//!
//! ```text
//!   dial ──hello ok──► up ──call/heartbeat fails──► down
//!                       ▲                              │
//!                       └────────hello ok──────────────┘
//!   hangup (either side) ──► removed on both sides
//! ```

pub mod console;
pub(crate) mod events;
pub(crate) mod fanout;
pub(crate) mod files;
pub(crate) mod graphs;
pub(crate) mod launch;
pub mod routes;
pub mod schedule;
mod topology;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use ferromega_api::mesh::{PeerHello, PeerRequest};
use ferromega_api::{Args, Response};
use ferromega_command::ranges;

use crate::backends::PeerLink;
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// How often peers are greeted to check they are alive (minimega's MSA period is 10 s).
pub const HEARTBEAT: Duration = Duration::from_secs(2);

/// How long a greeting may take before the peer counts as down (a hung peer must not
/// stall the heartbeat of the others).
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends a hello, bounded by [`HELLO_TIMEOUT`].
async fn hello_within(
    link: &dyn PeerLink,
    addr: &str,
    me: &PeerHello,
) -> Result<PeerHello, String> {
    tokio::time::timeout(HELLO_TIMEOUT, link.hello(addr, me))
        .await
        .unwrap_or_else(|_| Err("timed out".to_string()))
}

/// The port peers listen on when a dialed address names none.
pub const DEFAULT_PORT: u16 = 9001;

/// One peer as this host knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// Where its HTTP API listens.
    pub addr: String,
    /// Whether it answered the last call.
    pub up: bool,
    /// Its own peers, from its last hello.
    pub peers: Vec<String>,
}

/// The mesh as this host sees it.
#[derive(Default)]
pub struct MeshState {
    /// The link to peers; `None` when the server has no cluster secret (mesh off).
    link: Option<Arc<dyn PeerLink>>,
    /// This host's advertised address.
    addr: String,
    /// Peers by name.
    peers: BTreeMap<String, Peer>,
    /// Addresses to dial until they answer (from `--peers`).
    pending: BTreeSet<String>,
    /// `mesh degree`: how many peers discovery looks for.
    degree: u64,
    /// The discovery context (`serve --context`): only hosts sharing it join.
    context: String,
    /// `mesh timeout`; `None` is unlimited.
    timeout: Option<Duration>,
    /// VXLAN tunnels made for namespaces spanning hosts: (bridge, remote IP).
    tunnels: BTreeSet<(String, String)>,
    /// `file get` transfers in flight, by file.
    transfers: BTreeMap<String, files::Transfer>,
    /// Peers whose VM events are followed, by name.
    followed: BTreeMap<String, events::Followed>,
    /// Counter telling followers apart (a late end must not drop a newer follower).
    generation: u64,
    /// The links every host announced, for routes beyond the peers.
    links: routes::LinkState,
}

fn with_port(addr: &str) -> String {
    if addr.contains(':') {
        addr.to_string()
    } else {
        format!("{addr}:{DEFAULT_PORT}")
    }
}

impl ControlPlane {
    /// Turns the mesh on: `link` reaches peers, `addr` is where this host listens,
    /// `peers` are addresses to dial (retried by the heartbeat until they answer).
    /// Starts the heartbeat task.
    pub fn mesh_attach(&self, link: Arc<dyn PeerLink>, addr: &str, peers: &[String]) {
        {
            let mut m = lock(&self.inner.mesh);
            m.link = Some(link);
            m.addr = addr.to_string();
            m.pending = peers.iter().map(|p| with_port(p)).collect();
        }
        let cp = self.clone();
        let mut quit = self.quit_signal();
        tokio::spawn(async move {
            loop {
                cp.heartbeat().await;
                tokio::select! {
                    _ = tokio::time::sleep(HEARTBEAT) => {}
                    _ = quit.wait_for(|q| *q) => break,
                }
            }
        });
    }

    fn link(&self) -> DomainResult<Arc<dyn PeerLink>> {
        lock(&self.inner.mesh).link.clone().ok_or_else(|| {
            DomainError::invalid("mesh disabled: start the server with --cluster-secret-file")
        })
    }

    fn my_hello(&self, dial: bool) -> PeerHello {
        let mut m = lock(&self.inner.mesh);
        let links = m.announce(self.host());
        PeerHello {
            host: self.host().to_string(),
            addr: m.addr.clone(),
            peers: m.peers.keys().cloned().collect(),
            dial,
            hangup: false,
            version: env!("CARGO_PKG_VERSION").to_string(),
            links,
        }
    }

    /// Greets every peer and pending address once: answers mark peers up, silence down.
    async fn heartbeat(&self) {
        let Ok(link) = self.link() else { return };
        let (peers, pending): (Vec<(String, String)>, Vec<String>) = {
            let m = lock(&self.inner.mesh);
            let peers = m
                .peers
                .iter()
                .map(|(n, p)| (n.clone(), p.addr.clone()))
                .collect();
            (peers, m.pending.iter().cloned().collect())
        };
        let me = self.my_hello(true);
        let greet = peers.iter().map(|(name, addr)| {
            let link = link.clone();
            let me = &me;
            async move { (name, hello_within(link.as_ref(), addr, me).await) }
        });
        for (name, r) in futures::future::join_all(greet).await {
            let up = {
                let mut m = lock(&self.inner.mesh);
                let Some(p) = m.peers.get_mut(name) else {
                    continue;
                };
                let links = match r {
                    Ok(h) => {
                        p.up = true;
                        p.peers = h.peers;
                        h.links
                    }
                    Err(e) => {
                        if p.up {
                            tracing::warn!("peer {name} is down: {e}");
                        }
                        p.up = false;
                        Vec::new()
                    }
                };
                let up = p.up.then(|| p.addr.clone());
                m.learn(self.host(), name, &links);
                up
            };
            match up {
                Some(addr) => self.follow_events(&link, name, &addr),
                None => self.unfollow_events(name, None),
            }
        }
        self.follow_far_hosts(&link);
        for addr in pending {
            match self.dial_addr(&link, &addr).await {
                // Answered, or it is this host (a shared peers file lists everyone).
                Ok(_) | Err(DomainError::Invalid(_)) => {
                    lock(&self.inner.mesh).pending.remove(&addr);
                }
                Err(_) => {}
            }
        }
    }

    async fn dial_addr(&self, link: &Arc<dyn PeerLink>, addr: &str) -> DomainResult<String> {
        let me = self.my_hello(true);
        let h = hello_within(link.as_ref(), addr, &me)
            .await
            .map_err(|e| DomainError::Host(format!("cannot dial {addr}: {e}")))?;
        if h.host == self.host() {
            return Err(DomainError::invalid(format!(
                "cannot dial {addr}: it is this host"
            )));
        }
        self.add_peer(&h, addr);
        Ok(h.host)
    }

    fn add_peer(&self, h: &PeerHello, addr: &str) {
        let mut m = lock(&self.inner.mesh);
        let fresh = !m.peers.contains_key(&h.host);
        m.peers.insert(
            h.host.clone(),
            Peer {
                addr: addr.to_string(),
                up: true,
                peers: h.peers.clone(),
            },
        );
        m.learn(self.host(), &h.host, &h.links);
        if fresh {
            tracing::info!("peer {} joined at {addr}", h.host);
        }
    }

    /// A peer's hello arrived (the peer endpoint): learns or drops the sender and
    /// answers with this host's hello.
    pub fn mesh_hello_received(&self, h: &PeerHello) -> Result<PeerHello, String> {
        if h.host == self.host() {
            return Err(format!("{} is this host's own name", h.host));
        }
        if h.hangup {
            lock(&self.inner.mesh).peers.remove(&h.host);
            self.unfollow_events(&h.host, None);
        } else if h.dial {
            self.add_peer(h, &h.addr);
        } else if !lock(&self.inner.mesh).peers.contains_key(&h.host) {
            return Err(format!("{} is not a peer of {}", h.host, self.host()));
        } else {
            lock(&self.inner.mesh).learn(self.host(), &h.host, &h.links);
        }
        Ok(self.my_hello(false))
    }

    /// The IP address of `host` (this host or a peer), from where its API listens.
    pub(crate) fn host_ip(&self, host: &str) -> Option<String> {
        let m = lock(&self.inner.mesh);
        let addr = if host == self.host() {
            m.addr.clone()
        } else {
            match m.peers.get(host) {
                Some(p) => p.addr.clone(),
                None => m.heard_addr(host)?,
            }
        };
        let sock: std::net::SocketAddr = addr.parse().ok()?;
        (!sock.ip().is_unspecified()).then(|| sock.ip().to_string())
    }

    /// Tunnels `bridges` to each of `remotes` once (VXLAN, one device per VLAN); a
    /// failure is logged, not fatal: the VMs still run, only the VLAN stays local.
    pub(crate) async fn ensure_tunnels(&self, bridges: &BTreeSet<String>, remotes: &[String]) {
        let Some(net) = self.inner.backends.network.clone() else {
            return;
        };
        for bridge in bridges {
            for ip in remotes {
                let key = (bridge.clone(), ip.clone());
                if !lock(&self.inner.mesh).tunnels.insert(key.clone()) {
                    continue;
                }
                let kind = crate::network::TunnelKind::Vxlan;
                match net.tunnel_add(bridge, kind, ip).await {
                    Ok(name) => tracing::info!("tunnel {name}: {bridge} to {ip}"),
                    Err(e) => {
                        tracing::warn!("cannot tunnel {bridge} to {ip}: {e}");
                        lock(&self.inner.mesh).tunnels.remove(&key);
                    }
                }
            }
        }
    }

    /// Sets the discovery figures from `serve --degree/--context` (degree is also
    /// `mesh degree`).
    pub fn mesh_discovery(&self, degree: u64, context: &str) {
        let mut m = lock(&self.inner.mesh);
        m.degree = degree;
        m.context = context.to_string();
    }

    /// The discovery context.
    pub fn mesh_context(&self) -> String {
        lock(&self.inner.mesh).context.clone()
    }

    /// Whether discovery should look for more peers (fewer peers than the degree).
    pub fn mesh_wants_peers(&self) -> bool {
        let m = lock(&self.inner.mesh);
        m.link.is_some() && (m.peers.len() as u64) < m.degree
    }

    /// Dials the host at `addr` (found by discovery); its name, or why not.
    pub async fn mesh_dial_found(&self, addr: &str) -> DomainResult<String> {
        let link = self.link()?;
        self.dial_addr(&link, addr).await
    }

    /// Names of the peers (up or down).
    pub fn mesh_peers(&self) -> Vec<String> {
        lock(&self.inner.mesh).peers.keys().cloned().collect()
    }

    /// How to reach `host` with a request forwarded `hops` times so far: the link, the
    /// peer to call (the host itself, or the first peer on a shortest way there) and
    /// its address.
    pub(crate) fn route_to(
        &self,
        host: &str,
        hops: u32,
    ) -> Result<(Arc<dyn PeerLink>, String, String), String> {
        if hops >= routes::MAX_HOPS {
            return Err(format!(
                "no route to {host}: more than {} hops",
                routes::MAX_HOPS
            ));
        }
        let m = lock(&self.inner.mesh);
        let via = m.next_hops().remove(host).or_else(|| {
            // A peer that is down and no other way there: try it anyway.
            m.peers.contains_key(host).then(|| host.to_string())
        });
        let found = via.and_then(|v| Some((m.link.clone()?, m.peers.get(&v)?.addr.clone(), v)));
        let (link, addr, via) = found.ok_or_else(|| format!("unknown host: `{host}`"))?;
        Ok((link, via, addr))
    }

    /// The link and where `host` listens — a peer's address, or the one a host beyond the
    /// peers announced — for what goes to a host directly (consoles, graphs, events).
    pub(crate) fn direct_addr(&self, host: &str) -> (Option<Arc<dyn PeerLink>>, Option<String>) {
        let m = lock(&self.inner.mesh);
        let addr = m
            .peers
            .get(host)
            .map(|p| p.addr.clone())
            .or_else(|| m.heard_addr(host));
        (m.link.clone(), addr)
    }

    /// Every other host of the mesh: the peers (up or down) and the hosts reached
    /// through them.
    pub fn mesh_hosts(&self) -> Vec<String> {
        let m = lock(&self.inner.mesh);
        let mut all: BTreeSet<String> = m.peers.keys().cloned().collect();
        all.extend(m.next_hops().into_keys());
        all.into_iter().collect()
    }

    /// Sends `req` to `host` — a peer, or a host beyond them through the next hop (the
    /// first peer on a shortest way there) — bounded by `mesh timeout`; a failure marks
    /// the peer called down and comes back as an error naming `host`.
    pub(crate) async fn call_peer(&self, host: &str, req: &PeerRequest) -> Vec<Response> {
        let timeout = lock(&self.inner.mesh).timeout;
        let (link, via, addr) = match self.route_to(host, req.hops) {
            Ok(r) => r,
            Err(e) => return vec![Response::error(host, e)],
        };
        let req = PeerRequest {
            to: (via != host).then(|| host.to_string()),
            ..req.clone()
        };
        let call = link.run(&addr, &req);
        // `None`: no answer within `mesh timeout`.
        let r = match timeout {
            Some(t) => tokio::time::timeout(t, call).await.ok(),
            None => Some(call.await),
        };
        let e = match r {
            Some(Ok(resps)) => return resps,
            Some(Err(e)) => e,
            // A far host's silence says nothing of the peer in between.
            None if via != host => return vec![Response::error(host, "timed out")],
            None => "timed out".to_string(),
        };
        if let Some(p) = lock(&self.inner.mesh).peers.get_mut(&via) {
            p.up = false;
        }
        // The response's host names the host asked for.
        let e = if via == host {
            e
        } else {
            format!("through {via}: {e}")
        };
        vec![Response::error(host, e)]
    }

    pub(crate) async fn mesh_dial(&self, args: &Args) -> DomainResult<Response> {
        let link = self.link()?;
        let addr = with_port(args.string("hostname").unwrap_or_default());
        self.dial_addr(&link, &addr).await?;
        Ok(self.ok())
    }

    pub(crate) async fn mesh_hangup(&self, args: &Args) -> DomainResult<Response> {
        let link = self.link()?;
        let host = args.string("hostname").unwrap_or_default();
        let peer = lock(&self.inner.mesh).peers.remove(host);
        let Some(peer) = peer else {
            return Err(DomainError::NotFound(format!("unknown host: `{host}`")));
        };
        self.unfollow_events(host, None);
        let mut me = self.my_hello(false);
        me.hangup = true;
        // Best effort: a dead peer has nothing to forget.
        let _ = hello_within(link.as_ref(), &peer.addr, &me).await;
        Ok(self.ok())
    }

    pub(crate) fn mesh_status(&self) -> DomainResult<Response> {
        let m = lock(&self.inner.mesh);
        let size = 1 + m.next_hops().len();
        let port = m.addr.rsplit(':').next().unwrap_or_default().to_string();
        let row = vec![
            size.to_string(),
            m.degree.to_string(),
            m.peers.len().to_string(),
            m.context.clone(),
            port,
        ];
        Ok(self.table(&["size", "degree", "peers", "context", "port"], vec![row]))
    }

    pub(crate) fn mesh_degree(&self, args: &Args) -> DomainResult<Response> {
        let mut m = lock(&self.inner.mesh);
        match args.string("degree") {
            None => Ok(self.text(m.degree.to_string())),
            Some(d) => {
                m.degree = d.parse().map_err(|_| {
                    DomainError::invalid(format!(
                        "strconv.ParseUint: parsing {d:?}: invalid syntax"
                    ))
                })?;
                Ok(self.ok())
            }
        }
    }

    pub(crate) fn mesh_timeout(&self, args: &Args) -> DomainResult<Response> {
        let mut m = lock(&self.inner.mesh);
        match args.string("timeout") {
            None => Ok(self.text(match m.timeout {
                None => "unlimited".to_string(),
                Some(t) => t.as_secs().to_string(),
            })),
            Some(t) => {
                let secs: u64 = t.parse().map_err(|_| {
                    DomainError::invalid(format!("strconv.Atoi: parsing {t:?}: invalid syntax"))
                })?;
                m.timeout = (secs > 0).then(|| Duration::from_secs(secs));
                Ok(self.ok())
            }
        }
    }

    /// Expands a host list (range syntax, `localhost`, this host, the other hosts of the
    /// mesh); `all` is every other host. Unknown names are refused with minimega's text.
    pub(crate) fn parse_hosts(&self, spec: &str) -> DomainResult<Vec<String>> {
        if spec == "all" {
            return Ok(self.mesh_hosts());
        }
        let hosts = ranges::split_list(spec).map_err(DomainError::invalid)?;
        let known: BTreeSet<String> = self.mesh_hosts().into_iter().collect();
        if hosts.iter().any(|h| h == "all") {
            return Err(DomainError::invalid("cannot mix `all` with host names"));
        }
        hosts
            .into_iter()
            .map(|h| match h.as_str() {
                "localhost" => Ok(self.host().to_string()),
                h if h == self.host() || known.contains(h) => Ok(h.to_string()),
                h => Err(DomainError::NotFound(format!("unknown host: `{h}`"))),
            })
            .collect()
    }
}
