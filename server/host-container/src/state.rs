//! A container's record, `<instance>/container.json`: what a restarted server needs to
//! take a running container over (its init's PID and start time, its cgroup, its overlay)
//! or to release what a dead one left behind.

use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::cgroup::Cgroup;

/// The record's file name in the instance directory.
pub const RECORD_FILE: &str = "container.json";

/// What the server knows about a launched container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// PID of init (in the host's namespace).
    pub pid: u32,
    /// Its start time in clock ticks since boot, to tell it from a reused PID.
    pub start_time: u64,
    /// Its cgroup.
    pub cgroup: Cgroup,
    /// The overlay mount point, when the root is a snapshot.
    pub overlay: Option<PathBuf>,
    /// Memory limit, MB (for error messages).
    pub memory_mb: u64,
}

impl Record {
    /// Reads `<dir>/container.json`.
    pub fn load(dir: &Path) -> Result<Record, String> {
        let path = dir.join(RECORD_FILE);
        let bytes = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Writes `<dir>/container.json` (atomically).
    pub fn save(&self, dir: &Path) -> io::Result<()> {
        let tmp = dir.join(format!("{RECORD_FILE}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(tmp, dir.join(RECORD_FILE))
    }

    /// Removes the record (nothing to take over any more).
    pub fn remove(dir: &Path) {
        let _ = std::fs::remove_file(dir.join(RECORD_FILE));
    }

    /// Whether the recorded init is still the process running under its PID.
    pub fn alive(&self) -> bool {
        crate::sys::start_time(self.pid) == Some(self.start_time)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::cgroup::Version;

    #[test]
    fn record_round_trips_and_tells_a_dead_pid() {
        let t = tempfile::tempdir().unwrap();
        let r = Record {
            pid: std::process::id(),
            start_time: crate::sys::start_time(std::process::id()).unwrap(),
            cgroup: Cgroup {
                version: Version::V1,
                dirs: BTreeMap::from([("memory".into(), "/m/1".into())]),
            },
            overlay: Some("/b/1/fs".into()),
            memory_mb: 64,
        };
        r.save(t.path()).unwrap();
        let back = Record::load(t.path()).unwrap();
        assert_eq!(back, r);
        assert!(back.alive());
        let reused = Record {
            start_time: r.start_time + 1,
            ..r
        };
        assert!(!reused.alive());
        Record::remove(t.path());
        assert!(Record::load(t.path()).is_err());
    }
}
