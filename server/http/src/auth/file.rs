//! The auth file of `serve --auth`: tokens, users and their rules, one a line, with `#`
//! comments; only hashes are stored.
//!
//! ```text
//! token ci sha256:<64 hex digits>            # a bearer token: every path, unless it has rules
//! user alice $argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//! allow alice /api/v1/namespaces/foo/ rw     # path prefix, ro or rw
//! allow alice /ns/foo/ ro
//! ```
//!
//! Tokens are 256 random bits, so a plain SHA-256 is a sound hash for them; passwords
//! are chosen by people and get argon2id. A user without `allow` lines reaches nothing
//! but the open paths; a token without them reaches everything (as before users existed).
//! The file is edited by `ferromega auth add-token | add-user | allow | deny`, which
//! rewrite it whole (mode 0600) and keep its comments.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};

use super::rules::{Access, Rule};

/// What can go wrong with an auth file.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The file cannot be read or written.
    #[error("auth file {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A line is none of `token`, `user`, `allow`.
    #[error("auth file {path} line {line}: {msg}")]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The line number, from 1.
        line: usize,
        /// What was expected.
        msg: String,
    },
    /// A name is already taken, unknown, or not a plain word.
    #[error("invalid or duplicate name {0:?}")]
    Name(String),
    /// An `allow` names nobody in the file.
    #[error("no user or token named {0:?} in the auth file")]
    Unknown(String),
    /// A rule's prefix does not start with `/`, or its access is not `ro`/`rw`.
    #[error("invalid rule: {0}")]
    Rule(String),
    /// An empty password, or one argon2 cannot hash.
    #[error("invalid password: {0}")]
    Password(String),
}

/// Whether a principal is a token or a user.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Secret {
    /// SHA-256 of the token.
    Token([u8; 32]),
    /// argon2 PHC string of the password.
    User(String),
}

/// One token or user.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Principal {
    name: String,
    secret: Secret,
}

/// A line of the file as read: kept so edits keep comments and order.
#[derive(Debug, Clone)]
enum Line {
    Other(String),
    Principal(usize),
    Allow { name: String, rule: Rule },
}

/// The tokens and users a server accepts, and their rules.
#[derive(Debug, Clone, Default)]
pub struct AuthFile {
    principals: Vec<Principal>,
    lines: Vec<Line>,
}

/// SHA-256 of `token`.
pub fn hash_token(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
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

fn check_prefix(prefix: &str) -> Result<(), AuthError> {
    if !prefix.starts_with('/') || prefix.chars().any(char::is_whitespace) {
        return Err(AuthError::Rule(format!(
            "the path prefix {prefix:?} must start with `/` and hold no spaces"
        )));
    }
    Ok(())
}

impl AuthFile {
    /// Parses the text of an auth file (`path` names it in errors).
    pub fn parse(path: &Path, text: &str) -> Result<AuthFile, AuthError> {
        let mut file = AuthFile::default();
        for (i, raw) in text.lines().enumerate() {
            let syntax = |msg: &str| AuthError::Syntax {
                path: path.to_path_buf(),
                line: i + 1,
                msg: msg.to_string(),
            };
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                file.lines.push(Line::Other(raw.to_string()));
                continue;
            }
            let words: Vec<&str> = line.split_whitespace().collect();
            match words[..] {
                ["token", name, hash] => {
                    let hash = hash.strip_prefix("sha256:").and_then(unhex);
                    let (Some(hash), true) = (hash, valid_name(name)) else {
                        return Err(syntax("expected `token <name> sha256:<hex>`"));
                    };
                    file.push(name, Secret::Token(hash))
                        .map_err(|_| syntax("the name is already in the file"))?;
                }
                ["user", name, phc] => {
                    if !valid_name(name) || PasswordHash::new(phc).is_err() {
                        return Err(syntax("expected `user <name> <argon2 PHC string>`"));
                    }
                    file.push(name, Secret::User(phc.to_string()))
                        .map_err(|_| syntax("the name is already in the file"))?;
                }
                ["allow", name, prefix, access] => {
                    let access = Access::parse(access);
                    let (Some(access), Ok(())) = (access, check_prefix(prefix)) else {
                        return Err(syntax("expected `allow <name> /<path prefix> ro|rw`"));
                    };
                    file.lines.push(Line::Allow {
                        name: name.to_string(),
                        rule: Rule {
                            prefix: prefix.to_string(),
                            access,
                        },
                    });
                }
                _ => return Err(syntax("expected `token …`, `user …` or `allow …`")),
            }
        }
        for line in &file.lines {
            if let Line::Allow { name, .. } = line {
                if file.find(name).is_none() {
                    return Err(AuthError::Unknown(name.clone()));
                }
            }
        }
        Ok(file)
    }

    fn push(&mut self, name: &str, secret: Secret) -> Result<(), AuthError> {
        if !valid_name(name) || self.find(name).is_some() {
            return Err(AuthError::Name(name.to_string()));
        }
        self.principals.push(Principal {
            name: name.to_string(),
            secret,
        });
        self.lines.push(Line::Principal(self.principals.len() - 1));
        Ok(())
    }

    fn find(&self, name: &str) -> Option<usize> {
        self.principals.iter().position(|p| p.name == name)
    }

    /// Reads and parses the auth file at `path`.
    pub fn load(path: &Path) -> Result<AuthFile, AuthError> {
        let text = std::fs::read_to_string(path).map_err(|source| AuthError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        AuthFile::parse(path, &text)
    }

    /// The file at `path`, or an empty one when it does not exist yet.
    fn load_or_new(path: &Path) -> Result<AuthFile, AuthError> {
        match std::fs::read_to_string(path) {
            Ok(text) => AuthFile::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuthFile::default()),
            Err(source) => Err(AuthError::Io {
                path: path.to_path_buf(),
                source,
            }),
        }
    }

    /// The text of the file.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.lines {
            match line {
                Line::Other(raw) => out.push_str(raw),
                Line::Principal(i) => {
                    let p = &self.principals[*i];
                    match &p.secret {
                        Secret::Token(h) => {
                            let _ = write!(out, "token {} sha256:{}", p.name, hex(h));
                        }
                        Secret::User(phc) => {
                            let _ = write!(out, "user {} {phc}", p.name);
                        }
                    }
                }
                Line::Allow { name, rule } => {
                    let _ = write!(out, "allow {name} {} {}", rule.prefix, rule.access.as_str());
                }
            }
            out.push('\n');
        }
        out
    }

    /// Writes the file to `path` (mode 0600), through a temporary file and a rename.
    fn save(&self, path: &Path) -> Result<(), AuthError> {
        use std::io::Write as _;
        let io = |source| AuthError::Io {
            path: path.to_path_buf(),
            source,
        };
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        let mut opts = std::fs::OpenOptions::new();
        opts.create(true).write(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp).map_err(io)?;
        f.write_all(self.render().as_bytes()).map_err(io)?;
        f.sync_all().map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)
    }

    /// The name of the token `token`, if it is one of the file's.
    pub fn check_token(&self, token: &str) -> Option<&str> {
        let h = hash_token(token);
        let mut found = None;
        for p in &self.principals {
            if let Secret::Token(t) = &p.secret {
                if same(t, &h) {
                    found = Some(p.name.as_str());
                }
            }
        }
        found
    }

    /// The PHC string of user `name`, to verify a password against (slow: see
    /// [`verify_password`]).
    pub fn password_hash(&self, name: &str) -> Option<&str> {
        self.principals.iter().find_map(|p| match &p.secret {
            Secret::User(phc) if p.name == name => Some(phc.as_str()),
            _ => None,
        })
    }

    /// The rules of `name`: `None` for a token without rules (it reaches everything).
    pub fn rules_of(&self, name: &str) -> Option<Vec<Rule>> {
        let rules: Vec<Rule> = self
            .lines
            .iter()
            .filter_map(|l| match l {
                Line::Allow { name: n, rule } if n == name => Some(rule.clone()),
                _ => None,
            })
            .collect();
        let is_token = self
            .find(name)
            .is_some_and(|i| matches!(self.principals[i].secret, Secret::Token(_)));
        if rules.is_empty() && is_token {
            None
        } else {
            Some(rules)
        }
    }

    /// How many tokens and users the file holds.
    pub fn len(&self) -> usize {
        self.principals.len()
    }

    /// Whether the file holds no token and no user.
    pub fn is_empty(&self) -> bool {
        self.principals.is_empty()
    }
}

/// A hash of a random password, made once: what an unknown user's password is checked
/// against, so that refusing one takes as long as refusing a known user.
pub fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| hash_password(&new_token()).unwrap_or_default())
}

/// The argon2id PHC string of `password`, with a fresh 128-bit salt.
pub fn hash_password(password: &str) -> Result<String, AuthError> {
    let salt =
        SaltString::from_b64(&new_token()[..32]).map_err(|e| AuthError::Password(e.to_string()))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| AuthError::Password(e.to_string()))?
        .to_string())
}

/// Whether `password` matches the PHC string `phc` (argon2: deliberately slow).
pub fn verify_password(phc: &str, password: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
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
    let mut file = AuthFile::load_or_new(path)?;
    let token = new_token();
    file.push(name, Secret::Token(hash_token(&token)))?;
    file.save(path)?;
    Ok(token)
}

/// Adds user `name` with `password` to the file at `path` (created if missing), or
/// changes the password of an existing user `name`.
pub fn add_user(path: &Path, name: &str, password: &str) -> Result<(), AuthError> {
    if password.is_empty() {
        return Err(AuthError::Password("the password is empty".into()));
    }
    let mut file = AuthFile::load_or_new(path)?;
    let phc = hash_password(password)?;
    match file.find(name) {
        Some(i) if matches!(file.principals[i].secret, Secret::User(_)) => {
            file.principals[i].secret = Secret::User(phc);
        }
        Some(_) => return Err(AuthError::Name(name.to_string())),
        None => file.push(name, Secret::User(phc))?,
    }
    file.save(path)
}

/// Lets `name` reach `prefix` at `access` (replacing its rule for the same prefix).
pub fn allow(path: &Path, name: &str, prefix: &str, access: Access) -> Result<(), AuthError> {
    check_prefix(prefix)?;
    let mut file = AuthFile::load(path)?;
    if file.find(name).is_none() {
        return Err(AuthError::Unknown(name.to_string()));
    }
    let existing = file.lines.iter_mut().find_map(|l| match l {
        Line::Allow { name: n, rule } if n == name && rule.prefix == prefix => Some(rule),
        _ => None,
    });
    match existing {
        Some(rule) => rule.access = access,
        None => file.lines.push(Line::Allow {
            name: name.to_string(),
            rule: Rule {
                prefix: prefix.to_string(),
                access,
            },
        }),
    }
    file.save(path)
}

/// Removes the rule of `name` for `prefix`.
pub fn deny(path: &Path, name: &str, prefix: &str) -> Result<(), AuthError> {
    let mut file = AuthFile::load(path)?;
    let before = file.lines.len();
    file.lines.retain(
        |l| !matches!(l, Line::Allow { name: n, rule } if n == name && rule.prefix == prefix),
    );
    if file.lines.len() == before {
        return Err(AuthError::Rule(format!("{name} has no rule for {prefix}")));
    }
    file.save(path)
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
