//! Routes beyond the peers (minimega's partial mesh, §6.5): every host announces its own
//! links in each hello, with a version that grows when they change, and passes on the
//! latest announcement it heard from every other host; a link counts when both of its
//! ends announce it, and a breadth-first search from this host gives each reachable
//! host's next hop. A request for a host that is no peer goes to that next hop, which
//! forwards it the same way ([`PeerRequest::to`](ferromega_api::mesh::PeerRequest)).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use ferromega_api::mesh::HostLinks;

use super::MeshState;

/// How many times a request may be forwarded before it is dropped (a loop, or a mesh
/// wider than any real one).
pub const MAX_HOPS: u32 = 16;

/// This host's own announcement and the latest heard from the others.
#[derive(Debug, Default)]
pub(crate) struct LinkState {
    /// This host's links as last announced.
    own: HostLinks,
    /// Other hosts' announcements by name.
    heard: BTreeMap<String, HostLinks>,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl MeshState {
    /// The peers this host reaches: those that answered last.
    fn up_peers(&self) -> Vec<String> {
        self.peers
            .iter()
            .filter(|(_, p)| p.up)
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// What this host announces: its own links (versioned anew when they changed; a
    /// clock in milliseconds, so a restarted host's announcement still wins) and every
    /// announcement it heard.
    pub(crate) fn announce(&mut self, me: &str) -> Vec<HostLinks> {
        let peers = self.up_peers();
        let own = &mut self.links.own;
        if own.version == 0 || own.peers != peers || own.addr != self.addr {
            *own = HostLinks {
                host: me.to_string(),
                addr: self.addr.clone(),
                version: now_ms().max(own.version + 1),
                peers,
            };
        }
        std::iter::once(own.clone())
            .chain(self.links.heard.values().cloned())
            .collect()
    }

    /// Keeps the announcements newer than those known (this host's own excepted), and
    /// always the one of `from`, the peer that sent them: it knows its own links best
    /// (even when its clock went back across a restart).
    pub(crate) fn learn(&mut self, me: &str, from: &str, links: &[HostLinks]) {
        for l in links.iter().filter(|l| l.host != me) {
            let newer = l.host == from
                || self
                    .links
                    .heard
                    .get(&l.host)
                    .is_none_or(|old| l.version > old.version);
            if newer {
                self.links.heard.insert(l.host.clone(), l.clone());
            }
        }
    }

    /// The hosts reached from this one and, for each, the peer to send to first.
    pub(crate) fn next_hops(&self) -> BTreeMap<String, String> {
        let up: BTreeSet<String> = self.up_peers().into_iter().collect();
        let down: BTreeSet<String> = self
            .peers
            .keys()
            .filter(|p| !up.contains(*p))
            .cloned()
            .collect();
        next_hops(&up, &down, |h| self.heard_peers(h))
    }

    /// The peers `host` announced last.
    pub(crate) fn heard_peers(&self, host: &str) -> Option<&[String]> {
        self.links.heard.get(host).map(|l| l.peers.as_slice())
    }

    /// Where `host` listens, from its announcement (a host beyond the peers).
    pub(crate) fn heard_addr(&self, host: &str) -> Option<String> {
        self.links.heard.get(host).map(|l| l.addr.clone())
    }
}

/// Breadth-first search from this host (whose links are `up`) over the announced links
/// (`heard`), a link counting when both of its ends announce it. A peer that stopped
/// answering this host (`down`) is not sought through others: it most likely died, and
/// the others' announcements still name it until they notice.
fn next_hops<'a>(
    up: &BTreeSet<String>,
    down: &BTreeSet<String>,
    heard: impl Fn(&str) -> Option<&'a [String]>,
) -> BTreeMap<String, String> {
    let mut first: BTreeMap<String, String> = BTreeMap::new();
    let mut queue: VecDeque<String> = VecDeque::new();
    for p in up {
        first.insert(p.clone(), p.clone());
        queue.push_back(p.clone());
    }
    while let Some(node) = queue.pop_front() {
        let Some(links) = heard(&node) else { continue };
        let hop = first[&node].clone();
        for next in links {
            let both = heard(next).is_some_and(|back| back.contains(&node));
            if !both || first.contains_key(next) || down.contains(next) {
                continue;
            }
            first.insert(next.clone(), hop.clone());
            queue.push_back(next.clone());
        }
    }
    first
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hops(up: &[&str], down: &[&str], heard: &[(&str, &[&str])]) -> Vec<(String, String)> {
        let set = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<BTreeSet<_>>();
        let (up, down) = (set(up), set(down));
        let heard: BTreeMap<String, Vec<String>> = heard
            .iter()
            .map(|(h, p)| (h.to_string(), p.iter().map(|s| s.to_string()).collect()))
            .collect();
        next_hops(&up, &down, |h| heard.get(h).map(Vec::as_slice))
            .into_iter()
            .collect()
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn a_chain_is_reached_through_its_first_link() {
        let got = hops(
            &["h2"],
            &[],
            &[
                ("h2", &["h1", "h3"]),
                ("h3", &["h2", "h4"]),
                ("h4", &["h3"]),
            ],
        );
        assert_eq!(got, pairs(&[("h2", "h2"), ("h3", "h2"), ("h4", "h2")]));
    }

    #[test]
    fn the_shortest_way_wins_and_one_sided_links_do_not_count() {
        // h3 is two hops away through h2 or h5; h4 still claims h6, which forgot it.
        let got = hops(
            &["h2", "h5"],
            &[],
            &[
                ("h2", &["h1", "h3"]),
                ("h5", &["h1", "h3", "h4"]),
                ("h3", &["h2", "h5"]),
                ("h4", &["h5", "h6"]),
                ("h6", &[]),
            ],
        );
        assert_eq!(
            got,
            pairs(&[("h2", "h2"), ("h3", "h2"), ("h4", "h5"), ("h5", "h5")])
        );
    }

    #[test]
    fn a_peer_that_stopped_answering_is_not_sought_through_others() {
        let heard: &[(&str, &[&str])] = &[("h2", &["h1", "h3"]), ("h3", &["h1", "h2"])];
        assert_eq!(hops(&["h2"], &["h3"], heard), pairs(&[("h2", "h2")]));
        assert_eq!(
            hops(&["h2"], &[], heard),
            pairs(&[("h2", "h2"), ("h3", "h2")])
        );
    }

    #[test]
    fn a_newer_announcement_replaces_an_older_one_and_our_own_is_ours() {
        let mut m = MeshState::default();
        let l = |host: &str, version, peers: &[&str]| HostLinks {
            host: host.into(),
            addr: format!("{host}:9001"),
            version,
            peers: peers.iter().map(|s| s.to_string()).collect(),
        };
        m.learn("h1", "h2", &[l("h3", 5, &["h2"]), l("h1", 99, &["h9"])]);
        m.learn("h1", "h2", &[l("h3", 4, &[])]);
        assert_eq!(m.links.heard["h3"].peers, ["h2"]);
        m.learn("h1", "h2", &[l("h3", 6, &[])]);
        assert!(m.links.heard["h3"].peers.is_empty());
        // h3 itself is believed even with an older version.
        m.learn("h1", "h3", &[l("h3", 1, &["h4"])]);
        assert_eq!(m.links.heard["h3"].peers, ["h4"]);
        assert!(!m.links.heard.contains_key("h1"));
        let first = m.announce("h1");
        assert!(first[0].peers.is_empty() && first[0].version > 0);
        assert_eq!(m.announce("h1")[0].version, first[0].version);
        assert_eq!(m.heard_addr("h3").as_deref(), Some("h3:9001"));
    }
}
