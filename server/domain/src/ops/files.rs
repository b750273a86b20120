//! File operations on the files directory: list, get, delete, status. Paths never leave it.

use std::path::{Component, Path, PathBuf};

use ferromega_api::{Args, Response};

use crate::{ControlPlane, DomainError, DomainResult};

/// Joins `rel` (leading `/` ignored) onto `root`, refusing `..` and other escapes.
pub(crate) fn inside(root: &Path, rel: &str) -> DomainResult<PathBuf> {
    let rel = Path::new(rel.trim_start_matches('/'));
    let mut out = root.to_path_buf();
    for c in rel.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => {
                let e = format!("path leaves the files directory: {}", rel.display());
                return Err(DomainError::Invalid(e));
            }
        }
    }
    Ok(out)
}

impl ControlPlane {
    /// Paths of the files directory matching the glob `pattern`.
    fn glob_files(&self, pattern: &str) -> DomainResult<Vec<PathBuf>> {
        let full = inside(self.files_dir(), pattern)?;
        let text = full.to_string_lossy().into_owned();
        let paths = glob::glob(&text).map_err(DomainError::invalid)?;
        Ok(paths.filter_map(Result::ok).collect())
    }

    pub(crate) fn file_list(&self, args: &Args) -> DomainResult<Response> {
        let dir = inside(self.files_dir(), args.string("path").unwrap_or_default())?;
        let header = ["dir", "name", "size"];
        let entries: Vec<(bool, String, u64)> = if dir.is_dir() {
            std::fs::read_dir(&dir)
                .map_err(|e| DomainError::Host(e.to_string()))?
                .filter_map(Result::ok)
                .filter_map(|e| {
                    let meta = e.metadata().ok()?;
                    Some((
                        meta.is_dir(),
                        e.file_name().to_string_lossy().into_owned(),
                        meta.len(),
                    ))
                })
                .collect()
        } else if let Ok(meta) = std::fs::metadata(&dir) {
            let name = dir.file_name().map(|n| n.to_string_lossy().into_owned());
            vec![(false, name.unwrap_or_default(), meta.len())]
        } else {
            Vec::new()
        };
        let rows = entries
            .into_iter()
            .map(|(is_dir, name, size)| {
                let d = if is_dir { "<dir>" } else { "" };
                vec![d.to_string(), name, size.to_string()]
            })
            .collect();
        Ok(self.table(&header, rows))
    }

    /// `file get`: a file already here is done; otherwise it is fetched from the mesh
    /// peers that have it (waiting until it is here).
    pub(crate) async fn file_get(&self, args: &Args) -> DomainResult<Response> {
        let pattern = args.string("file").unwrap_or_default();
        if self.glob_files(pattern)?.is_empty() {
            self.file_get_from_peers(pattern).await?;
        }
        Ok(self.ok())
    }

    pub(crate) fn file_delete(&self, args: &Args) -> DomainResult<Response> {
        let pattern = args.string("file").unwrap_or_default();
        let found = self.glob_files(pattern)?;
        if found.is_empty() {
            return Err(DomainError::NotFound("file not found".to_string()));
        }
        for path in found {
            if path == self.files_dir() {
                return Err(DomainError::invalid("cannot delete the files directory"));
            }
            let r = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            r.map_err(|e| DomainError::Host(format!("{}: {e}", path.display())))?;
        }
        Ok(self.ok())
    }

    /// The regular file at `rel` in the files directory, for a download: never a
    /// directory, never through a symlink out of the files directory.
    pub fn file_for_download(&self, rel: &str) -> DomainResult<PathBuf> {
        let path = inside(self.files_dir(), rel)?;
        let not_found = || DomainError::NotFound(format!("file not found: {rel}"));
        let real = path.canonicalize().map_err(|_| not_found())?;
        let root = self
            .files_dir()
            .canonicalize()
            .map_err(|e| DomainError::Host(e.to_string()))?;
        if !real.starts_with(&root) {
            return Err(DomainError::Invalid(format!(
                "path leaves the files directory: {rel}"
            )));
        }
        if !real.is_file() {
            return Err(not_found());
        }
        Ok(real)
    }

    /// Where an upload to `rel` goes in the files directory (its folders created): never
    /// outside it, never over an existing file or folder.
    pub fn file_for_upload(&self, rel: &str) -> DomainResult<PathBuf> {
        let path = inside(self.files_dir(), rel)?;
        if path == self.files_dir() || rel.ends_with('/') {
            return Err(DomainError::Invalid("an upload needs a file name".into()));
        }
        let parent = path
            .parent()
            .ok_or_else(|| DomainError::Invalid("an upload needs a file name".into()))?;
        std::fs::create_dir_all(parent).map_err(|e| DomainError::Host(e.to_string()))?;
        let root = self
            .files_dir()
            .canonicalize()
            .map_err(|e| DomainError::Host(e.to_string()))?;
        let real_parent = parent
            .canonicalize()
            .map_err(|e| DomainError::Host(e.to_string()))?;
        if !real_parent.starts_with(&root) {
            return Err(DomainError::Invalid(format!(
                "path leaves the files directory: {rel}"
            )));
        }
        if std::fs::symlink_metadata(&path).is_ok() {
            return Err(DomainError::Conflict(format!("file exists: {rel}")));
        }
        Ok(path)
    }

    pub(crate) fn file_status(&self) -> Response {
        let rows = self
            .transfers()
            .into_iter()
            .map(|(f, t)| vec![f, t.tempdir, t.completed.to_string(), t.queued.to_string()])
            .collect();
        self.table(&["filename", "tempdir", "completed", "queued"], rows)
    }
}

/// Files at or under `p`, in lexical order.
pub(crate) fn files_under(p: &Path, out: &mut Vec<PathBuf>) {
    if p.is_dir() {
        let Ok(d) = std::fs::read_dir(p) else { return };
        let mut v: Vec<PathBuf> = d.flatten().map(|e| e.path()).collect();
        v.sort();
        for e in v {
            files_under(&e, out);
        }
    } else if p.is_file() {
        out.push(p.to_path_buf());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inside_joins_relative_and_rooted_paths() {
        let root = Path::new("/files");
        assert_eq!(inside(root, "/a/b").unwrap(), PathBuf::from("/files/a/b"));
        assert_eq!(inside(root, "a").unwrap(), PathBuf::from("/files/a"));
    }

    #[test]
    fn inside_refuses_parent_components() {
        assert!(inside(Path::new("/files"), "../etc/passwd").is_err());
        assert!(inside(Path::new("/files"), "a/../../x").is_err());
    }
}
