//! The agent's log: lines on standard error below a level that `cc log level` changes
//! at run time.

use std::sync::atomic::{AtomicU8, Ordering};

pub use ferromega_cc_proto::LOG_LEVELS as LEVELS;

static LEVEL: AtomicU8 = AtomicU8::new(1);

/// Sets the level by name; false when the name is not a level.
pub fn set_level(name: &str) -> bool {
    match LEVELS.iter().position(|l| l.eq_ignore_ascii_case(name)) {
        Some(i) => {
            LEVEL.store(i as u8, Ordering::Relaxed);
            true
        }
        None => false,
    }
}

/// The current level's name.
pub fn level() -> &'static str {
    LEVELS[usize::from(LEVEL.load(Ordering::Relaxed)).min(LEVELS.len() - 1)]
}

/// Writes `msg` when `at` is at or above the current level.
pub fn log(at: &str, msg: &str) {
    let want = LEVELS.iter().position(|l| *l == at).unwrap_or(0);
    if want >= usize::from(LEVEL.load(Ordering::Relaxed)) {
        eprintln!("{} {at}: {msg}", uptime());
    }
}

fn uptime() -> String {
    std::fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_default()
}

/// `log("debug", …)` with format arguments.
#[macro_export]
macro_rules! debug { ($($t:tt)*) => { $crate::log::log("debug", &format!($($t)*)) } }
/// `log("info", …)` with format arguments.
#[macro_export]
macro_rules! info { ($($t:tt)*) => { $crate::log::log("info", &format!($($t)*)) } }
/// `log("warn", …)` with format arguments.
#[macro_export]
macro_rules! warn { ($($t:tt)*) => { $crate::log::log("warn", &format!($($t)*)) } }

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_are_set_by_name_and_bad_names_refused() {
        assert!(set_level("ERROR"));
        assert_eq!(level(), "error");
        assert!(!set_level("loud"));
        assert_eq!(level(), "error");
        assert!(set_level("info"));
    }
}
