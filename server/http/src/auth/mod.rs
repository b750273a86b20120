//! Auth for `ferromega serve --auth <file>`: the middleware that guards every API,
//! WebSocket and page request with the auth file's tokens and users, and the login form.
//!
//! A request says who it is with `Authorization: Bearer <token>`, `Authorization: Basic
//! <user:password>`, a `ferromega_session` cookie (set by the login form), or a
//! `ferromega_token` cookie (set by opening a page once with `?token=<token>`). Nobody
//! known gets 401 — a small login form for pages, the JSON error body for the API; a bad
//! password gets the same, saying so. Someone known whose rules ([`rules`]) do not reach
//! the path gets 403. The guard leaves a [`Principal`] in the request's extensions, so
//! the events WebSocket can show only the namespaces its reader may see.

pub mod file;
mod reload;
pub mod rules;
mod sessions;

use std::sync::Arc;

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Response};
use axum::{Form, Json, Router};
use ferromega_api::{ErrorBody, HostError};

pub use file::{add_token, add_user, allow, deny, hash_token, new_token, AuthError, AuthFile};
use reload::Source;
pub use rules::{Access, Rule};
use sessions::Sessions;

/// The cookie a browser carries a token in.
pub const COOKIE: &str = "ferromega_token";

/// The cookie a browser carries its login session in.
pub const SESSION_COOKIE: &str = "ferromega_session";

/// Who a request comes from, as the guard found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's or user's name.
    pub name: String,
    /// Its rules; `None` reaches everything.
    pub rules: Option<Vec<Rule>>,
}

impl Principal {
    /// Whether a `method` request to `path` is allowed.
    pub fn allows(&self, method: &str, path: &str) -> bool {
        rules::open_to_signed_in(path)
            || self
                .rules
                .as_ref()
                .is_none_or(|r| rules::allows(r, method, path))
    }

    /// The gate a command line of this principal runs behind: each operation checked as
    /// a request to its own endpoint (`None` for a principal that reaches everything).
    pub fn gate(&self) -> Option<ferromega_domain::Gate> {
        let rules = self.rules.clone()?;
        Some(ferromega_domain::Gate::new(move |name, ns, args| {
            rules::command_allowed(&rules, name, ns, args)
        }))
    }

    /// Whether the VMs of namespace `ns` may be shown.
    pub fn sees_namespace(&self, ns: &str) -> bool {
        self.rules
            .as_ref()
            .is_none_or(|r| rules::sees_namespace(r, ns))
    }
}

/// The value of cookie `name` in `headers`.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// What a request presents to say who it is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Presented {
    Token(String),
    Basic(String, String),
    Session(String),
}

/// What a request carries: the `Authorization` header, then the session cookie, then
/// the token cookie. An `Authorization` header that is neither scheme is nothing.
fn presented(headers: &HeaderMap) -> Option<Presented> {
    if let Some(v) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        if let Some(t) = v.strip_prefix("Bearer ") {
            return Some(Presented::Token(t.trim().to_string()));
        }
        if let Some(b) = v.strip_prefix("Basic ") {
            use base64::Engine as _;
            let pair = base64::engine::general_purpose::STANDARD
                .decode(b.trim())
                .ok()
                .and_then(|d| String::from_utf8(d).ok())?;
            let (user, password) = pair.split_once(':')?;
            return Some(Presented::Basic(user.to_string(), password.to_string()));
        }
    }
    if let Some(s) = cookie(headers, SESSION_COOKIE) {
        return Some(Presented::Session(s.to_string()));
    }
    cookie(headers, COOKIE).map(|t| Presented::Token(t.to_string()))
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

fn is_api(path: &str) -> bool {
    path.starts_with("/api/") || path == "/openapi.json"
}

fn error_body(status: StatusCode, host: &str, msg: &str) -> Response {
    let body = ErrorBody {
        errors: vec![HostError {
            error: msg.to_string(),
            host: host.to_string(),
        }],
    };
    (status, Json(body)).into_response()
}

/// The login form, back to `next`, with `msg` when a try failed.
fn login_page(status: StatusCode, next: &str, msg: &str) -> Response {
    let note = if msg.is_empty() {
        String::new()
    } else {
        format!(
            "<p id=\"login-error\" class=\"error\" role=\"alert\">{}</p>",
            html_escape(msg)
        )
    };
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>ferromega: login</title>\
         <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main>\
         <h1 id=\"login\">ferromega: please log in</h1>{note}\
         <form method=\"post\" action=\"/login\" class=\"login\">\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\
         <label>User <input id=\"user\" name=\"user\" autocomplete=\"username\"></label> \
         <label>Password <input id=\"password\" name=\"password\" type=\"password\" \
         autocomplete=\"current-password\"></label> \
         <label>or token <input id=\"token\" name=\"token\" type=\"password\" \
         autocomplete=\"off\"></label> \
         <button id=\"login-submit\" type=\"submit\">Log in</button></form></main></body></html>",
        html_escape(next)
    );
    (status, Html(page)).into_response()
}

/// The 401 answer: a login form for pages, the error body for the API.
fn unauthorized(host: &str, path: &str, msg: &str) -> Response {
    let mut resp = if is_api(path) {
        error_body(StatusCode::UNAUTHORIZED, host, msg)
    } else {
        login_page(StatusCode::UNAUTHORIZED, path, msg)
    };
    let challenge = if is_api(path) {
        "Basic realm=\"ferromega\", Bearer"
    } else {
        "Bearer"
    };
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static(challenge),
    );
    resp
}

/// A `SEE_OTHER` to `to` that sets (or, with an empty value, clears) `cookie`.
fn redirect_with_cookie(to: &str, name: &str, value: &str, secure: bool) -> Response {
    let mut cookie = if value.is_empty() {
        format!("{name}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
    } else {
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict")
    };
    if secure {
        cookie.push_str("; Secure");
    }
    let mut resp = StatusCode::SEE_OTHER.into_response();
    if let (Ok(loc), Ok(c)) = (HeaderValue::from_str(to), HeaderValue::from_str(&cookie)) {
        resp.headers_mut().insert(header::LOCATION, loc);
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

/// Where a login may send the browser: a path of this server, never another site.
fn safe_next(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

/// State of the middleware.
#[derive(Clone)]
struct Guard {
    source: Arc<Source>,
    sessions: Arc<Sessions>,
    host: String,
    /// Cookies get `Secure` (the server speaks TLS).
    secure: bool,
}

const BAD_PASSWORD: &str = "unauthorized: bad user name or password";
const BAD_TOKEN: &str = "unauthorized: unknown token";
const NEED_CREDENTIALS: &str =
    "unauthorized: a bearer token or a user name and password is required";

impl Guard {
    /// The name `user` signs in as with `password`: argon2 off the runtime's threads,
    /// once per distinct pair (then from the cache).
    async fn check_password(&self, file: &AuthFile, user: &str, password: &str) -> Option<String> {
        if let Some(name) = self.sessions.cached(user, password) {
            return Some(name);
        }
        // An unknown user costs the same argon2 as a known one, so the time of a refusal
        // does not tell which user names exist.
        let known = file.password_hash(user).map(str::to_string);
        let pw = password.to_string();
        let ok = tokio::task::spawn_blocking(move || match known {
            Some(phc) => file::verify_password(&phc, &pw),
            None => {
                file::verify_password(file::decoy_hash(), &pw);
                false
            }
        })
        .await
        .unwrap_or(false);
        if !ok {
            return None;
        }
        self.sessions.remember(user, password);
        Some(user.to_string())
    }

    /// Who `p` is, or why not.
    async fn identify(&self, file: &AuthFile, p: Presented) -> Result<String, &'static str> {
        match p {
            Presented::Token(t) => file.check_token(&t).map(str::to_string).ok_or(BAD_TOKEN),
            Presented::Basic(u, pw) => self.check_password(file, &u, &pw).await.ok_or(BAD_PASSWORD),
            Presented::Session(s) => self.sessions.session(&s).ok_or(NEED_CREDENTIALS),
        }
    }

    fn principal(file: &AuthFile, name: String) -> Principal {
        Principal {
            rules: file.rules_of(&name),
            name,
        }
    }

    /// `POST /login`: a user and password, or a token, for a session cookie.
    async fn login(&self, file: &AuthFile, req: Request) -> Response {
        let Ok(Form(form)) = Form::<LoginForm>::from_request(req, &()).await else {
            return login_page(StatusCode::BAD_REQUEST, "/", "the login form is incomplete");
        };
        let next = safe_next(&form.next);
        let who = if !form.token.is_empty() {
            file.check_token(&form.token).map(str::to_string)
        } else {
            self.check_password(file, &form.user, &form.password).await
        };
        let Some(name) = who else {
            let msg = if form.token.is_empty() {
                BAD_PASSWORD
            } else {
                BAD_TOKEN
            };
            return login_page(StatusCode::UNAUTHORIZED, next, msg);
        };
        match self.sessions.open(&name) {
            Some(id) => redirect_with_cookie(next, SESSION_COOKIE, &id, self.secure),
            None => login_page(
                StatusCode::SERVICE_UNAVAILABLE,
                next,
                "too many sessions open, try again later",
            ),
        }
    }
}

/// The login form's fields.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct LoginForm {
    user: String,
    password: String,
    token: String,
    next: String,
}

async fn guard(State(g): State<Guard>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    // The embedded assets are public code (as miniweb's static folders were), and the
    // login page needs its stylesheet before anyone has logged in.
    if rules::covers("/static", &path) {
        return next.run(req).await;
    }
    let (file, changed) = g.source.current();
    if changed {
        // A password may have changed: verify every pair afresh.
        g.sessions.forget_passwords();
    }
    match (req.method(), path.as_str()) {
        (&Method::POST, "/login") => return g.login(&file, req).await,
        (&Method::GET, "/login") => return login_page(StatusCode::OK, "/", ""),
        (_, "/logout") => {
            if let Some(s) = cookie(req.headers(), SESSION_COOKIE) {
                g.sessions.close(s);
            }
            return redirect_with_cookie("/login", SESSION_COOKIE, "", g.secure);
        }
        _ => {}
    }
    let (query_tok, rest) = query_token(req.uri().query().unwrap_or(""));
    let who = match (presented(req.headers()), query_tok) {
        (Some(p), _) => g.identify(&file, p).await,
        (None, Some(t)) => {
            let Some(name) = file.check_token(&t) else {
                return unauthorized(&g.host, &path, BAD_TOKEN);
            };
            let is_ws = req.headers().contains_key(header::UPGRADE);
            if !is_api(&path) && !is_ws {
                // A page: set the cookie and come back without the token in the URL.
                let to = if rest.is_empty() {
                    path
                } else {
                    format!("{path}?{rest}")
                };
                return redirect_with_cookie(&to, COOKIE, &t, g.secure);
            }
            Ok(name.to_string())
        }
        (None, None) => Err(NEED_CREDENTIALS),
    };
    let principal = match who {
        Ok(name) => Guard::principal(&file, name),
        Err(msg) => return unauthorized(&g.host, &path, msg),
    };
    if !principal.allows(req.method().as_str(), &path) {
        let msg = format!(
            "forbidden: {} may not {} {path}",
            principal.name,
            req.method()
        );
        return if is_api(&path) {
            error_body(StatusCode::FORBIDDEN, &g.host, &msg)
        } else {
            (
                StatusCode::FORBIDDEN,
                Html(format!(
                    "<!doctype html><html><head><meta charset=\"utf-8\">\
                     <title>ferromega: forbidden</title>\
                     <link rel=\"stylesheet\" href=\"/static/app.css\"></head><body><main>\
                     <h1 id=\"forbidden\">{}</h1><p><a href=\"/logout\">Log out</a> to \
                     log in as someone else.</p></main></body></html>",
                    html_escape(&msg)
                )),
            )
                .into_response()
        };
    }
    req.extensions_mut().insert(Arc::new(principal));
    next.run(req).await
}

/// `app` with every request checked against `file`; `secure` marks cookies `Secure`.
pub fn protect(app: Router, file: AuthFile, host: &str, secure: bool) -> Router {
    guarded(app, Source::fixed(file), host, secure)
}

/// `app` with every request checked against the auth file at `path`, re-read when it
/// changes; `secure` marks cookies `Secure`.
pub fn protect_file(
    app: Router,
    path: &std::path::Path,
    host: &str,
    secure: bool,
) -> Result<Router, AuthError> {
    Ok(guarded(app, Source::watched(path)?, host, secure))
}

fn guarded(app: Router, source: Source, host: &str, secure: bool) -> Router {
    let g = Guard {
        source: Arc::new(source),
        sessions: Arc::new(Sessions::default()),
        host: host.to_string(),
        secure,
    };
    app.layer(axum::middleware::from_fn_with_state(g, guard))
}

#[cfg(test)]
mod tests;
