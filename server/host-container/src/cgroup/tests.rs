//! Unit tests of cgroups against a fake hierarchy in a temporary directory (the files a
//! kernel would show are plain files here).

use super::*;

fn v1_tree(root: &Path) -> Hierarchy {
    let mut dirs = BTreeMap::new();
    for c in ["memory", "cpu", "freezer", "devices"] {
        let own = root.join(c).join("server");
        std::fs::create_dir_all(&own).unwrap();
        dirs.insert(c.to_string(), own);
    }
    Hierarchy::new(
        Parents {
            version: Version::V1,
            dirs,
        },
        "ferromega-test".to_string(),
    )
}

/// What the kernel does on rmdir of a cgroup: its control files go with it.
fn kernel_rmdir_files(cg: &Cgroup) {
    for d in cg.dirs.values() {
        for f in std::fs::read_dir(d).unwrap() {
            std::fs::remove_file(f.unwrap().path()).unwrap();
        }
    }
}

#[test]
fn create_v1_makes_one_dir_per_controller_below_the_group() {
    let t = tempfile::tempdir().unwrap();
    let h = v1_tree(t.path());
    let cg = h
        .create(
            7,
            Limits {
                memory_mb: 64,
                vcpus: 2,
            },
        )
        .unwrap();
    let mem = t.path().join("memory/server/ferromega-test/7");
    assert_eq!(cg.dirs["memory"], mem);
    assert_eq!(
        std::fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap(),
        (64u64 << 20).to_string()
    );
    let cpu = t.path().join("cpu/server/ferromega-test/7");
    assert_eq!(
        std::fs::read_to_string(cpu.join("cpu.cfs_quota_us")).unwrap(),
        "2000000"
    );
    assert_eq!(
        std::fs::read_to_string(cpu.join("cpu.cfs_period_us")).unwrap(),
        "1000000"
    );
    // A plain file keeps the last write: the whitelist ends with the tun device.
    let dev = t.path().join("devices/server/ferromega-test/7");
    assert_eq!(
        std::fs::read_to_string(dev.join("devices.deny")).unwrap(),
        "a"
    );
    assert_eq!(
        std::fs::read_to_string(dev.join("devices.allow")).unwrap(),
        "c 10:200 rwm"
    );
    assert_eq!(cg.memory_limit(), Some(64 << 20));
}

#[test]
fn limit_files_v1_deny_all_devices_before_allowing_some() {
    let files = limit_files(
        Version::V1,
        Limits {
            memory_mb: 1,
            vcpus: 0,
        },
    );
    let deny = files.iter().position(|f| f.1 == "devices.deny").unwrap();
    let allow = files.iter().position(|f| f.1 == "devices.allow").unwrap();
    assert!(deny < allow);
    assert!(files.contains(&("cpu", "cpu.cfs_quota_us", "-1".to_string())));
    assert!(files.contains(&("memory", "memory.limit_in_bytes", "1048576".to_string())));
}

#[test]
fn limit_files_v2_use_max_files() {
    let files = limit_files(
        Version::V2,
        Limits {
            memory_mb: 128,
            vcpus: 3,
        },
    );
    assert_eq!(
        files,
        vec![
            ("memory", "memory.max", (128u64 << 20).to_string()),
            ("cpu", "cpu.max", "3000000 1000000".to_string()),
        ]
    );
}

#[test]
fn create_v2_enables_controllers_on_the_way_down() {
    let t = tempfile::tempdir().unwrap();
    let own = t.path().join("user.slice");
    std::fs::create_dir_all(&own).unwrap();
    std::fs::write(own.join("cgroup.subtree_control"), "").unwrap();
    let h = Hierarchy::new(
        Parents {
            version: Version::V2,
            dirs: BTreeMap::from([("unified".to_string(), own.clone())]),
        },
        "ferromega-x".to_string(),
    );
    let cg = h
        .create(
            0,
            Limits {
                memory_mb: 32,
                vcpus: 1,
            },
        )
        .unwrap();
    assert_eq!(cg.dirs["unified"], own.join("ferromega-x/0"));
    assert_eq!(
        std::fs::read_to_string(own.join("cgroup.subtree_control")).unwrap(),
        "+memory +cpu"
    );
    assert_eq!(
        std::fs::read_to_string(own.join("ferromega-x/cgroup.subtree_control")).unwrap(),
        "+memory +cpu"
    );
    assert_eq!(
        std::fs::read_to_string(cg.dirs["unified"].join("cpu.max")).unwrap(),
        "1000000 1000000"
    );
}

#[test]
fn create_with_zero_memory_is_refused_and_leaves_nothing() {
    let t = tempfile::tempdir().unwrap();
    let h = v1_tree(t.path());
    let e = h
        .create(
            1,
            Limits {
                memory_mb: 0,
                vcpus: 1,
            },
        )
        .unwrap_err();
    assert_eq!(
        e.to_string(),
        "memory must be at least 1 MB for a container"
    );
    assert!(h.group_dirs().iter().all(|g| !g.exists()));
}

#[test]
fn create_failing_halfway_removes_what_it_made() {
    let t = tempfile::tempdir().unwrap();
    let h = v1_tree(t.path());
    // A file where the cpu group directory should go makes create fail there.
    std::fs::write(t.path().join("cpu/server/ferromega-test"), "").unwrap();
    assert!(h
        .create(
            3,
            Limits {
                memory_mb: 8,
                vcpus: 1
            }
        )
        .is_err());
    assert!(!t.path().join("memory/server/ferromega-test/3").exists());
    assert!(!t.path().join("freezer/server/ferromega-test/3").exists());
}

#[test]
fn freezer_v1_reads_back_what_was_written() {
    let t = tempfile::tempdir().unwrap();
    let h = v1_tree(t.path());
    let cg = h
        .create(
            2,
            Limits {
                memory_mb: 8,
                vcpus: 1,
            },
        )
        .unwrap();
    cg.set_frozen(true).unwrap();
    assert_eq!(cg.freezer().unwrap(), Freezer::Frozen);
    let dir = &cg.dirs["freezer"];
    std::fs::write(dir.join("freezer.state"), "FREEZING\n").unwrap();
    assert_eq!(cg.freezer().unwrap(), Freezer::Freezing);
    cg.set_frozen(false).unwrap();
    assert_eq!(cg.freezer().unwrap(), Freezer::Thawed);
}

#[test]
fn freezer_v2_waits_for_the_frozen_event() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("c");
    std::fs::create_dir(&dir).unwrap();
    let cg = Cgroup {
        version: Version::V2,
        dirs: BTreeMap::from([("unified".to_string(), dir.clone())]),
    };
    std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
    cg.set_frozen(true).unwrap();
    assert_eq!(cg.freezer().unwrap(), Freezer::Freezing);
    std::fs::write(dir.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
    assert_eq!(cg.freezer().unwrap(), Freezer::Frozen);
}

#[test]
fn pids_and_oom_kills_come_from_the_controller_files() {
    let t = tempfile::tempdir().unwrap();
    let h = v1_tree(t.path());
    let cg = h
        .create(
            4,
            Limits {
                memory_mb: 8,
                vcpus: 1,
            },
        )
        .unwrap();
    std::fs::write(cg.dirs["freezer"].join("cgroup.procs"), "12\n34\n").unwrap();
    assert_eq!(cg.pids(), vec![12, 34]);
    std::fs::write(
        cg.dirs["memory"].join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    )
    .unwrap();
    assert_eq!(cg.oom_kills(), 3);
}

#[test]
fn release_removes_the_cgroup_and_the_empty_group() {
    let t = tempfile::tempdir().unwrap();
    let h = v1_tree(t.path());
    let limits = Limits {
        memory_mb: 8,
        vcpus: 1,
    };
    let a = h.create(5, limits).unwrap();
    let b = h.create(6, limits).unwrap();
    kernel_rmdir_files(&a);
    kernel_rmdir_files(&b);
    h.release(&a).unwrap();
    assert!(!a.exists());
    assert!(
        h.group_dirs().iter().all(|g| g.exists()),
        "b is still there"
    );
    h.release(&b).unwrap();
    assert!(h.group_dirs().iter().all(|g| !g.exists()));
    // Releasing again is fine.
    h.release(&b).unwrap();
}

#[test]
fn group_name_depends_on_the_base_only() {
    let a = group_name(Path::new("/tmp/a"));
    assert_eq!(a, group_name(Path::new("/tmp/a")));
    assert_ne!(a, group_name(Path::new("/tmp/b")));
    assert!(a.starts_with("ferromega-") && a.len() == "ferromega-".len() + 8);
}
