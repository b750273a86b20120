//! The shim's instructions: what the server decided about one container (root, hostname,
//! init, preinit, volumes, fifos, console), checked up front for clear errors, and written
//! to `<instance>/shim.json` for the shim to read inside the new namespaces.

use std::path::{Component, Path, PathBuf};

use ferromega_domain::vm::registry::Vm;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The spec's file name in the instance directory.
pub const SPEC_FILE: &str = "shim.json";

/// Errors of a container's configuration.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum SpecError {
    /// `vm config filesystem` does not exist.
    #[error("container filesystem {0} does not exist")]
    FilesystemMissing(String),
    /// `vm config filesystem` is not a directory.
    #[error("container filesystem {0} is not a directory")]
    FilesystemNotDir(String),
    /// `vm config init` is empty.
    #[error("container init is empty")]
    EmptyInit,
    /// A volume's host path does not exist.
    #[error("volume host path {host} does not exist (volume {target})")]
    VolumeMissing {
        /// The host path.
        host: String,
        /// The container path.
        target: String,
    },
    /// A container path that leaves the root or is empty.
    #[error("invalid container path {0:?}: must name a path inside the container")]
    BadTarget(String),
    /// A path overlayfs cannot take as an option.
    #[error("container filesystem path {0} must not contain ',' or ':'")]
    BadLowerDir(String),
}

/// One bind mount of a host path into the container.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Volume {
    /// Host path (file or directory).
    pub host: PathBuf,
    /// Path inside the container (absolute).
    pub target: String,
}

/// Everything the shim needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Spec {
    /// The container's root as the host sees it (the overlay or the filesystem itself).
    pub root: PathBuf,
    /// Hostname.
    pub hostname: String,
    /// Init and its arguments (resolved inside the container).
    pub init: Vec<String>,
    /// Host program run before init, empty for none.
    pub preinit: String,
    /// Volumes.
    pub volumes: Vec<Volume>,
    /// Host fifos bound at `/dev/fifos/fifo<i>`.
    pub fifos: Vec<PathBuf>,
    /// File holding the UUID (bound over DMI's `product_uuid` when the host has it).
    pub uuid_file: PathBuf,
    /// The pty slave that becomes `/dev/console`.
    pub console: PathBuf,
}

/// `root` joined with the container path `p`; errors when `p` would leave the root.
pub fn inside(root: &Path, p: &str) -> Result<PathBuf, SpecError> {
    let rel = Path::new(p.trim_start_matches('/'));
    let ok = rel.components().all(|c| matches!(c, Component::Normal(_)))
        && rel.components().next().is_some();
    if !ok {
        return Err(SpecError::BadTarget(p.to_string()));
    }
    Ok(root.join(rel))
}

/// Checks a container's configuration before anything is made on the host.
pub fn validate(vm: &Vm) -> Result<(), SpecError> {
    let c = &vm.config;
    let fs = Path::new(&c.filesystem);
    match std::fs::metadata(fs) {
        Err(_) => return Err(SpecError::FilesystemMissing(c.filesystem.clone())),
        Ok(m) if !m.is_dir() => return Err(SpecError::FilesystemNotDir(c.filesystem.clone())),
        Ok(_) => {}
    }
    if c.snapshot && c.filesystem.contains([',', ':']) {
        return Err(SpecError::BadLowerDir(c.filesystem.clone()));
    }
    if c.init.first().is_none_or(|i| i.is_empty()) {
        return Err(SpecError::EmptyInit);
    }
    for (target, host) in &c.volumes {
        inside(Path::new("/"), target)?;
        if std::fs::symlink_metadata(host).is_err() {
            return Err(SpecError::VolumeMissing {
                host: host.clone(),
                target: target.clone(),
            });
        }
    }
    Ok(())
}

/// The spec of `vm` with its root at `root`, its files in `dir` and its console `console`.
pub fn build(vm: &Vm, dir: &Path, root: &Path, console: &Path) -> Spec {
    let c = &vm.config;
    Spec {
        root: root.to_path_buf(),
        hostname: if c.hostname.is_empty() {
            vm.name.clone()
        } else {
            c.hostname.clone()
        },
        init: c.init.clone(),
        preinit: c.preinit.clone(),
        volumes: c
            .volumes
            .iter()
            .map(|(target, host)| Volume {
                host: PathBuf::from(host),
                target: format!("/{}", target.trim_start_matches('/')),
            })
            .collect(),
        fifos: (0..c.fifos).map(|i| fifo_path(dir, i)).collect(),
        uuid_file: dir.join("uuid"),
        console: console.to_path_buf(),
    }
}

/// `<dir>/fifo<i>`.
pub fn fifo_path(dir: &Path, i: u64) -> PathBuf {
    dir.join(format!("fifo{i}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ferromega_domain::vm::config::VmConfig;
    use ferromega_domain::vm::registry::{VmState, VmType};

    /// A container VM with `config` (built through serde so that fields other crates add
    /// to `Vm` keep their defaults).
    pub(crate) fn vm(config: VmConfig) -> Vm {
        serde_json::from_value(serde_json::json!({
            "id": 3,
            "name": "c3",
            "namespace": "minimega",
            "host": "h",
            "state": VmState::Building,
            "type": VmType::Container,
            "uuid": "u",
            "config": config,
            "tags": {},
            "launched_ms": 0,
            "pid": 0,
            "cc_active": false,
        }))
        .unwrap()
    }

    #[test]
    fn inside_refuses_paths_that_leave_the_root() {
        let r = Path::new("/r");
        assert_eq!(inside(r, "/data/x").unwrap(), PathBuf::from("/r/data/x"));
        assert_eq!(inside(r, "data").unwrap(), PathBuf::from("/r/data"));
        assert!(inside(r, "/../etc").is_err());
        assert!(inside(r, "/a/../../b").is_err());
        assert!(inside(r, "/").is_err());
    }

    #[test]
    fn validate_names_what_is_missing() {
        let t = tempfile::tempdir().unwrap();
        let mut c = VmConfig {
            filesystem: t.path().join("nope").display().to_string(),
            ..VmConfig::default()
        };
        assert!(matches!(
            validate(&vm(c.clone())),
            Err(SpecError::FilesystemMissing(_))
        ));
        c.filesystem = t.path().display().to_string();
        assert_eq!(validate(&vm(c.clone())), Ok(()));
        c.volumes
            .insert("/data".into(), t.path().join("gone").display().to_string());
        let e = validate(&vm(c.clone())).unwrap_err();
        assert!(e.to_string().starts_with("volume host path "), "{e}");
        assert!(
            e.to_string()
                .ends_with("gone does not exist (volume /data)"),
            "{e}"
        );
        c.volumes.clear();
        c.init.clear();
        assert_eq!(validate(&vm(c)), Err(SpecError::EmptyInit));
    }

    #[test]
    fn build_defaults_hostname_and_lists_fifos() {
        let c = VmConfig {
            filesystem: "/fs".into(),
            fifos: 2,
            volumes: [("data".to_string(), "/host/data".to_string())].into(),
            ..VmConfig::default()
        };
        let s = build(
            &vm(c),
            Path::new("/base/3"),
            Path::new("/base/3/fs"),
            Path::new("/dev/pts/9"),
        );
        assert_eq!(s.hostname, "c3");
        assert_eq!(
            s.fifos,
            vec![
                PathBuf::from("/base/3/fifo0"),
                PathBuf::from("/base/3/fifo1")
            ]
        );
        assert_eq!(s.volumes[0].target, "/data");
        assert_eq!(s.init, vec!["/init".to_string()]);
    }
}
