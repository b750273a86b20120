//! ferromega-client: the typed HTTP client — `invoke` reaches any operation by its name
//! (the `operationId`), `command` runs a command line, `suggest` completes one.

use ferromega_api::events::Event;
use ferromega_api::mesh::{
    PeerConsoleQuery, PeerFileInfo, PeerFileRequest, PeerGraphsQuery, PeerHello, PeerRequest,
    PEER_CONSOLE_PATH, PEER_CONSOLE_PROTOCOL, PEER_EVENTS_PATH, PEER_FILE_PATH, PEER_GRAPHS_PATH,
    PEER_HELLO_PATH, PEER_RUN_PATH,
};
use ferromega_api::{Args, CommandReply, CommandRequest, ErrorBody, Response, SuggestReply};
use ferromega_command::handlers::by_name;
use ferromega_command::routes::{route_of, Verb};

/// What a call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached or answered garbage.
    #[error("cannot reach ferromega at {addr}: {source}")]
    Transport {
        /// The server address.
        addr: String,
        /// The underlying error.
        source: reqwest::Error,
    },
    /// The server refused the request; the body carries the per-host errors.
    #[error("{}", .body.errors.iter().map(|e| e.error.as_str()).collect::<Vec<_>>().join("\n"))]
    Api {
        /// HTTP status.
        status: u16,
        /// The error body.
        body: ErrorBody,
    },
    /// The credentials or the CA certificate given cannot be used.
    #[error("{0}")]
    Credentials(String),
    /// No operation has this name.
    #[error("unknown operation: {0}")]
    UnknownOperation(String),
    /// The server sent something this client cannot read.
    #[error("{0}")]
    Decode(String),
}

/// What a client presents: a bearer token, or a user and password (HTTP Basic), and a
/// CA certificate (PEM) to trust besides the system's — a self-signed server's own.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Bearer token (`ferromega auth add-token`); wins over `user`.
    pub token: Option<String>,
    /// User name and password (`ferromega auth add-user`).
    pub user: Option<(String, String)>,
    /// PEM certificates to trust.
    pub ca: Option<Vec<u8>>,
}

/// A client of one ferromega server.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client of the server at `addr` (`127.0.0.1:9001` or a full `http://…` URL).
    pub fn new(addr: &str) -> Self {
        let base = if addr.starts_with("http://") || addr.starts_with("https://") {
            addr.trim_end_matches('/').to_string()
        } else {
            format!("http://{addr}")
        };
        Client {
            base,
            http: reqwest::Client::new(),
        }
    }

    /// A client of the server at `addr` that sends `Authorization: Bearer <token>` with
    /// every request when `token` is given (servers started with `--auth`).
    pub fn with_token(addr: &str, token: Option<&str>) -> Self {
        let creds = Credentials {
            token: token.map(str::to_string),
            ..Credentials::default()
        };
        Client::connect(addr, &creds).unwrap_or_else(|_| Client::new(addr))
    }

    /// A client of the server at `addr` (`https://…` for a server started with
    /// `--tls-cert`) that presents `creds`.
    pub fn connect(addr: &str, creds: &Credentials) -> Result<Self, ClientError> {
        Client::build(addr, creds, true)
    }

    /// As [`Client::connect`], but trusting only `creds.ca` (not the system's roots):
    /// a peer of the mesh must show a certificate the cluster's CA signed.
    pub fn connect_trusting_only_ca(addr: &str, creds: &Credentials) -> Result<Self, ClientError> {
        if creds.ca.is_none() {
            return Err(ClientError::Credentials(
                "no CA certificate to trust".into(),
            ));
        }
        Client::build(addr, creds, false)
    }

    fn build(addr: &str, creds: &Credentials, system_roots: bool) -> Result<Self, ClientError> {
        let mut c = Client::new(addr);
        let mut headers = reqwest::header::HeaderMap::new();
        let auth = match (&creds.token, &creds.user) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, Some((user, password))) => {
                use base64::Engine as _;
                let pair =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                Some(format!("Basic {pair}"))
            }
            (None, None) => None,
        };
        if let Some(auth) = auth {
            let mut v = reqwest::header::HeaderValue::from_str(&auth)
                .map_err(|_| ClientError::Credentials("credentials must be printable".into()))?;
            v.set_sensitive(true);
            headers.insert(reqwest::header::AUTHORIZATION, v);
        }
        let mut builder = reqwest::Client::builder()
            .default_headers(headers)
            .tls_built_in_root_certs(system_roots);
        if let Some(pem) = &creds.ca {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| ClientError::Credentials(format!("--ca: {e}")))?;
            if certs.is_empty() {
                return Err(ClientError::Credentials(
                    "--ca: no certificate in the file".into(),
                ));
            }
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        c.http = builder.build().map_err(|e| c.transport(e))?;
        Ok(c)
    }

    fn transport(&self, source: reqwest::Error) -> ClientError {
        ClientError::Transport {
            addr: self.base.clone(),
            source,
        }
    }

    /// The error a refused request's body carries.
    async fn refusal(&self, resp: reqwest::Response) -> ClientError {
        let status = resp.status().as_u16();
        match resp.json::<ErrorBody>().await {
            Ok(body) => ClientError::Api { status, body },
            Err(e) => self.transport(e),
        }
    }

    async fn decode<T: serde::de::DeserializeOwned>(
        &self,
        resp: reqwest::Response,
    ) -> Result<T, ClientError> {
        if resp.status().is_success() {
            return resp.json().await.map_err(|e| self.transport(e));
        }
        Err(self.refusal(resp).await)
    }

    /// Runs `line` in namespace `ns` (`POST /api/v1/namespaces/{ns}/command`).
    pub async fn command(&self, ns: &str, line: &str) -> Result<CommandReply, ClientError> {
        let url = format!("{}/api/v1/namespaces/{ns}/command", self.base);
        let req = CommandRequest {
            command: line.to_string(),
        };
        let resp = self
            .http
            .post(url)
            .json(&req)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    /// Completions for a partial line (`GET /api/v1/suggest`).
    pub async fn suggest(&self, line: &str) -> Result<Vec<String>, ClientError> {
        let url = format!("{}/api/v1/suggest", self.base);
        let resp = self
            .http
            .get(url)
            .query(&[("line", line)])
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        Ok(self.decode::<SuggestReply>(resp).await?.suggestions)
    }

    /// Calls the operation `name` in namespace `ns` with `args`, at the route the
    /// handler table gives it.
    pub async fn invoke(
        &self,
        name: &str,
        ns: &str,
        args: &Args,
    ) -> Result<Vec<Response>, ClientError> {
        let (_, spec) = by_name(name).ok_or_else(|| ClientError::UnknownOperation(name.into()))?;
        let route = route_of(spec);
        let url = format!("{}{}", self.base, route.path_in(ns));
        let req = match route.verb {
            Verb::Post => self.http.post(url),
            Verb::Delete => self.http.delete(url),
        };
        let resp = req.json(args).send().await.map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    /// Reads pipe `name` of namespace `ns`: the response streams its messages, a line
    /// each (`GET /api/v1/namespaces/{ns}/pipes/{name}`); read it with `chunk()`.
    pub async fn pipe_read(&self, ns: &str, name: &str) -> Result<reqwest::Response, ClientError> {
        self.get_streaming(&format!("/api/v1/namespaces/{ns}/pipes/{name}"))
            .await
    }

    /// `GET path` whose answer streams: the response, once its status says success.
    async fn get_streaming(&self, path: &str) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        if resp.status().is_success() {
            return Ok(resp);
        }
        Err(self.refusal(resp).await)
    }

    /// The server's OpenAPI document.
    pub async fn openapi(&self) -> Result<serde_json::Value, ClientError> {
        let url = format!("{}/openapi.json", self.base);
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        self.decode(resp).await
    }

    /// Sends a peer handshake or heartbeat (the cluster secret is the client's token).
    pub async fn peer_hello(&self, hello: &PeerHello) -> Result<PeerHello, ClientError> {
        self.post_json(PEER_HELLO_PATH, hello).await
    }

    /// Runs a forwarded command on a peer, returning its responses.
    pub async fn peer_run(&self, req: &PeerRequest) -> Result<Vec<Response>, ClientError> {
        self.post_json(PEER_RUN_PATH, req).await
    }

    /// Lists a peer's files matching a glob.
    pub async fn peer_file_info(
        &self,
        req: &PeerFileRequest,
    ) -> Result<Vec<PeerFileInfo>, ClientError> {
        self.post_json(PEER_FILE_PATH, req).await
    }

    /// Reads one part of one of a peer's files.
    pub async fn peer_file_part(&self, req: &PeerFileRequest) -> Result<Vec<u8>, ClientError> {
        let resp = self.post(PEER_FILE_PATH, req).await?;
        if !resp.status().is_success() {
            return self.decode(resp).await;
        }
        let bytes = resp.bytes().await.map_err(|e| self.transport(e))?;
        Ok(bytes.to_vec())
    }

    /// Follows a peer's own VM events ([`PEER_EVENTS_PATH`]); read them with
    /// [`PeerEvents::next`].
    pub async fn peer_events(&self) -> Result<PeerEvents, ClientError> {
        let resp = self.get_streaming(PEER_EVENTS_PATH).await?;
        Ok(PeerEvents {
            client: self.clone(),
            resp,
            buf: Vec::new(),
        })
    }

    /// A peer's graphs of one of its VMs or of itself ([`PEER_GRAPHS_PATH`]).
    pub async fn peer_graphs(&self, q: &PeerGraphsQuery) -> Result<serde_json::Value, ClientError> {
        self.post_json(PEER_GRAPHS_PATH, q).await
    }

    /// Opens the console of VM `vm` of namespace `ns` on a peer ([`PEER_CONSOLE_PATH`]):
    /// the connection, upgraded, carries the console's bytes both ways.
    pub async fn peer_console(&self, ns: &str, vm: &str) -> Result<reqwest::Upgraded, ClientError> {
        let url = format!("{}{PEER_CONSOLE_PATH}", self.base);
        let q = PeerConsoleQuery {
            namespace: ns.to_string(),
            vm: vm.to_string(),
        };
        let resp = self
            .http
            .get(url)
            .query(&q)
            .header(reqwest::header::CONNECTION, "upgrade")
            .header(reqwest::header::UPGRADE, PEER_CONSOLE_PROTOCOL)
            .send()
            .await
            .map_err(|e| self.transport(e))?;
        if resp.status() != reqwest::StatusCode::SWITCHING_PROTOCOLS {
            return Err(self.refusal(resp).await);
        }
        resp.upgrade().await.map_err(|e| self.transport(e))
    }

    async fn post_json<B: serde::Serialize, T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let resp = self.post(path, body).await?;
        self.decode(resp).await
    }

    /// `POST path` with a JSON body: the response, whatever its status.
    async fn post<B: serde::Serialize>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<reqwest::Response, ClientError> {
        let url = format!("{}{path}", self.base);
        self.http
            .post(url)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport(e))
    }
}

/// A peer's VM events as they arrive ([`Client::peer_events`]).
#[derive(Debug)]
pub struct PeerEvents {
    client: Client,
    resp: reqwest::Response,
    buf: Vec<u8>,
}

impl PeerEvents {
    /// The next line: `Some(Ok(Some(event)))`, `Some(Ok(None))` for a keep-alive (the
    /// peer is there but quiet), `None` when the peer ended the stream.
    pub async fn next(&mut self) -> Option<Result<Option<Event>, ClientError>> {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buf.drain(..=i).collect();
                let line = &line[..i];
                if line.iter().all(u8::is_ascii_whitespace) {
                    return Some(Ok(None));
                }
                return Some(
                    serde_json::from_slice(line)
                        .map(Some)
                        .map_err(|e| ClientError::Decode(format!("peer event: {e}"))),
                );
            }
            match self.resp.chunk().await {
                Ok(Some(c)) => self.buf.extend_from_slice(&c),
                Ok(None) => return None,
                Err(e) => return Some(Err(self.client.transport(e))),
            }
        }
    }
}
