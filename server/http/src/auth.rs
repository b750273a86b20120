//! Bearer-token auth (`ferromega serve --auth <file>`): a miniweb-style token file and the
//! middleware that guards every API, WebSocket and page request with it.
//!
//! The file holds one token a line, `token <name> sha256:<hex>`, with `#` comments;
//! only hashes are stored. Tokens are 256 random bits, so a plain SHA-256 is a sound
//! hash for them (no dictionary to slow down). A request is let in with
//! `Authorization: Bearer <token>`, or a `ferromega_token` cookie (what browsers use);
//! a page opened once with `?token=<token>` sets that cookie. Anything else gets 401 —
//! a small login form for pages, the JSON error body for the API.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::{Json, Router};
use ferromega_api::{ErrorBody, HostError};
use sha2::{Digest, Sha256};

/// The cookie a browser carries its token in.
pub const COOKIE: &str = "ferromega_token";

/// What can go wrong with a token file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file cannot be read or written.
    #[error("token file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is not `token <name> sha256:<64 hex digits>`.
    #[error("token file {path} line {line}: expected `token <name> sha256:<hex>`")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
    },
    /// A token name is already in the file, or is not a plain word.
    #[error("invalid or duplicate token name {0:?}")]
    Name(String),
}

/// One entry: a name and the SHA-256 of its token.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    name: String,
    hash: [u8; 32],
}

/// The tokens a server accepts.
#[derive(Debug, Clone, Default)]
pub struct TokenFile {
    entries: Vec<Entry>,
}

/// SHA-256 of `token`.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex(s: &str) -> Option<[u8; 32]> {
    if s.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b'@'))
}

/// Compares without stopping at the first difference.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl TokenFile {
    /// Parses the text of a token file (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<TokenFile, AuthError> {
        let mut entries = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let bad = || AuthError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
            };
            let words: Vec<&str> = line.split_whitespace().collect();
            let [kind, name, hash] = words[..] else {
                return Err(bad());
            };
            let hash = hash.strip_prefix("sha256:").and_then(unhex);
            match (kind, hash) {
                ("token", Some(hash)) if valid_name(name) => entries.push(Entry {
                    name: name.to_string(),
                    hash,
                }),
                _ => return Err(bad()),
            }
        }
        Ok(TokenFile { entries })
    }

    /// Reads and parses the token file at `path`.
    pub fn load(path: &Path) -> Result<TokenFile, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        TokenFile::parse(path, &text)
    }

    /// The name of the token `token`, if it is one of the file's.
    pub fn check(&self, token: &str) -> Option<&str> {
        let h = hash_token(token);
        let mut found = None;
        for e in &self.entries {
            if same(&e.hash, &h) {
                found = Some(e.name.as_str());
            }
        }
        found
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the file holds no token.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// A fresh token: 256 random bits as 64 hex digits.
pub fn new_token() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(a.as_bytes());
    bytes.extend_from_slice(b.as_bytes());
    hex(&bytes)
}

/// Adds a token named `name` to the file at `path` (created, mode 0600, if missing) and
/// returns the token — the only time it is ever shown; the file keeps its hash.
pub fn add_token(path: &Path, name: &str) -> Result<String, AuthError> {
    let io = |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    };
    let existing = match std::fs::read_to_string(path) {
        Ok(text) => TokenFile::parse(path, &text)?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => TokenFile::default(),
        Err(e) => return Err(io(e)),
    };
    if !valid_name(name) || existing.entries.iter().any(|e| e.name == name) {
        return Err(AuthError::Name(name.to_string()));
    }
    let token = new_token();
    let line = format!("token {name} sha256:{}\n", hex(&hash_token(&token)));
    let mut opts = std::fs::OpenOptions::new();
    opts.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).map_err(io)?;
    f.write_all(line.as_bytes()).map_err(io)?;
    Ok(token)
}

/// The token a request carries: bearer header, then cookie.
fn presented(headers: &HeaderMap) -> Option<String> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(t.trim().to_string());
        }
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

/// The `token` query parameter of `query`, and the query without it.
fn query_token(query: &str) -> (Option<String>, String) {
    let mut token = None;
    let rest: Vec<&str> = query
        .split('&')
        .filter(|kv| match kv.strip_prefix("token=") {
            Some(t) => {
                token = Some(t.to_string());
                false
            }
            None => !kv.is_empty(),
        })
        .collect();
    (token, rest.join("&"))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The 401 answer: a login form for pages, the error body for the API.
fn refused(host: &str, path: &str) -> Response {
    let mut resp = if path.starts_with("/api/") || path == "/openapi.json" {
        let body = ErrorBody {
            errors: vec![HostError {
                error: "unauthorized: a bearer token is required".into(),
                host: host.to_string(),
            }],
        };
        (StatusCode::UNAUTHORIZED, Json(body)).into_response()
    } else {
        let page = format!(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>ferromega: login</title>\
             </head><body><h1 id=\"login\">ferromega: a token is required</h1>\
             <form method=\"get\" action=\"{}\"><label>Token \
             <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\"></label> \
             <button type=\"submit\">Log in</button></form></body></html>",
            html_escape(path)
        );
        (StatusCode::UNAUTHORIZED, Html(page)).into_response()
    };
    resp.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    resp
}

/// State of the middleware.
#[derive(Clone)]
struct Guard {
    tokens: Arc<TokenFile>,
    host: String,
}

async fn guard(State(g): State<Guard>, req: Request, next: Next) -> Response {
    if let Some(t) = presented(req.headers()) {
        if g.tokens.check(&t).is_some() {
            return next.run(req).await;
        }
    }
    let path = req.uri().path().to_string();
    let (token, rest) = query_token(req.uri().query().unwrap_or(""));
    match token {
        Some(t) if g.tokens.check(&t).is_some() => {
            let is_ws = req.headers().contains_key(header::UPGRADE);
            if path.starts_with("/api/") || is_ws {
                return next.run(req).await;
            }
            // A page: set the cookie and come back without the token in the URL.
            let to = if rest.is_empty() {
                path
            } else {
                format!("{path}?{rest}")
            };
            let cookie = format!("{COOKIE}={t}; Path=/; HttpOnly; SameSite=Strict");
            let mut resp = StatusCode::SEE_OTHER.into_response();
            if let (Ok(loc), Ok(c)) = (HeaderValue::from_str(&to), HeaderValue::from_str(&cookie)) {
                resp.headers_mut().insert(header::LOCATION, loc);
                resp.headers_mut().insert(header::SET_COOKIE, c);
            }
            resp
        }
        _ => refused(&g.host, &path),
    }
}

/// `app` with every request checked against `tokens`.
pub fn protect(app: Router, tokens: TokenFile, host: &str) -> Router {
    let g = Guard {
        tokens: Arc::new(tokens),
        host: host.to_string(),
    };
    app.layer(axum::middleware::from_fn_with_state(g, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_then_check_tokens() {
        let dir = std::env::temp_dir().join(format!("fm-auth-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tokens");
        let alice = add_token(&path, "alice").unwrap();
        let bob = add_token(&path, "bob").unwrap();
        assert_eq!(alice.len(), 64);
        assert_ne!(alice, bob);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&alice), "the file must keep only hashes");
        assert!(text.contains("token alice sha256:"));
        let file = TokenFile::load(&path).unwrap();
        assert_eq!(file.len(), 2);
        assert_eq!(file.check(&alice), Some("alice"));
        assert_eq!(file.check(&bob), Some("bob"));
        assert_eq!(file.check("nope"), None);
        assert_eq!(file.check(""), None);
        assert!(matches!(add_token(&path, "alice"), Err(AuthError::Name(_))));
        assert!(matches!(add_token(&path, "a b"), Err(AuthError::Name(_))));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn parse_rejects_bad_lines_and_skips_comments() {
        let p = Path::new("t");
        let h = hex(&hash_token("secret"));
        let ok = TokenFile::parse(p, &format!("# c\n\ntoken x sha256:{h}\n")).unwrap();
        assert_eq!(ok.check("secret"), Some("x"));
        assert!(TokenFile::parse(p, "token x sha256:abc\n").is_err());
        assert!(TokenFile::parse(p, &format!("user x sha256:{h}\n")).is_err());
        assert!(TokenFile::parse(p, &format!("token x {h}\n")).is_err());
        let err = TokenFile::parse(p, &format!("token x sha256:{h} extra\n"));
        assert!(matches!(err, Err(AuthError::Syntax { line: 1, .. })));
    }

    #[test]
    fn known_sha256() {
        assert_eq!(
            hex(&hash_token("abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tokens_come_from_header_or_cookie() {
        let mut h = HeaderMap::new();
        assert_eq!(presented(&h), None);
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; ferromega_token=t1"),
        );
        assert_eq!(presented(&h).as_deref(), Some("t1"));
        h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t2"));
        assert_eq!(presented(&h).as_deref(), Some("t2"));
        assert_eq!(
            query_token("a=1&token=x&b=2"),
            (Some("x".into()), "a=1&b=2".into())
        );
        assert_eq!(query_token(""), (None, String::new()));
    }

    #[tokio::test]
    async fn pages_and_api_need_a_token() {
        use axum::body::Body;
        use axum::routing::get;
        use tower::ServiceExt;
        let h = hex(&hash_token("good"));
        let tokens = TokenFile::parse(Path::new("t"), &format!("token x sha256:{h}\n")).unwrap();
        let app = Router::new()
            .route("/ns/minimega/vms", get(|| async { "the vm table" }))
            .route("/api/v1/namespaces", get(|| async { "[]" }));
        let app = protect(app, tokens, "h");
        let send = |uri: &str, auth: Option<&str>, cookie: Option<&str>| {
            let mut b = axum::http::Request::builder().uri(uri);
            if let Some(a) = auth {
                b = b.header(header::AUTHORIZATION, format!("Bearer {a}"));
            }
            if let Some(c) = cookie {
                b = b.header(header::COOKIE, format!("{COOKIE}={c}"));
            }
            app.clone().oneshot(b.body(Body::empty()).unwrap())
        };
        for uri in ["/ns/minimega/vms", "/api/v1/namespaces"] {
            let r = send(uri, None, None).await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{uri}");
            let r = send(uri, Some("bad"), None).await.unwrap();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{uri}");
            let r = send(uri, Some("good"), None).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{uri}");
            let r = send(uri, None, Some("good")).await.unwrap();
            assert_eq!(r.status(), StatusCode::OK, "{uri}");
        }
        let r = send("/ns/minimega/vms?token=good", None, None)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/ns/minimega/vms");
        let c = r.headers()[header::SET_COOKIE].to_str().unwrap();
        assert!(c.starts_with("ferromega_token=good;"), "{c}");
        let r = send("/ns/minimega/vms?token=bad", None, None)
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
}
