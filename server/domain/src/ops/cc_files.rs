//! Operations that move files over cc: `cc send` (host files into the guests; a file
//! only a peer has is fetched from the mesh first) and `cc recv` (guest files into the
//! responses directory).

use std::path::{Path, PathBuf};

use ferromega_api::{Args, Response};
use ferromega_cc_proto::{Command, SendFile};

use crate::namespace::DEFAULT_NAMESPACE;
use crate::ops::files::files_under;
use crate::{ControlPlane, DomainError, DomainResult};

impl ControlPlane {
    pub(crate) async fn cc_send(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let root = self.files_dir().to_path_buf();
        let mut send = Vec::new();
        for name in args.list("file") {
            let found = match send_matches(&root, ns, name) {
                // A relative name no file here matches may live on a peer (iomeshage).
                Err(DomainError::NotFound(e)) if !Path::new(name).is_absolute() => {
                    if self.file_get_from_peers(name).await.is_err() {
                        return Err(DomainError::NotFound(e));
                    }
                    send_matches(&root, ns, name)?
                }
                other => other?,
            };
            for path in found {
                let mut files = Vec::new();
                files_under(&path, &mut files);
                for f in files {
                    send.push(send_file(&root, &f)?);
                }
            }
        }
        if send.is_empty() {
            return Err(DomainError::invalid("no files to send"));
        }
        self.cc_server(ns).add_command(Command {
            send,
            ..Command::default()
        });
        Ok(self.ok())
    }

    pub(crate) fn cc_recv(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let recv = args.list("file").to_vec();
        if recv.is_empty() {
            return Err(DomainError::invalid("no files to receive"));
        }
        self.cc_server(ns).add_command(Command {
            recv,
            ..Command::default()
        });
        Ok(self.ok())
    }
}

/// What `cc send NAME` names: a relative name is looked for under `<files>/<ns>/`, then
/// `<files>/`; an absolute one must be inside the files directory; globs allowed.
fn send_matches(root: &Path, ns: &str, name: &str) -> DomainResult<Vec<PathBuf>> {
    let glob_all = |pattern: &Path| -> Vec<PathBuf> {
        glob::glob(&pattern.to_string_lossy())
            .map(|g| g.flatten().collect())
            .unwrap_or_default()
    };
    let found = if Path::new(name).is_absolute() {
        let inside = Path::new(name)
            .components()
            .all(|c| !matches!(c, std::path::Component::ParentDir))
            && Path::new(name).starts_with(root);
        if !inside {
            return Err(DomainError::invalid(format!(
                "can only send files from {}",
                root.display()
            )));
        }
        glob_all(Path::new(name))
    } else {
        if name.split('/').any(|c| c == "..") {
            return Err(DomainError::invalid(format!(
                "can only send files from {}",
                root.display()
            )));
        }
        let in_ns = if ns == DEFAULT_NAMESPACE {
            Vec::new()
        } else {
            glob_all(&root.join(ns).join(name))
        };
        if in_ns.is_empty() {
            glob_all(&root.join(name))
        } else {
            in_ns
        }
    };
    if found.is_empty() {
        return Err(DomainError::NotFound(format!("no such file: {name}")));
    }
    Ok(found)
}

/// A file to send, named relative to the files directory, with its permissions.
fn send_file(root: &Path, f: &Path) -> DomainResult<SendFile> {
    use std::os::unix::fs::PermissionsExt;
    let rel = f.strip_prefix(root).map_err(|_| {
        DomainError::invalid(format!("can only send files from {}", root.display()))
    })?;
    let perm = std::fs::metadata(f)
        .map_err(|e| DomainError::invalid(format!("{}: {e}", f.display())))?
        .permissions()
        .mode();
    Ok(SendFile {
        name: rel.to_string_lossy().into_owned(),
        perm,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_in_the_namespace_first_and_never_outside() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::create_dir_all(root.join("ns1")).unwrap();
        std::fs::write(root.join("a"), "top").unwrap();
        std::fs::write(root.join("ns1/a"), "ns").unwrap();
        std::fs::write(root.join("b1"), "").unwrap();
        std::fs::write(root.join("b2"), "").unwrap();
        assert_eq!(
            send_matches(root, "ns1", "a").unwrap(),
            vec![root.join("ns1/a")]
        );
        assert_eq!(
            send_matches(root, "minimega", "a").unwrap(),
            vec![root.join("a")]
        );
        assert_eq!(send_matches(root, "ns1", "b*").unwrap().len(), 2);
        let abs = root.join("a").to_string_lossy().into_owned();
        assert_eq!(
            send_matches(root, "ns1", &abs).unwrap(),
            vec![root.join("a")]
        );
        let e = send_matches(root, "ns1", "/etc/passwd").unwrap_err();
        assert!(e.to_string().contains("can only send files from"), "{e}");
        assert!(send_matches(root, "ns1", "../x").is_err());
        let e = send_matches(root, "ns1", "nope").unwrap_err();
        assert!(e.to_string().contains("no such file: nope"), "{e}");
        let f = send_file(root, &root.join("ns1/a")).unwrap();
        assert_eq!(f.name, "ns1/a");
    }
}
