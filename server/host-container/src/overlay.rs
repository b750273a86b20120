//! The snapshot root: an overlayfs over `vm config filesystem` with its upper and work
//! directories in the instance directory (`<instance>/upper`, `<instance>/work`), mounted
//! in the host's namespace at `<instance>/fs`, where the server can reach into it.

use std::io;
use std::path::{Path, PathBuf};

use thiserror::Error;

use crate::sys::{Mount, Sys};

/// Errors of the overlay.
#[derive(Debug, Error)]
pub enum OverlayError {
    /// Making its directories.
    #[error("overlay directory {0}: {1}")]
    Dir(PathBuf, io::Error),
    /// The mount itself.
    #[error("cannot mount overlay on {0}: {1}")]
    Mount(PathBuf, io::Error),
    /// The unmount.
    #[error("cannot unmount {0}: {1}")]
    Unmount(PathBuf, io::Error),
}

/// One container's overlay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Overlay {
    /// The read-only image.
    pub lower: PathBuf,
    /// Where writes go.
    pub upper: PathBuf,
    /// overlayfs' scratch directory.
    pub work: PathBuf,
    /// The mount point: the container's root.
    pub target: PathBuf,
}

impl Overlay {
    /// The overlay of `filesystem` for the instance directory `dir`.
    pub fn for_instance(filesystem: &Path, dir: &Path) -> Overlay {
        Overlay {
            lower: filesystem.to_path_buf(),
            upper: dir.join("upper"),
            work: dir.join("work"),
            target: dir.join("fs"),
        }
    }

    /// The `mount(2)` call.
    pub fn mount_call(&self) -> Mount {
        Mount {
            source: "overlay".to_string(),
            target: self.target.clone(),
            fstype: "overlay".to_string(),
            flags: Vec::new(),
            data: format!(
                "lowerdir={},upperdir={},workdir={}",
                self.lower.display(),
                self.upper.display(),
                self.work.display()
            ),
        }
    }

    /// Makes the directories and mounts (after unmounting a stale overlay there).
    pub fn mount(&self, sys: &dyn Sys, mountinfo: &str) -> Result<(), OverlayError> {
        for d in [&self.upper, &self.work, &self.target] {
            std::fs::create_dir_all(d).map_err(|e| OverlayError::Dir(d.clone(), e))?;
        }
        unmount(sys, &self.target, mountinfo)?;
        sys.mount(&self.mount_call())
            .map_err(|e| OverlayError::Mount(self.target.clone(), e))
    }
}

/// How mountinfo writes a path (octal escapes for space, tab, newline and backslash).
fn escaped(p: &Path) -> String {
    let mut out = String::new();
    for c in p.display().to_string().chars() {
        match c {
            ' ' => out.push_str("\\040"),
            '\t' => out.push_str("\\011"),
            '\n' => out.push_str("\\012"),
            '\\' => out.push_str("\\134"),
            c => out.push(c),
        }
    }
    out
}

/// How many mounts sit on `target` according to `mountinfo` (the text of
/// `/proc/self/mountinfo`).
pub fn mounts_on(mountinfo: &str, target: &Path) -> usize {
    let want = escaped(target);
    mountinfo
        .lines()
        .filter(|l| l.split(' ').nth(4) == Some(want.as_str()))
        .count()
}

/// Unmounts everything on `target` (lazily when busy); nothing mounted is fine.
pub fn unmount(sys: &dyn Sys, target: &Path, mountinfo: &str) -> Result<(), OverlayError> {
    for _ in 0..mounts_on(mountinfo, target) {
        if let Err(e) = sys.unmount(target, false) {
            match e.raw_os_error() {
                Some(libc::EBUSY) => sys
                    .unmount(target, true)
                    .map_err(|e| OverlayError::Unmount(target.to_path_buf(), e))?,
                Some(libc::EINVAL) | Some(libc::ENOENT) => return Ok(()),
                _ => return Err(OverlayError::Unmount(target.to_path_buf(), e)),
            }
        }
    }
    Ok(())
}

/// The host's current mount table (empty when unreadable).
pub fn host_mountinfo() -> String {
    std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    #[derive(Default)]
    struct Calls(Mutex<Vec<String>>);

    impl Sys for Calls {
        fn mount(&self, m: &Mount) -> io::Result<()> {
            self.0
                .lock()
                .unwrap()
                .push(format!("mount {} {}", m.target.display(), m.data));
            Ok(())
        }
        fn unmount(&self, target: &Path, detach: bool) -> io::Result<()> {
            self.0
                .lock()
                .unwrap()
                .push(format!("umount {} {detach}", target.display()));
            if detach {
                Ok(())
            } else {
                Err(io::Error::from_raw_os_error(libc::EBUSY))
            }
        }
        fn mknod_char(&self, _: &Path, _: u64, _: u64) -> io::Result<()> {
            Ok(())
        }
        fn set_hostname(&self, _: &str) -> io::Result<()> {
            Ok(())
        }
        fn pivot_root(&self, _: &Path) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn overlay_options_name_lower_upper_and_work() {
        let o = Overlay::for_instance(Path::new("/img/fs"), Path::new("/base/4"));
        let m = o.mount_call();
        assert_eq!(m.fstype, "overlay");
        assert_eq!(m.target, PathBuf::from("/base/4/fs"));
        assert_eq!(
            m.data,
            "lowerdir=/img/fs,upperdir=/base/4/upper,workdir=/base/4/work"
        );
    }

    #[test]
    fn mount_makes_directories_and_replaces_a_stale_mount() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("7");
        let o = Overlay::for_instance(Path::new("/img"), &dir);
        let info = format!(
            "99 27 0:50 / {} rw - overlay overlay rw\n",
            escaped(&o.target)
        );
        let calls = Calls::default();
        o.mount(&calls, &info).unwrap();
        assert!(o.upper.is_dir() && o.work.is_dir() && o.target.is_dir());
        let c = calls.0.lock().unwrap().clone();
        let target = o.target.display();
        assert_eq!(c[0], format!("umount {target} false"));
        assert_eq!(c[1], format!("umount {target} true"), "busy: lazily");
        assert!(c[2].starts_with(&format!("mount {target} lowerdir=/img,")));
    }

    #[test]
    fn mounts_on_matches_escaped_paths_exactly() {
        let info = "1 2 0:1 / /a\\040b/fs rw - overlay o rw\n3 2 0:1 / /a/fs2 rw - x x rw\n";
        assert_eq!(mounts_on(info, Path::new("/a b/fs")), 1);
        assert_eq!(mounts_on(info, Path::new("/a/fs")), 0);
        let calls = Calls::default();
        unmount(&calls, Path::new("/a/fs"), info).unwrap();
        assert!(calls.0.lock().unwrap().is_empty());
    }
}
