//! Unit tests of the mount plan: built from a spec and applied to a temporary root
//! through a recording fake of [`Sys`].

use std::sync::Mutex;

use super::*;
use crate::spec::Volume;

/// Records every call; fails mounts whose target contains `fail_on`.
#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
    fail_on: Option<String>,
}

impl Recorder {
    fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl Sys for Recorder {
    fn mount(&self, m: &Mount) -> io::Result<()> {
        let target = m.target.display().to_string();
        self.calls.lock().unwrap().push(format!(
            "mount {} {} {} {:?} {}",
            if m.fstype.is_empty() { "-" } else { &m.fstype },
            if m.source.is_empty() { "-" } else { &m.source },
            target,
            m.flags,
            m.data
        ));
        match &self.fail_on {
            Some(f) if target.contains(f.as_str()) => Err(io::Error::other("refused")),
            _ => Ok(()),
        }
    }
    fn unmount(&self, target: &Path, detach: bool) -> io::Result<()> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("umount {} {detach}", target.display()));
        Ok(())
    }
    fn mknod_char(&self, path: &Path, major: u64, minor: u64) -> io::Result<()> {
        std::fs::write(path, "")?;
        self.calls
            .lock()
            .unwrap()
            .push(format!("mknod {} {major}:{minor}", path.display()));
        Ok(())
    }
    fn set_hostname(&self, name: &str) -> io::Result<()> {
        self.calls.lock().unwrap().push(format!("hostname {name}"));
        Ok(())
    }
    fn pivot_root(&self, root: &Path) -> io::Result<()> {
        self.calls
            .lock()
            .unwrap()
            .push(format!("pivot {}", root.display()));
        Ok(())
    }
}

fn spec(root: &Path, host: &Path) -> Spec {
    Spec {
        root: root.to_path_buf(),
        hostname: "h".into(),
        init: vec!["/init".into()],
        preinit: String::new(),
        volumes: vec![
            Volume {
                host: host.join("data"),
                target: "/mnt/data".into(),
            },
            Volume {
                host: host.join("file.txt"),
                target: "/etc/file.txt".into(),
            },
        ],
        fifos: vec![host.join("fifo0")],
        uuid_file: host.join("uuid"),
        console: "/dev/pts/7".into(),
    }
}

fn apply_all(steps: &[Step], sys: &dyn Sys) -> Result<(), PlanError> {
    steps.iter().try_for_each(|s| apply(s, sys))
}

fn host_tree() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("root");
    let host = t.path().join("host");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(host.join("data")).unwrap();
    std::fs::write(host.join("file.txt"), "x").unwrap();
    std::fs::write(host.join("fifo0"), "").unwrap();
    (t, root, host)
}

#[test]
fn plan_creates_the_default_directories_when_missing() {
    let (_t, root, host) = host_tree();
    let rec = Recorder::default();
    apply_all(&build(&spec(&root, &host)).unwrap(), &rec).unwrap();
    for d in ["proc", "sys", "dev", "dev/shm", "dev/pts", "dev/fifos"] {
        assert!(root.join(d).is_dir(), "{d} missing");
    }
    for n in [
        "null", "zero", "full", "tty", "random", "urandom", "console",
    ] {
        assert!(root.join("dev").join(n).exists(), "/dev/{n} missing");
    }
    assert_eq!(
        std::fs::read_link(root.join("dev/ptmx")).unwrap(),
        PathBuf::from("pts/ptmx")
    );
    assert_eq!(
        std::fs::read_link(root.join("dev/fd")).unwrap(),
        PathBuf::from("/proc/self/fd")
    );
}

#[test]
fn plan_makes_mounts_private_first_and_binds_the_root_on_itself() {
    let (_t, root, host) = host_tree();
    let rec = Recorder::default();
    apply_all(&build(&spec(&root, &host)).unwrap(), &rec).unwrap();
    let calls = rec.calls();
    assert_eq!(calls[0], "mount - - / [Recursive, Private] ");
    let r = root.display();
    assert_eq!(calls[1], format!("mount - {r} {r} [Bind, Recursive] "));
    assert_eq!(
        calls[2],
        format!("mount proc proc {r}/proc [NoSuid, NoExec, NoDev] ")
    );
    let devpts = calls.iter().position(|c| c.contains("devpts")).unwrap();
    let tmpfs_dev = calls
        .iter()
        .position(|c| c.ends_with("[NoSuid, StrictAtime] mode=755"))
        .unwrap();
    assert!(tmpfs_dev < devpts, "/dev before /dev/pts");
    assert!(calls
        .iter()
        .any(|c| c == &format!("mount - /dev/pts/7 {r}/dev/console [Bind, Recursive] ")));
}

#[test]
fn plan_binds_volumes_as_directories_or_files() {
    let (_t, root, host) = host_tree();
    let rec = Recorder::default();
    apply_all(&build(&spec(&root, &host)).unwrap(), &rec).unwrap();
    assert!(root.join("mnt/data").is_dir());
    assert!(root.join("etc/file.txt").is_file());
    let calls = rec.calls();
    let h = host.display();
    let r = root.display();
    assert!(calls.contains(&format!("mount - {h}/data {r}/mnt/data [Bind, Recursive] ")));
    assert!(calls.contains(&format!(
        "mount - {h}/fifo0 {r}/dev/fifos/fifo0 [Bind, Recursive] "
    )));
}

#[test]
fn plan_with_missing_volume_source_fails_clearly() {
    let (_t, root, host) = host_tree();
    std::fs::remove_dir(host.join("data")).unwrap();
    let e = apply_all(&build(&spec(&root, &host)).unwrap(), &Recorder::default()).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!("volume host path {}/data does not exist", host.display())
    );
}

#[test]
fn plan_refuses_a_volume_target_outside_the_root() {
    let (_t, root, host) = host_tree();
    let mut s = spec(&root, &host);
    s.volumes[0].target = "/../../etc".into();
    assert!(matches!(build(&s), Err(PlanError::Spec(_))));
}

#[test]
fn plan_ignores_failing_optional_steps_but_not_required_ones() {
    let (_t, root, host) = host_tree();
    let rec = Recorder {
        fail_on: Some("proc/kcore".into()),
        ..Recorder::default()
    };
    apply_all(&build(&spec(&root, &host)).unwrap(), &rec).unwrap();
    let rec = Recorder {
        fail_on: Some("/dev/shm".into()),
        ..Recorder::default()
    };
    let e = apply_all(&build(&spec(&root, &host)).unwrap(), &rec).unwrap_err();
    assert!(e.to_string().starts_with("mount tmpfs on "), "{e}");
}

#[test]
fn plan_remounts_proc_parts_read_only() {
    let (_t, root, host) = host_tree();
    let rec = Recorder::default();
    apply_all(&build(&spec(&root, &host)).unwrap(), &rec).unwrap();
    let r = root.display();
    assert!(rec.calls().contains(&format!(
        "mount - - {r}/proc/sys [Bind, Remount, ReadOnly, NoSuid, NoDev, NoExec] "
    )));
}
