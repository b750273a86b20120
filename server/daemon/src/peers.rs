//! The real peer link: the typed HTTP client pointed at each peer, with the cluster
//! secret as its bearer token (one client per peer address, so connections are reused).
//! A server serving TLS calls its peers over https, trusting only the cluster's CA
//! (`serve --peer-ca`, by default its own `--tls-cert`); peer addresses stay `host:port`.

use std::collections::HashMap;
use std::error::Error;
use std::sync::Mutex;
use std::time::Duration;

use ferromega_api::mesh::{PeerFileInfo, PeerFileRequest, PeerGraphsQuery, PeerHello, PeerRequest};
use ferromega_api::Response;
use ferromega_client::{Client, Credentials};
use ferromega_domain::backends::{BoxFuture, ConsoleIo, EventStream};
use ferromega_domain::PeerLink;

/// How long a followed events stream may stay silent (its keep-alives included) before
/// the peer counts as gone: three keep-alive periods.
const SILENCE: Duration = Duration::from_secs(15);

/// Peers over HTTP (or HTTPS) with a shared secret.
pub struct HttpPeers {
    creds: Credentials,
    clients: Mutex<HashMap<String, Result<Client, String>>>,
}

impl HttpPeers {
    /// A link presenting `secret` to every peer over plain HTTP, or over HTTPS trusting
    /// only the PEM certificates of `ca` when given.
    pub fn new(secret: String, ca: Option<Vec<u8>>) -> Self {
        HttpPeers {
            creds: Credentials {
                token: Some(secret),
                user: None,
                ca,
            },
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, addr: &str) -> Result<Client, String> {
        let mut all = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(addr.to_string())
            .or_insert_with(|| {
                match &self.creds.ca {
                    Some(_) => {
                        Client::connect_trusting_only_ca(&format!("https://{addr}"), &self.creds)
                    }
                    None => Client::connect(addr, &self.creds),
                }
                .map_err(|e| why(&e))
            })
            .clone()
    }
}

/// An error with its causes (a refused certificate is a cause of a cause of the
/// request's error), each said once.
fn why(e: &dyn Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}

/// A client call with its error as text (the domain's peer errors are texts).
async fn texts<T>(
    call: impl std::future::Future<Output = Result<T, ferromega_client::ClientError>>,
) -> Result<T, String> {
    call.await.map_err(|e| why(&e))
}

impl PeerLink for HttpPeers {
    fn hello<'a>(
        &'a self,
        addr: &'a str,
        me: &'a PeerHello,
    ) -> BoxFuture<'a, Result<PeerHello, String>> {
        let c = self.client(addr);
        Box::pin(async move { texts(c?.peer_hello(me)).await })
    }

    fn run<'a>(
        &'a self,
        addr: &'a str,
        req: &'a PeerRequest,
    ) -> BoxFuture<'a, Result<Vec<Response>, String>> {
        let c = self.client(addr);
        Box::pin(async move { texts(c?.peer_run(req)).await })
    }

    fn file_info<'a>(
        &'a self,
        addr: &'a str,
        req: &'a PeerFileRequest,
    ) -> BoxFuture<'a, Result<Vec<PeerFileInfo>, String>> {
        let c = self.client(addr);
        Box::pin(async move { texts(c?.peer_file_info(req)).await })
    }

    fn file_part<'a>(
        &'a self,
        addr: &'a str,
        req: &'a PeerFileRequest,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>> {
        let c = self.client(addr);
        Box::pin(async move { texts(c?.peer_file_part(req)).await })
    }

    fn events<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<EventStream, String>> {
        let c = self.client(addr);
        Box::pin(async move {
            let c = c?;
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
        Box::pin(async move { texts(c?.peer_graphs(q)).await })
    }

    fn console<'a>(
        &'a self,
        addr: &'a str,
        ns: &'a str,
        vm: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn ConsoleIo>, String>> {
        let c = self.client(addr);
        Box::pin(async move {
            let c = c?;
            let io = texts(c.peer_console(ns, vm)).await?;
            Ok(Box::new(io) as Box<dyn ConsoleIo>)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Outer(std::io::Error);

    impl std::fmt::Display for Outer {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "cannot reach h2: {}", self.0)
        }
    }

    impl Error for Outer {
        fn source(&self) -> Option<&(dyn Error + 'static)> {
            Some(&self.0)
        }
    }

    #[test]
    fn an_error_says_each_of_its_causes_once() {
        let inner = std::io::Error::other("invalid peer certificate: UnknownIssuer");
        let e = Outer(std::io::Error::other(Outer(inner)));
        assert_eq!(
            why(&e),
            "cannot reach h2: cannot reach h2: invalid peer certificate: UnknownIssuer"
        );
    }

    #[test]
    fn a_link_whose_ca_holds_no_certificate_calls_no_one() {
        let pem = b"not a certificate".to_vec();
        let link = HttpPeers::new("s".repeat(16), Some(pem));
        assert!(link.client("10.0.0.1:9001").is_err());
        let plain = HttpPeers::new("s".repeat(16), None);
        assert!(plain.client("10.0.0.1:9001").is_ok());
    }
}
