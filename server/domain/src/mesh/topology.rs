//! The mesh's shape as this host knows it — itself, its peers and each peer's own peers
//! (from their hellos), and the hosts beyond them as they announced their links — shown
//! as `mesh list`'s adjacency list and `mesh dot`'s graphviz.

use std::collections::{BTreeMap, BTreeSet};

use ferromega_api::{Args, Response};

use crate::{lock, ControlPlane, DomainError, DomainResult};

/// Each known host and the hosts it is linked to (links count both ways).
pub(crate) type Adjacency = BTreeMap<String, BTreeSet<String>>;

impl ControlPlane {
    /// The mesh as this host knows it: this host's peers and theirs, and the links of
    /// the hosts reached beyond them.
    pub(crate) fn adjacency(&self) -> Adjacency {
        let m = lock(&self.inner.mesh);
        let me = self.host().to_string();
        let mut nodes = Adjacency::new();
        nodes.insert(me.clone(), m.peers.keys().cloned().collect());
        for (name, p) in &m.peers {
            let mut known: BTreeSet<String> = p.peers.iter().cloned().collect();
            known.insert(me.clone());
            nodes.insert(name.clone(), known);
        }
        // Hosts beyond the peers, as they announced themselves.
        for host in m.next_hops().into_keys() {
            if let (false, Some(peers)) = (m.peers.contains_key(&host), m.heard_peers(&host)) {
                nodes.insert(host, peers.iter().cloned().collect());
            }
        }
        nodes
    }

    pub(crate) fn mesh_list(&self) -> DomainResult<Response> {
        let mut out = String::new();
        for (node, peers) in &self.adjacency() {
            out.push_str(node);
            out.push('\n');
            for p in peers {
                out.push_str(&format!(" |--{p}\n"));
            }
        }
        Ok(self.text(out.trim_end().to_string()))
    }

    /// `mesh dot <filename>`: writes the mesh as graphviz to the file, the path taken as
    /// given (as minimega does).
    pub(crate) fn mesh_dot(&self, args: &Args) -> DomainResult<Response> {
        let file = args.string("filename").unwrap_or_default();
        if file.is_empty() {
            return Err(DomainError::invalid("mesh dot needs a file name"));
        }
        let down: BTreeSet<String> = lock(&self.inner.mesh)
            .peers
            .iter()
            .filter(|(_, p)| !p.up)
            .map(|(n, _)| n.clone())
            .collect();
        let text = dot(self.host(), &self.adjacency(), &down);
        std::fs::write(file, text).map_err(|e| DomainError::Host(format!("{file}: {e}")))?;
        Ok(self.ok())
    }
}

/// A DOT identifier: quoted, with quotes and backslashes escaped.
fn id(name: &str) -> String {
    format!("\"{}\"", name.replace('\\', "\\\\").replace('"', "\\\""))
}

/// The graphviz text of `mesh` seen from `me` (red; peers that answer green, `down`
/// ones grey), each link once, with a legend giving the number of hosts (minimega's
/// layout).
pub(crate) fn dot(me: &str, mesh: &Adjacency, down: &BTreeSet<String>) -> String {
    let mut hosts: BTreeSet<&String> = mesh.keys().collect();
    hosts.extend(mesh.values().flatten());
    let mut out = format!("graph {} {{\nsize=\"8,11\";\n", id(me));
    out.push_str(&format!(
        "Legend [shape=plaintext, label=\"total={}\"];\n",
        hosts.len()
    ));
    for h in &hosts {
        let color = match h.as_str() {
            h if h == me => "red",
            h if down.contains(h) => "grey",
            _ => "green",
        };
        out.push_str(&format!("{} [style=filled, color={color}];\n", id(h)));
    }
    let mut links = BTreeSet::new();
    for (a, peers) in mesh {
        for b in peers {
            links.insert(if a < b { (a, b) } else { (b, a) });
        }
    }
    for (a, b) in links {
        out.push_str(&format!("{} -- {};\n", id(a), id(b)));
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_link_is_drawn_once_and_hosts_known_through_peers_appear() {
        let mut mesh = Adjacency::new();
        mesh.insert("h1".into(), ["h2".to_string()].into());
        mesh.insert("h2".into(), ["h1".to_string(), "h3\"".to_string()].into());
        let down = ["h2".to_string()].into();
        assert_eq!(
            dot("h1", &mesh, &down),
            "graph \"h1\" {\nsize=\"8,11\";\nLegend [shape=plaintext, label=\"total=3\"];\n\
             \"h1\" [style=filled, color=red];\n\"h2\" [style=filled, color=grey];\n\
             \"h3\\\"\" [style=filled, color=green];\n\"h1\" -- \"h2\";\n\
             \"h2\" -- \"h3\\\"\";\n}\n"
        );
    }
}
