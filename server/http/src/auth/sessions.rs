//! Login sessions (the `ferromega_session` cookie) and the cache of verified passwords,
//! both bounded, both in memory: a restart signs everyone out.
//!
//! argon2 is slow on purpose; a script sending HTTP Basic with every call would pay it
//! every time, so a verified user and password pair is remembered by its SHA-256 (never
//! the password itself) for [`CACHE_TTL`].

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How long a login session lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// How long a verified password is remembered.
pub const CACHE_TTL: Duration = Duration::from_secs(300);

/// At most this many sessions, and this many remembered passwords.
pub const MAX_ENTRIES: usize = 4096;

/// The sessions and the password cache of one server.
#[derive(Default)]
pub(crate) struct Sessions {
    sessions: Mutex<HashMap<String, (String, Instant)>>,
    verified: Mutex<HashMap<[u8; 32], (String, Instant)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn pair_key(user: &str, password: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(user.as_bytes());
    h.update([0u8]);
    h.update(password.as_bytes());
    h.finalize().into()
}

impl Sessions {
    /// A new session for `name`: its cookie value, or `None` when the store is full.
    pub(crate) fn open(&self, name: &str) -> Option<String> {
        let now = Instant::now();
        let mut s = lock(&self.sessions);
        s.retain(|_, (_, until)| *until > now);
        if s.len() >= MAX_ENTRIES {
            return None;
        }
        let id = super::new_token();
        s.insert(id.clone(), (name.to_string(), now + SESSION_TTL));
        Some(id)
    }

    /// Who session `id` belongs to, while it lasts.
    pub(crate) fn session(&self, id: &str) -> Option<String> {
        let s = lock(&self.sessions);
        s.get(id)
            .filter(|(_, until)| *until > Instant::now())
            .map(|(n, _)| n.clone())
    }

    /// Ends session `id`.
    pub(crate) fn close(&self, id: &str) {
        lock(&self.sessions).remove(id);
    }

    /// The user of a pair verified lately.
    pub(crate) fn cached(&self, user: &str, password: &str) -> Option<String> {
        let v = lock(&self.verified);
        v.get(&pair_key(user, password))
            .filter(|(_, until)| *until > Instant::now())
            .map(|(n, _)| n.clone())
    }

    /// Forgets every verified pair (the auth file changed).
    pub(crate) fn forget_passwords(&self) {
        lock(&self.verified).clear();
    }

    /// Remembers that `password` is `user`'s.
    pub(crate) fn remember(&self, user: &str, password: &str) {
        let now = Instant::now();
        let mut v = lock(&self.verified);
        v.retain(|_, (_, until)| *until > now);
        if v.len() < MAX_ENTRIES {
            v.insert(
                pair_key(user, password),
                (user.to_string(), now + CACHE_TTL),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_open_and_close() {
        let s = Sessions::default();
        let id = s.open("alice").unwrap();
        assert_eq!(id.len(), 64);
        assert_eq!(s.session(&id).as_deref(), Some("alice"));
        assert_eq!(s.session("other"), None);
        s.close(&id);
        assert_eq!(s.session(&id), None);
    }

    #[test]
    fn the_cache_keys_on_user_and_password() {
        let s = Sessions::default();
        s.remember("alice", "pw");
        assert_eq!(s.cached("alice", "pw").as_deref(), Some("alice"));
        assert_eq!(s.cached("alice", "pw2"), None);
        assert_eq!(s.cached("alicep", "w"), None);
    }
}
