//! Tests of the auth middleware: tokens, users over HTTP Basic and the login form, 401
//! and 403, and the principal it leaves for the handlers.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::routing::{get, post};
use tower::ServiceExt;

use super::*;

fn temp_auth() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("fm-guard-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("auth");
    (dir, path)
}

/// An app with pages and API routes of namespaces foo and bar behind `file`.
fn app(file: AuthFile) -> Router {
    let app = Router::new()
        .route("/ns/{ns}/vms", get(|| async { "the vm table" }))
        .route("/static/{*path}", get(|| async { "body {}" }))
        .route("/api/v1/namespaces/{ns}/vm/info", post(|| async { "[]" }))
        .route("/api/v1/namespaces/{ns}/vm/start", post(|| async { "[]" }))
        .route("/api/v1/namespaces/{ns}/command", post(|| async { "{}" }))
        .route("/api/v1/namespaces", get(|| async { "[]" }))
        .route(
            "/api/v1/events",
            get(
                |axum::Extension(p): axum::Extension<Arc<Principal>>| async move {
                    format!(
                        "{} {} {}",
                        p.name,
                        p.sees_namespace("foo"),
                        p.sees_namespace("bar")
                    )
                },
            ),
        );
    protect(app, file, "h", false)
}

fn basic(user: &str, pw: &str) -> String {
    use base64::Engine as _;
    let pair = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
    format!("Basic {pair}")
}

async fn send(app: &Router, method: &str, uri: &str, auth: Option<&str>) -> (StatusCode, String) {
    let mut b = axum::http::Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        b = b.header(header::AUTHORIZATION, a);
    }
    let r = app
        .clone()
        .oneshot(b.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[test]
fn credentials_come_from_header_or_cookies() {
    let mut h = HeaderMap::new();
    assert_eq!(presented(&h), None);
    h.insert(
        header::COOKIE,
        HeaderValue::from_static("a=b; ferromega_token=t1"),
    );
    assert_eq!(presented(&h), Some(Presented::Token("t1".into())));
    h.insert(
        header::COOKIE,
        HeaderValue::from_static("ferromega_token=t1; ferromega_session=s1"),
    );
    assert_eq!(presented(&h), Some(Presented::Session("s1".into())));
    h.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t2"));
    assert_eq!(presented(&h), Some(Presented::Token("t2".into())));
    h.insert(
        header::AUTHORIZATION,
        HeaderValue::from_str(&basic("alice", "p:w")).unwrap(),
    );
    assert_eq!(
        presented(&h),
        Some(Presented::Basic("alice".into(), "p:w".into()))
    );
    assert_eq!(
        query_token("a=1&token=x&b=2"),
        (Some("x".into()), "a=1&b=2".into())
    );
    assert_eq!(query_token(""), (None, String::new()));
    assert_eq!(safe_next("/ns/foo/vms"), "/ns/foo/vms");
    assert_eq!(safe_next("//evil.example/"), "/");
    assert_eq!(safe_next("https://evil.example/"), "/");
}

#[tokio::test]
async fn pages_and_api_need_a_token() {
    let h = file::hex(&hash_token("good"));
    let tokens = AuthFile::parse(Path::new("t"), &format!("token x sha256:{h}\n")).unwrap();
    let app = app(tokens);
    let css = send(&app, "GET", "/static/app.css", None).await;
    assert_eq!(css.0, StatusCode::OK, "the assets are public");
    for uri in ["/ns/minimega/vms", "/api/v1/namespaces"] {
        assert_eq!(
            send(&app, "GET", uri, None).await.0,
            StatusCode::UNAUTHORIZED
        );
        let bad = send(&app, "GET", uri, Some("Bearer bad")).await;
        assert_eq!(bad.0, StatusCode::UNAUTHORIZED, "{uri}");
        let good = send(&app, "GET", uri, Some("Bearer good")).await;
        assert_eq!(good.0, StatusCode::OK, "{uri}");
    }
    let r = app
        .clone()
        .oneshot(
            axum::http::Request::builder()
                .uri("/ns/minimega/vms?token=good")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/ns/minimega/vms");
    let c = r.headers()[header::SET_COOKIE].to_str().unwrap();
    assert!(c.starts_with("ferromega_token=good;"), "{c}");
    let r = send(&app, "GET", "/ns/minimega/vms?token=bad", None).await;
    assert_eq!(r.0, StatusCode::UNAUTHORIZED);
    // A token without rules sees every namespace.
    let r = send(&app, "GET", "/api/v1/events", Some("Bearer good")).await;
    assert_eq!(r, (StatusCode::OK, "x true true".to_string()));
}

#[tokio::test]
async fn a_user_limited_to_one_namespace_gets_401_for_a_bad_password_and_403_elsewhere() {
    let (dir, path) = temp_auth();
    add_user(&path, "alice", "wonder").unwrap();
    allow(&path, "alice", "/api/v1/namespaces/foo/", Access::Rw).unwrap();
    allow(&path, "alice", "/ns/foo/", Access::Ro).unwrap();
    add_user(&path, "ro", "only").unwrap();
    allow(&path, "ro", "/api/v1/namespaces/foo/", Access::Ro).unwrap();
    let app = app(AuthFile::load(&path).unwrap());
    let alice = basic("alice", "wonder");
    let (status, body) = send(&app, "GET", "/ns/foo/vms", Some(&basic("alice", "nope"))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("bad user name or password"), "{body}");
    let (status, body) = send(
        &app,
        "POST",
        "/api/v1/namespaces/foo/vm/info",
        Some(&basic("mallory", "x")),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body.contains("bad user name or password"), "{body}");
    let a = Some(alice.as_str());
    assert_eq!(send(&app, "GET", "/ns/foo/vms", a).await.0, StatusCode::OK);
    let ok = send(&app, "POST", "/api/v1/namespaces/foo/vm/start", a).await;
    assert_eq!(ok.0, StatusCode::OK);
    let (status, body) = send(&app, "GET", "/ns/bar/vms", a).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("alice may not GET /ns/bar/vms"), "{body}");
    let (status, body) = send(&app, "POST", "/api/v1/namespaces/bar/vm/info", a).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(body.contains("\"errors\""), "the API's error body: {body}");
    // The command endpoint lets alice in; its gate checks each operation of a line.
    let cmd = send(&app, "POST", "/api/v1/namespaces/bar/command", a).await;
    assert_eq!(cmd.0, StatusCode::OK);
    let ev = send(&app, "GET", "/api/v1/events", a).await;
    assert_eq!(ev, (StatusCode::OK, "alice true false".to_string()));
    // Read-only: reads pass, actions do not.
    let r = Some(basic("ro", "only"));
    let r = r.as_deref();
    let info = send(&app, "POST", "/api/v1/namespaces/foo/vm/info", r).await;
    assert_eq!(info.0, StatusCode::OK);
    let start = send(&app, "POST", "/api/v1/namespaces/foo/vm/start", r).await;
    assert_eq!(start.0, StatusCode::FORBIDDEN);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn the_login_form_opens_a_session() {
    let (dir, path) = temp_auth();
    add_user(&path, "alice", "wonder").unwrap();
    allow(&path, "alice", "/ns/foo/", Access::Ro).unwrap();
    let app = app(AuthFile::load(&path).unwrap());
    let login = |body: &'static str| {
        app.clone().oneshot(
            axum::http::Request::builder()
                .method("POST")
                .uri("/login")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Body::from(body))
                .unwrap(),
        )
    };
    let r = login("user=alice&password=bad&next=%2Fns%2Ffoo%2Fvms")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let body = axum::body::to_bytes(r.into_body(), 1 << 20).await.unwrap();
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("id=\"login-error\"") && body.contains("bad user name"),
        "{body}"
    );
    let r = login("user=alice&password=wonder&next=%2Fns%2Ffoo%2Fvms")
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()[header::LOCATION], "/ns/foo/vms");
    let c = r.headers()[header::SET_COOKIE].to_str().unwrap();
    let session = c
        .strip_prefix("ferromega_session=")
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_string();
    let page = |uri: &'static str| {
        app.clone().oneshot(
            axum::http::Request::builder()
                .uri(uri)
                .header(header::COOKIE, format!("{SESSION_COOKIE}={session}"))
                .body(Body::empty())
                .unwrap(),
        )
    };
    assert_eq!(page("/ns/foo/vms").await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        page("/ns/bar/vms").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        page("/logout").await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        page("/ns/foo/vms").await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
