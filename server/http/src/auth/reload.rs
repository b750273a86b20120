//! The auth file as the server sees it: loaded at start, then re-read when it changes on
//! disk (looked at no more than once a second), so `ferromega auth add-user | allow |
//! deny` apply without a restart. A file that no longer parses is reported in the log
//! and the last good one stays in force.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use super::file::{AuthError, AuthFile};

/// How often the file's modification time is looked at.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);

/// What identifies one version of the file: modification time and size.
type Stamp = Option<(SystemTime, u64)>;

fn stamp(path: &Path) -> Stamp {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

struct State {
    file: Arc<AuthFile>,
    stamp: Stamp,
    checked: Instant,
}

/// The auth file in force.
pub struct Source {
    path: Option<PathBuf>,
    state: Mutex<State>,
}

impl Source {
    /// `file`, for good.
    pub fn fixed(file: AuthFile) -> Source {
        Source {
            path: None,
            state: Mutex::new(State {
                file: Arc::new(file),
                stamp: None,
                checked: Instant::now(),
            }),
        }
    }

    /// The file at `path`, re-read when it changes.
    pub fn watched(path: &Path) -> Result<Source, AuthError> {
        let before = stamp(path);
        let file = AuthFile::load(path)?;
        Ok(Source {
            path: Some(path.to_path_buf()),
            state: Mutex::new(State {
                file: Arc::new(file),
                stamp: before,
                checked: Instant::now(),
            }),
        })
    }

    /// The file in force now, and whether it was just re-read.
    pub fn current(&self) -> (Arc<AuthFile>, bool) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(path) = &self.path else {
            return (st.file.clone(), false);
        };
        if st.checked.elapsed() < CHECK_EVERY {
            return (st.file.clone(), false);
        }
        st.checked = Instant::now();
        let now = stamp(path);
        if now == st.stamp {
            return (st.file.clone(), false);
        }
        st.stamp = now;
        match AuthFile::load(path) {
            Ok(file) => {
                tracing::info!("auth file {} re-read", path.display());
                st.file = Arc::new(file);
                (st.file.clone(), true)
            }
            Err(e) => {
                tracing::error!("{e}; the previous auth file stays in force");
                (st.file.clone(), false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::file::{add_token, add_user};
    use super::*;

    #[test]
    fn an_edited_file_is_re_read_and_a_broken_one_ignored() {
        let dir = std::env::temp_dir().join(format!("fm-reload-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("auth");
        let t1 = add_token(&path, "one").unwrap();
        let src = Source::watched(&path).unwrap();
        assert!(src.current().0.check_token(&t1).is_some());
        std::thread::sleep(CHECK_EVERY + Duration::from_millis(50));
        let t2 = add_token(&path, "two").unwrap();
        let (file, changed) = src.current();
        assert!(changed);
        assert!(file.check_token(&t2).is_some());
        std::thread::sleep(CHECK_EVERY + Duration::from_millis(50));
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{text}garbage line\n")).unwrap();
        let (file, changed) = src.current();
        assert!(!changed, "a broken file is not taken");
        assert!(file.check_token(&t2).is_some());
        add_user(&dir.join("other"), "x", "y").unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
