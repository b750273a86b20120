//! Operations that open network paths to agents: `cc listen` (agents dial in over
//! TCP), `cc tunnel` (a host port to a guest's view of host:port) and `cc rtunnel` (a
//! guest port back to the host's view of host:port).

use ferromega_api::{Args, Response};
use tokio::net::TcpListener;

use crate::cc::serve_link;
use crate::{ControlPlane, DomainError, DomainResult};

/// A port argument.
fn port(args: &Args, key: &str) -> DomainResult<u16> {
    let v = args.string(key).unwrap_or_default();
    v.parse::<u16>()
        .ok()
        .filter(|p| *p != 0)
        .ok_or_else(|| DomainError::invalid(format!("invalid port: {v}")))
}

/// Binds a listener now, so a port in use is the command's error.
fn bind(addr: (&str, u16)) -> DomainResult<TcpListener> {
    let std = std::net::TcpListener::bind(addr)
        .map_err(|e| DomainError::Host(format!("cannot listen on port {}: {e}", addr.1)))?;
    std.set_nonblocking(true)
        .map_err(|e| DomainError::Host(e.to_string()))?;
    TcpListener::from_std(std).map_err(|e| DomainError::Host(e.to_string()))
}

impl ControlPlane {
    pub(crate) fn cc_listen(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let port = port(args, "port")?;
        let listener = bind(("0.0.0.0", port))?;
        let ctx = self.cc_link_context(ns);
        let server = ctx.server.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, peer)) = listener.accept().await {
                tracing::info!("cc: agent connecting from {peer}");
                let _ = stream.set_nodelay(true);
                tokio::spawn(serve_link(ctx.clone(), None, stream));
            }
        });
        server.keep_listener(format!("listen {port}"), task.abort_handle());
        Ok(self.ok())
    }

    pub(crate) fn cc_tunnel(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let uuid = args.string("uuid").unwrap_or_default().to_lowercase();
        let src = port(args, "src")?;
        let dst = port(args, "dst")?;
        let host = args.string("host").unwrap_or_default().to_string();
        let server = self.cc_server(ns);
        if !server.is_registered(&uuid) {
            return Err(DomainError::NotFound(format!("no such client: {uuid}")));
        }
        let listener = bind(("127.0.0.1", src))?;
        let s = server.clone();
        let u = uuid.clone();
        let h = host.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                match s.tunnels(&u) {
                    Some(t) => {
                        let h = h.clone();
                        tokio::spawn(async move { t.relay(stream, h, dst).await });
                    }
                    None => tracing::warn!("cc tunnel: client {u} is not connected"),
                }
            }
        });
        server.keep_listener(
            format!("tunnel {src} -> {uuid} {host}:{dst}"),
            task.abort_handle(),
        );
        Ok(self.ok())
    }

    pub(crate) fn cc_rtunnel(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let src = port(args, "src")?;
        let dst = port(args, "dst")?;
        let host = args.string("host").unwrap_or_default();
        self.cc_server(ns).rtunnel(src, host, dst);
        Ok(self.ok())
    }
}
