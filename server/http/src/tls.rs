//! TLS for the HTTP listener (`serve --tls-cert F --tls-key F`): the rustls server config
//! from PEM files, and a listener that hands axum only connections whose handshake
//! succeeded, so HTTPS and WSS share one port and a plain-HTTP client is dropped.
//!
//! Handshakes run in their own tasks with a deadline: a client that connects and says
//! nothing cannot hold up the connections behind it.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// How long a client has to finish its TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many finished handshakes may wait for axum to take them.
const BACKLOG: usize = 128;

/// What can be wrong with a certificate or key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file cannot be read or holds nothing usable.
    #[error("{path}: {msg}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        msg: String,
    },
    /// rustls refused the pair (a key that does not match the certificate, …).
    #[error("certificate and key: {0}")]
    Config(#[from] rustls::Error),
}

fn pem_error(path: &Path, msg: impl ToString) -> TlsError {
    TlsError::Pem {
        path: path.to_path_buf(),
        msg: msg.to_string(),
    }
}

/// The ring crypto provider: the one rustls backend this workspace builds.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates of a PEM file (a chain: leaf first).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(path, e))?;
    if certs.is_empty() {
        return Err(pem_error(path, "no certificate in the file"));
    }
    Ok(certs)
}

/// A server config for HTTP/1.1 (WebSockets upgrade over it) from PEM `cert` and `key`.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, TlsError> {
    let certs = load_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_error(key, e))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A TCP listener whose connections come out TLS-wrapped (see the module doc).
pub struct TlsListener {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    accepting: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Serves TLS with `config` on the connections of `tcp`.
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, rx) = mpsc::channel(BACKLOG);
        let acceptor = TlsAcceptor::from(config);
        let accepting = tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        // Out of descriptors and the like: wait rather than spin.
                        tracing::warn!("accept: {e}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!("tls handshake with {peer}: {e}"),
                        Err(_) => tracing::debug!("tls handshake with {peer} timed out"),
                    }
                });
            }
        });
        Ok(TlsListener {
            rx,
            local,
            accepting,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(c) => c,
            // The accept task never ends on its own; if it did, accept nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn self_signed(dir: &Path) -> (PathBuf, PathBuf) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        (cert, key)
    }

    #[test]
    fn bad_pem_files_are_refused_with_their_path() {
        let dir = tempdir();
        let (cert, key) = self_signed(&dir);
        let junk = dir.join("junk.pem");
        std::fs::write(&junk, "not a pem\n").unwrap();
        let e = server_config(&junk, &key).unwrap_err().to_string();
        assert!(
            e.contains("junk.pem") && e.contains("no certificate"),
            "{e}"
        );
        assert!(server_config(&cert, &junk).is_err());
        assert!(server_config(&dir.join("missing"), &key).is_err());
        // A key of another pair does not match the certificate.
        let other = dir.join("other");
        std::fs::create_dir_all(&other).unwrap();
        let (_, other_key) = self_signed(&other);
        assert!(server_config(&cert, &other_key).is_err());
        assert!(server_config(&cert, &key).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    fn tempdir() -> PathBuf {
        let d = std::env::temp_dir().join(format!("fm-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn plain_http_to_the_tls_port_gets_no_answer_and_a_silent_client_does_not_block() {
        use axum::serve::Listener as _;
        let dir = tempdir();
        let (cert, key) = self_signed(&dir);
        let config = server_config(&cert, &key).unwrap();
        let tcp = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut listener = TlsListener::new(tcp, config).unwrap();
        let addr = listener.local_addr().unwrap();
        // A silent client holds a connection open without a handshake.
        let _silent = TcpStream::connect(addr).await.unwrap();
        let mut plain = TcpStream::connect(addr).await.unwrap();
        plain
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = Vec::new();
        let _ = plain.read_to_end(&mut buf).await;
        assert!(
            !buf.starts_with(b"HTTP/"),
            "plain HTTP got an HTTP answer: {:?}",
            String::from_utf8_lossy(&buf)
        );
        // A TLS client still gets through.
        let mut roots = rustls::RootCertStore::empty();
        for c in load_certs(&cert).unwrap() {
            roots.add(c).unwrap();
        }
        let client = rustls::ClientConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
        let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
        let dial = async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            connector.connect(name, tcp).await.unwrap()
        };
        let (mut client, (mut server, _)) = tokio::join!(dial, listener.accept());
        client.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        server.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
