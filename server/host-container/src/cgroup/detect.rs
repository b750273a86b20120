//! Finding where containers' cgroups go: the server's own cgroup, read from
//! `/proc/self/cgroup` and `/proc/self/mountinfo` (both passed in as text), or a root the
//! user names (`--cgroup`). cgroup v1 gives one parent directory per controller, v2 one.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::{CgroupError, Version, CONTROLLERS, OPTIONAL_CONTROLLERS};

/// Where a server makes its containers' cgroups (below each is its group directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parents {
    /// Version of the hierarchy.
    pub version: Version,
    /// v1: controller → parent directory; v2: `unified` → the one parent directory.
    pub dirs: BTreeMap<String, PathBuf>,
}

/// One cgroup filesystem mount of `/proc/self/mountinfo`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CgroupMount {
    /// The hierarchy path mounted (4th field, usually `/`).
    root: String,
    /// Where it is mounted.
    point: PathBuf,
    /// `cgroup` or `cgroup2`.
    fstype: String,
    /// Super options (for v1: the controllers).
    options: Vec<String>,
}

/// Undoes mountinfo's octal escapes (`\040` for a space).
fn unescape(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let digits = bytes.get(i + 1..i + 4);
        if bytes[i] == b'\\' {
            let octal = digits
                .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)))
                .map(|d| d.iter().fold(0u32, |acc, b| acc * 8 + u32::from(b - b'0')))
                .and_then(|v| u8::try_from(v).ok());
            if let Some(v) = octal {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn cgroup_mounts(mountinfo: &str) -> Vec<CgroupMount> {
    mountinfo
        .lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let left: Vec<&str> = left.split(' ').collect();
            let right: Vec<&str> = right.split(' ').collect();
            let fstype = *right.first()?;
            if fstype != "cgroup" && fstype != "cgroup2" {
                return None;
            }
            Some(CgroupMount {
                root: unescape(left.get(3)?),
                point: PathBuf::from(unescape(left.get(4)?)),
                fstype: fstype.to_string(),
                options: right
                    .get(2)
                    .map(|o| o.split(',').map(str::to_string).collect())
                    .unwrap_or_default(),
            })
        })
        .collect()
}

/// `hierarchy path` of `/proc/self/cgroup` for a v1 controller, or for v2 (`""`).
fn own_path<'a>(proc_cgroup: &'a str, controller: &str) -> Option<&'a str> {
    proc_cgroup.lines().find_map(|line| {
        let mut parts = line.splitn(3, ':');
        let (_id, ctrls, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            ctrls.is_empty()
        } else {
            ctrls.split(',').any(|c| c == controller)
        };
        hit.then_some(path)
    })
}

/// `point` + the part of `path` below the mounted hierarchy `root`.
fn below(point: &Path, root: &str, path: &str) -> PathBuf {
    let rel = if root == "/" {
        path
    } else {
        path.strip_prefix(root).unwrap_or(path)
    };
    point.join(rel.trim_start_matches('/'))
}

/// The server's own cgroups, from the text of `/proc/self/cgroup` and
/// `/proc/self/mountinfo`: v1 when the controllers are mounted as v1 hierarchies (also on
/// hybrid hosts), v2 when the unified hierarchy is the only one.
pub fn detect(proc_cgroup: &str, mountinfo: &str) -> Result<Parents, CgroupError> {
    let mounts = cgroup_mounts(mountinfo);
    let v1: Vec<&CgroupMount> = mounts.iter().filter(|m| m.fstype == "cgroup").collect();
    if v1
        .iter()
        .any(|m| CONTROLLERS.iter().any(|c| m.options.iter().any(|o| o == c)))
    {
        let mut dirs = BTreeMap::new();
        for c in CONTROLLERS.iter().chain(OPTIONAL_CONTROLLERS) {
            let mount = v1.iter().find(|m| m.options.iter().any(|o| o == c));
            let path = own_path(proc_cgroup, c);
            match (mount, path) {
                (Some(m), Some(p)) => {
                    dirs.insert(c.to_string(), below(&m.point, &m.root, p));
                }
                _ if OPTIONAL_CONTROLLERS.contains(c) => {}
                _ => return Err(CgroupError::Missing(c.to_string())),
            }
        }
        return Ok(Parents {
            version: Version::V1,
            dirs,
        });
    }
    let unified = mounts.iter().find(|m| m.fstype == "cgroup2");
    match (unified, own_path(proc_cgroup, "")) {
        (Some(m), Some(p)) => Ok(Parents {
            version: Version::V2,
            dirs: BTreeMap::from([("unified".to_string(), below(&m.point, &m.root, p))]),
        }),
        _ => Err(CgroupError::NoHierarchy),
    }
}

/// Parents under a cgroup mount root the user names (minimega's `-cgroup`): v2 when
/// `root/cgroup.controllers` exists, else v1 with `root/<controller>` for each controller.
pub fn from_root(root: &Path) -> Result<Parents, CgroupError> {
    if root.join("cgroup.controllers").is_file() {
        return Ok(Parents {
            version: Version::V2,
            dirs: BTreeMap::from([("unified".to_string(), root.to_path_buf())]),
        });
    }
    let mut dirs = BTreeMap::new();
    for c in CONTROLLERS.iter().chain(OPTIONAL_CONTROLLERS) {
        let dir = root.join(c);
        if dir.is_dir() {
            dirs.insert(c.to_string(), dir);
        } else if !OPTIONAL_CONTROLLERS.contains(c) {
            return Err(CgroupError::Missing(c.to_string()));
        }
    }
    Ok(Parents {
        version: Version::V1,
        dirs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_CGROUP: &str = "9:name=systemd:/\n8:pids:/\n6:freezer:/\n5:devices:/\n\
        4:memory:/process_api/c11c\n2:cpuacct:/\n1:cpu:/\n0::/\n";
    const HYBRID_MOUNTINFO: &str = "\
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n\
30 29 0:26 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n\
31 29 0:27 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n\
33 29 0:29 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n\
34 29 0:30 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices\n\
35 29 0:31 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer\n\
38 29 0:34 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

    #[test]
    fn detect_on_hybrid_host_uses_v1_below_own_cgroups() {
        let p = detect(HYBRID_CGROUP, HYBRID_MOUNTINFO).unwrap();
        assert_eq!(p.version, Version::V1);
        assert_eq!(
            p.dirs["memory"],
            PathBuf::from("/sys/fs/cgroup/memory/process_api/c11c")
        );
        assert_eq!(p.dirs["freezer"], PathBuf::from("/sys/fs/cgroup/freezer"));
        assert_eq!(p.dirs["cpu"], PathBuf::from("/sys/fs/cgroup/cpu"));
        assert_eq!(p.dirs["devices"], PathBuf::from("/sys/fs/cgroup/devices"));
    }

    #[test]
    fn detect_on_unified_host_uses_v2() {
        let cg = "0::/user.slice/session-1.scope\n";
        let mi = "40 1 0:35 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n";
        let p = detect(cg, mi).unwrap();
        assert_eq!(p.version, Version::V2);
        assert_eq!(
            p.dirs["unified"],
            PathBuf::from("/sys/fs/cgroup/user.slice/session-1.scope")
        );
    }

    #[test]
    fn detect_strips_the_mounted_root_of_a_nested_hierarchy() {
        let cg = "3:memory,freezer,cpu:/docker/abc/inner\n";
        let mi = "50 1 0:40 /docker/abc /cg\\040x rw - cgroup cgroup rw,memory,freezer,cpu\n";
        let p = detect(cg, mi).unwrap();
        assert_eq!(p.dirs["memory"], PathBuf::from("/cg x/inner"));
        assert!(!p.dirs.contains_key("devices"));
    }

    #[test]
    fn detect_without_a_needed_controller_names_it() {
        let mi = "33 29 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory\n";
        let e = detect("4:memory:/\n", mi).unwrap_err();
        assert_eq!(e.to_string(), "cgroup v1 controller cpu is not mounted");
        assert!(matches!(detect("", ""), Err(CgroupError::NoHierarchy)));
    }

    #[test]
    fn from_root_tells_v1_from_v2() {
        let t = tempfile::tempdir().unwrap();
        for c in ["memory", "cpu", "freezer"] {
            std::fs::create_dir(t.path().join(c)).unwrap();
        }
        let p = from_root(t.path()).unwrap();
        assert_eq!(p.version, Version::V1);
        assert_eq!(p.dirs.len(), 3);
        std::fs::write(t.path().join("cgroup.controllers"), "cpu memory\n").unwrap();
        assert_eq!(from_root(t.path()).unwrap().version, Version::V2);
    }
}
