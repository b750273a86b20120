//! Graphs of other hosts: the dashboard of any host draws the `vm top` history of a VM
//! that runs on a peer, or a peer's own figures, asking that host over the peer link.

use ferromega_api::mesh::PeerGraphsQuery;

use crate::graphs::Range;
use crate::{lock, ControlPlane, DomainError, DomainResult};

impl ControlPlane {
    /// The graphs of VM `vm` of namespace `ns` (or, without a VM, of a host's own
    /// figures) wherever they are: on `host` when given, else here, else on the peer
    /// the VM runs on (as its events told); the graphs endpoint's JSON.
    pub async fn graphs_anywhere(
        &self,
        ns: &str,
        vm: Option<&str>,
        host: Option<&str>,
        range: Range,
    ) -> DomainResult<serde_json::Value> {
        let elsewhere = match (host, vm) {
            (Some(h), _) if h != self.host() => Some(h.to_string()),
            (None, Some(name)) if !self.has_vm(ns, name) => {
                self.remote_vm(ns, name).map(|v| v.host)
            }
            _ => None,
        };
        let Some(peer) = elsewhere else {
            let g = self.graphs(ns, vm, range)?;
            return serde_json::to_value(g).map_err(|e| DomainError::Host(e.to_string()));
        };
        let (link, addr) = self.direct_addr(&peer);
        let (Some(link), Some(addr)) = (link, addr) else {
            return Err(DomainError::NotFound(format!("unknown host: `{peer}`")));
        };
        let q = PeerGraphsQuery {
            namespace: ns.to_string(),
            vm: vm.map(str::to_string),
            range: range.as_str().to_string(),
        };
        link.graphs(&addr, &q)
            .await
            .map_err(|e| DomainError::Host(format!("graphs from {peer}: {e}")))
    }

    /// Whether namespace `ns` has VM `name` on this host.
    pub(crate) fn has_vm(&self, ns: &str, name: &str) -> bool {
        self.namespace(ns)
            .is_some_and(|n| lock(&n).vms.values().any(|v| v.name == name))
    }
}
