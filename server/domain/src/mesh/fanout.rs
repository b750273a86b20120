//! Fan-out (minimega's broadcast and vm-target wrappers), `mesh send`, `ns run` across
//! hosts, and the receiving side of forwarded commands (run here, or passed on to the
//! next hop when they are for a host beyond this one).
//!
//! A command for the namespace's hosts runs here (when this host is a member) and on
//! every other member at the same time; the responses, each with its `host`, are
//! concatenated. Forwarded commands carry a source (the namespace, or `meshage` for
//! `mesh send`) so the receiver runs only its local behaviour and never fans out again.

use ferromega_api::mesh::PeerRequest;
use ferromega_api::{Args, Response};
use ferromega_command::handlers::HANDLERS;
use ferromega_command::render::Flags;
use ferromega_command::{Command, Scope};

use crate::backends::BoxFuture;
use crate::engine::{compile, RawBatch, Session};
use crate::namespace::DEFAULT_NAMESPACE;
use crate::{ControlPlane, DomainError, DomainResult};

/// The source of commands sent by `mesh send`.
pub const MESHAGE: &str = "meshage";

/// Operations that must not run when they arrive over the mesh (minimega §6.5).
const NOT_FROM_MESH: &[&str] = &["read", "mesh_send", "ns_run", "vm_launch"];

/// The error text minimega gives a dropped `vm not found` response.
const VM_NOT_FOUND: &str = "vm not found: ";

/// `cannot run `X` via meshage` when `name` arrived over the mesh and may not run.
pub(crate) fn refused_from_mesh(session: &Session, name: &str) -> Option<String> {
    (session.source.is_some() && NOT_FROM_MESH.contains(&name))
        .then(|| format!("cannot run `{}` via meshage", name.replace('_', " ")))
}

/// Keeps what a vm-target command's hosts said, minus `vm not found` from hosts without
/// the VM; when only those remain, one of them stands for all.
fn drop_vm_not_found(resps: Vec<Response>) -> DomainResult<Vec<Response>> {
    let (missing, kept): (Vec<Response>, Vec<Response>) = resps
        .into_iter()
        .partition(|r| r.error.starts_with(VM_NOT_FOUND));
    match (kept.is_empty(), missing.into_iter().next()) {
        (true, Some(m)) => Err(DomainError::NotFound(m.error)),
        _ => Ok(kept),
    }
}

impl ControlPlane {
    /// Runs the operation `name` with minimega's wrapper for its scope: broadcast and
    /// vm-target operations run on every host of the namespace, concurrently.
    pub(crate) fn dispatch_scoped<'a>(
        &'a self,
        session: &'a mut Session,
        name: &'a str,
        args: &'a Args,
    ) -> BoxFuture<'a, DomainResult<Vec<Response>>> {
        Box::pin(self.dispatch_scoped_inner(session, name, args))
    }

    async fn dispatch_scoped_inner(
        &self,
        session: &mut Session,
        name: &str,
        args: &Args,
    ) -> DomainResult<Vec<Response>> {
        if let Some(e) = refused_from_mesh(session, name) {
            return Err(DomainError::invalid(e));
        }
        let scope = HANDLERS
            .iter()
            .find(|h| h.name == name)
            .map(|h| h.scope)
            .unwrap_or(Scope::Local);
        let ns = session.namespace.clone();
        let hosts: Vec<String> = self.with_ns(&ns, |n| n.hosts.iter().cloned().collect());
        let me = self.host().to_string();
        let fan = session.source.is_none()
            && matches!(scope, Scope::Broadcast | Scope::VmTarget)
            && hosts.iter().any(|h| *h != me);
        if !fan {
            return self.dispatch(session, name, args).await;
        }
        let req = PeerRequest {
            op: Some(name.to_string()),
            args: args.clone(),
            ..self.fan_request(&ns)
        };
        let mut local = Session {
            source: Some(ns.clone()),
            ..session.clone()
        };
        let local_part = async {
            match self.dispatch(&mut local, name, args).await {
                Ok(r) => r,
                Err(e) => vec![Response::error(&me, e.to_string())],
            }
        };
        let (mut out, rest) = self.on_hosts(&hosts, &req, local_part).await;
        out.extend(rest);
        if scope == Scope::VmTarget {
            return drop_vm_not_found(out);
        }
        Ok(out)
    }

    /// A request for the namespace's other hosts, marked as fan-out of `ns`.
    fn fan_request(&self, ns: &str) -> PeerRequest {
        PeerRequest {
            from: self.host().to_string(),
            namespace: ns.to_string(),
            source: ns.to_string(),
            ..PeerRequest::default()
        }
    }

    /// Runs `local` (only when this host is one of `hosts`) and `req` on every other
    /// host, all at the same time; returns the local result and the peers' responses.
    async fn on_hosts<T: Default>(
        &self,
        hosts: &[String],
        req: &PeerRequest,
        local: impl std::future::Future<Output = T>,
    ) -> (T, Vec<Response>) {
        let me = self.host();
        let here = hosts.iter().any(|h| h == me);
        let local = async {
            if here {
                local.await
            } else {
                T::default()
            }
        };
        let remote = hosts
            .iter()
            .filter(|h| *h != me)
            .map(|h| self.call_peer(h, req));
        let (out, rest) = futures::future::join(local, futures::future::join_all(remote)).await;
        (out, rest.into_iter().flatten().collect())
    }

    /// `mesh send <hosts|all> (command)`: the command runs on each listed peer in its
    /// default namespace; one response per peer, `timed out` for silent ones.
    pub(crate) async fn mesh_send(
        &self,
        session: &Session,
        cmd: &Command,
        flags: Flags,
    ) -> Vec<RawBatch> {
        let me = self.host().to_string();
        if let Some(e) = refused_from_mesh(session, "mesh_send") {
            return vec![(vec![Response::error(&me, e)], flags)];
        }
        let spec = cmd.args.string("clients").unwrap_or_default();
        let hosts = match self.parse_hosts(spec) {
            Ok(h) => h,
            Err(e) => return vec![(vec![Response::error(&me, e.to_string())], flags)],
        };
        let Some(line) = cmd.args.subcommand.clone() else {
            return vec![(vec![Response::error(&me, "missing command")], flags)];
        };
        if hosts.contains(&me) {
            let e = "cannot mesh send yourself";
            return vec![(vec![Response::error(&me, e)], flags)];
        }
        vec![(self.send_line(&hosts, &line).await, flags)]
    }

    /// Runs `line` on each of the peers `hosts` as `mesh send` does (their minimega
    /// namespace, source `meshage`), all at the same time.
    async fn send_line(&self, hosts: &[String], line: &str) -> Vec<Response> {
        let req = PeerRequest {
            from: self.host().to_string(),
            namespace: DEFAULT_NAMESPACE.to_string(),
            source: MESHAGE.to_string(),
            line: Some(line.to_string()),
            ..PeerRequest::default()
        };
        let calls = hosts.iter().map(|h| self.call_peer(h, &req));
        futures::future::join_all(calls)
            .await
            .into_iter()
            .flatten()
            .collect()
    }

    /// `ns run (command)` across the namespace's hosts (refusing what minimega refuses).
    pub(crate) async fn ns_run_hosts(
        &self,
        session: &mut Session,
        sub: Command,
        flags: Flags,
    ) -> Vec<RawBatch> {
        let ns = session.namespace.clone();
        let hosts: Vec<String> = self.with_ns(&ns, |n| n.hosts.iter().cloned().collect());
        let req = PeerRequest {
            line: Some(sub.original.clone()),
            ..self.fan_request(&ns)
        };
        let mut local = Session {
            source: Some(ns.clone()),
            ..session.clone()
        };
        let local_part = self.execute(&mut local, sub, flags);
        let (mut batches, resps) = self.on_hosts(&hosts, &req, local_part).await;
        if !resps.is_empty() {
            batches.push((resps, flags));
        }
        batches
    }

    /// Runs a command forwarded by a peer: an operation (local behaviour only), a line,
    /// or a scheduled launch. Every failure is a response naming this host.
    pub async fn peer_run(&self, req: PeerRequest) -> Vec<Response> {
        let me = self.host().to_string();
        if let Some(to) = req.to.clone().filter(|to| *to != me) {
            // For a host beyond this one: on to the next hop.
            let fwd = PeerRequest {
                hops: req.hops + 1,
                ..req
            };
            return self.call_peer(&to, &fwd).await;
        }
        if crate::vm::launch::check_name(&req.namespace).is_err() {
            let e = format!("invalid namespace name `{}`", req.namespace);
            return vec![Response::error(&me, e)];
        }
        let source = if req.source.is_empty() {
            MESHAGE.to_string()
        } else {
            req.source.clone()
        };
        let mut session = Session {
            source: Some(source),
            ..Session::in_namespace(&req.namespace)
        };
        self.namespace_or_create(&req.namespace);
        if let Some(launch) = req.launch {
            return vec![self.peer_launch_response(&req.namespace, launch).await];
        }
        if let Some(op) = req.op {
            return match self.dispatch_scoped(&mut session, &op, &req.args).await {
                Ok(r) => r,
                Err(e) => vec![Response::error(&me, e.to_string())],
            };
        }
        let Some(line) = req.line else {
            return vec![Response::error(&me, "empty peer request")];
        };
        let cmd = match compile(&line) {
            Ok(Some(c)) => c,
            Ok(None) => return Vec::new(),
            Err(e) => return vec![Response::error(&me, e.to_string())],
        };
        let flags = self.output_flags();
        self.execute(&mut session, cmd, flags)
            .await
            .into_iter()
            .flat_map(|(r, _)| r)
            .collect()
    }

    /// `clear namespace [name]`: here, then (for a name, unless a peer sent it) on every
    /// peer, whose `unknown namespace` errors are dropped.
    pub(crate) async fn clear_namespace_everywhere(
        &self,
        session: &mut Session,
        args: &Args,
    ) -> DomainResult<Vec<Response>> {
        if let Some(n) = args.string("name").and_then(|name| self.namespace(name)) {
            if crate::lock(&n).schedules.iter().any(|s| s.end.is_none()) {
                return Err(DomainError::Conflict(
                    "scheduler still running for namespace".to_string(),
                ));
            }
        }
        let local = self.clear_namespace(session, args).await;
        let Some(name) = args.string("name") else {
            return local.map(|r| vec![r]);
        };
        if session.source.is_some() || self.mesh_peers().is_empty() {
            return local.map(|r| vec![r]);
        }
        let remote = self.clear_namespace_on_peers(name).await;
        match local {
            Ok(r) => Ok(std::iter::once(r).chain(remote).collect()),
            Err(e) if e.to_string().starts_with("unknown namespace: ") && !remote.is_empty() => {
                Ok(remote)
            }
            Err(e) => Err(e),
        }
    }

    /// After `clear namespace <name>` here: the same on every peer, their
    /// `unknown namespace` errors dropped.
    pub(crate) async fn clear_namespace_on_peers(&self, name: &str) -> Vec<Response> {
        let peers = self.mesh_hosts();
        self.send_line(&peers, &format!("clear namespace {name}"))
            .await
            .into_iter()
            .filter(|r| !r.error.contains("unknown namespace: "))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(host: &str, e: &str) -> Response {
        Response::error(host, e)
    }

    #[test]
    fn vm_not_found_from_other_hosts_is_dropped() {
        let r = drop_vm_not_found(vec![
            err("a", "vm not found: x"),
            Response::text("b", "done"),
        ])
        .unwrap();
        assert_eq!(r, vec![Response::text("b", "done")]);
    }

    #[test]
    fn vm_not_found_everywhere_is_one_error() {
        let e = drop_vm_not_found(vec![
            err("a", "vm not found: x"),
            err("b", "vm not found: x"),
        ])
        .unwrap_err();
        assert_eq!(e.to_string(), "vm not found: x");
    }

    #[test]
    fn other_errors_are_kept() {
        let r =
            drop_vm_not_found(vec![err("a", "vm not found: x"), err("b", "b: timed out")]).unwrap();
        assert_eq!(r, vec![err("b", "b: timed out")]);
    }

    #[test]
    fn launch_from_the_mesh_is_refused() {
        let s = Session {
            source: Some(MESHAGE.into()),
            ..Session::default()
        };
        assert_eq!(
            refused_from_mesh(&s, "vm_launch").as_deref(),
            Some("cannot run `vm launch` via meshage")
        );
        assert_eq!(refused_from_mesh(&Session::default(), "vm_launch"), None);
    }
}
