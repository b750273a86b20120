//! The real peer link: the typed HTTP client pointed at each peer, with the cluster
//! secret as its bearer token (one client per peer address, so connections are reused).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use ferromega_api::mesh::{PeerFileInfo, PeerFileRequest, PeerGraphsQuery, PeerHello, PeerRequest};
use ferromega_api::Response;
use ferromega_client::Client;
use ferromega_domain::backends::{BoxFuture, ConsoleIo, EventStream};
use ferromega_domain::PeerLink;

/// How long a followed events stream may stay silent (its keep-alives included) before
/// the peer counts as gone: three keep-alive periods.
const SILENCE: Duration = Duration::from_secs(15);

/// Peers over HTTP with a shared secret.
pub struct HttpPeers {
    secret: String,
    clients: Mutex<HashMap<String, Client>>,
}

impl HttpPeers {
    /// A link presenting `secret` to every peer.
    pub fn new(secret: String) -> Self {
        HttpPeers {
            secret,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, addr: &str) -> Client {
        let mut all = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(addr.to_string())
            .or_insert_with(|| Client::with_token(addr, Some(&self.secret)))
            .clone()
    }
}

/// A client call with its error as text (the domain's peer errors are texts).
async fn texts<T>(
    call: impl std::future::Future<Output = Result<T, ferromega_client::ClientError>>,
) -> Result<T, String> {
    call.await.map_err(|e| e.to_string())
}

impl PeerLink for HttpPeers {
    fn hello<'a>(
        &'a self,
        addr: &'a str,
        me: &'a PeerHello,
    ) -> BoxFuture<'a, Result<PeerHello, String>> {
        let c = self.client(addr);
        Box::pin(async move { texts(c.peer_hello(me)).await })
    }

    fn run<'a>(
        &'a self,
        addr: &'a str,
        req: &'a PeerRequest,
    ) -> BoxFuture<'a, Result<Vec<Response>, String>> {
        let c = self.client(addr);
        Box::pin(async move { texts(c.peer_run(req)).await })
    }

    fn file_info<'a>(
        &'a self,
        addr: &'a str,
        req: &'a PeerFileRequest,
    ) -> BoxFuture<'a, Result<Vec<PeerFileInfo>, String>> {
        let c = self.client(addr);
        Box::pin(async move { texts(c.peer_file_info(req)).await })
    }

    fn file_part<'a>(
        &'a self,
        addr: &'a str,
        req: &'a PeerFileRequest,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        let c = self.client(addr);
        Box::pin(async move { texts(c.peer_file_part(req)).await })
    }

    fn events<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<EventStream, String>> {
        let c = self.client(addr);
        Box::pin(async move {
            let events = texts(c.peer_events()).await?;
            let stream = futures::stream::unfold(events, |mut events| async move {
                loop {
                    let item = match tokio::time::timeout(SILENCE, events.next()).await {
                        Err(_) => Err(format!("silent for {} s", SILENCE.as_secs())),
                        Ok(None) => return None,
                        // A keep-alive: the peer is there.
                        Ok(Some(Ok(None))) => continue,
                        Ok(Some(Ok(Some(e)))) => Ok(e),
                        Ok(Some(Err(e))) => Err(e.to_string()),
                    };
                    return Some((item, events));
                }
            });
            Ok(Box::pin(stream) as EventStream)
        })
    }

    fn graphs<'a>(
        &'a self,
        addr: &'a str,
        q: &'a PeerGraphsQuery,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>> {
        let c = self.client(addr);
        Box::pin(async move { texts(c.peer_graphs(q)).await })
    }

    fn console<'a>(
        &'a self,
        addr: &'a str,
        ns: &'a str,
        vm: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn ConsoleIo>, String>> {
        let c = self.client(addr);
        Box::pin(async move {
            let io = texts(c.peer_console(ns, vm)).await?;
            Ok(Box::new(io) as Box<dyn ConsoleIo>)
        })
    }
}
