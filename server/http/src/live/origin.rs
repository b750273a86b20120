//! The Origin check of WebSockets: browsers send cookies and credentials with a
//! cross-site WebSocket handshake, and the same-origin policy does not apply to it, so
//! a page of another site could otherwise open our consoles and event streams.

use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;

/// Whether a WebSocket handshake with these headers may proceed: no `Origin` (not a
/// browser: curl, scripts, the CLI), or an `Origin` whose host and port are the `Host`
/// the request was sent to.
pub fn origin_allowed(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let (Ok(origin), Some(Ok(host))) = (origin.to_str(), headers.get(HOST).map(|h| h.to_str()))
    else {
        return false;
    };
    let Some((scheme, authority)) = origin.split_once("://") else {
        // `null` (sandboxed frames, file: pages) and anything malformed.
        return false;
    };
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "http" => "80",
        "https" => "443",
        _ => return false,
    };
    normalise(authority, default_port) == normalise(host, default_port)
}

/// `host[:port]` lower-cased, with the scheme's default port made explicit.
fn normalise(authority: &str, default_port: &str) -> String {
    let a = authority.trim_end_matches('/').to_ascii_lowercase();
    let has_port = match a.rfind(':') {
        // `[::1]` has colons but no port; `[::1]:80` has one after the bracket.
        Some(i) => !a[i..].contains(']'),
        None => false,
    };
    if has_port {
        a
    } else {
        format!("{a}:{default_port}")
    }
}

#[cfg(test)]
mod tests {

    use super::*;

    fn headers(origin: Option<&str>, host: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let Some(o) = origin {
            h.insert(ORIGIN, o.parse().unwrap());
        }
        if let Some(x) = host {
            h.insert(HOST, x.parse().unwrap());
        }
        h
    }

    #[test]
    fn a_request_without_origin_is_not_a_browser_and_passes() {
        assert!(origin_allowed(&headers(None, Some("127.0.0.1:9001"))));
        assert!(origin_allowed(&headers(None, None)));
    }

    #[test]
    fn the_same_origin_passes() {
        assert!(origin_allowed(&headers(
            Some("http://127.0.0.1:9001"),
            Some("127.0.0.1:9001")
        )));
        assert!(origin_allowed(&headers(
            Some("http://LocalHost:9001"),
            Some("localhost:9001")
        )));
        assert!(origin_allowed(&headers(
            Some("https://range.example"),
            Some("range.example:443")
        )));
        assert!(origin_allowed(&headers(
            Some("http://[::1]:9001"),
            Some("[::1]:9001")
        )));
        assert!(origin_allowed(&headers(
            Some("http://[::1]"),
            Some("[::1]")
        )));
    }

    #[test]
    fn another_origin_is_refused() {
        assert!(!origin_allowed(&headers(
            Some("http://evil.example"),
            Some("127.0.0.1:9001")
        )));
        assert!(!origin_allowed(&headers(
            Some("http://127.0.0.1:9002"),
            Some("127.0.0.1:9001")
        )));
        assert!(!origin_allowed(&headers(
            Some("https://127.0.0.1:9001.evil.example"),
            Some("127.0.0.1:9001")
        )));
    }

    #[test]
    fn a_null_or_odd_origin_is_refused() {
        assert!(!origin_allowed(&headers(Some("null"), Some("localhost"))));
        assert!(!origin_allowed(&headers(
            Some("file://localhost"),
            Some("localhost")
        )));
        assert!(!origin_allowed(&headers(Some("http://localhost"), None)));
    }
}
