//! Files over the mesh (minimega's iomeshage): `file get` of a file this host lacks asks
//! the other hosts (the peers, and the hosts beyond them through the next hop) which of
//! them have it (globs; directories recurse), then fetches each file in 10 MiB parts —
//! up to three files at once, each part from any host that has the file, three
//! attempts — into a staging folder, and moves it into the files directory when whole.
//! `file status` shows the transfers in flight.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferromega_api::mesh::{PeerFileInfo, PeerFileRequest};
use futures::StreamExt;

use crate::backends::PeerLink;
use crate::ops::files::inside;
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// The size of one part (minimega's).
pub const PART: u64 = 10 << 20;

/// Files fetched at the same time.
const IN_FLIGHT: usize = 3;

/// Attempts per part.
const ATTEMPTS: usize = 3;

/// Where parts are staged, inside the files directory (hidden from `file list` globs).
const STAGING: &str = ".ferromega-transfers";

/// A transfer in flight, as `file status` shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transfer {
    /// The staging folder.
    pub tempdir: String,
    /// Parts fetched.
    pub completed: u64,
    /// Parts in the file.
    pub queued: u64,
}

/// Files under `root` matching `pattern`, directories walked, as paths relative to `root`.
pub(crate) fn matching_files(root: &Path, pattern: &str) -> DomainResult<Vec<PeerFileInfo>> {
    let full = inside(root, pattern)?;
    let paths = glob::glob(&full.to_string_lossy()).map_err(DomainError::invalid)?;
    let mut out = Vec::new();
    let mut stack: Vec<PathBuf> = paths.filter_map(Result::ok).collect();
    while let Some(p) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&p) else {
            continue;
        };
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .to_string_lossy()
            .into_owned();
        if rel.starts_with(STAGING) {
            continue;
        }
        if meta.is_dir() {
            if let Ok(rd) = std::fs::read_dir(&p) {
                stack.extend(rd.filter_map(Result::ok).map(|e| e.path()));
            }
        } else if meta.is_file() {
            out.push(PeerFileInfo {
                path: rel,
                size: meta.len(),
            });
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// Reads `length` bytes at `offset` of `path` under `root` (less at the end of the file).
pub(crate) fn read_part(
    root: &Path,
    path: &str,
    offset: u64,
    length: u64,
) -> DomainResult<Vec<u8>> {
    let full = inside(root, path)?;
    let length = length.min(PART);
    let mut f = std::fs::File::open(&full)
        .map_err(|_| DomainError::NotFound("file not found".to_string()))?;
    f.seek(SeekFrom::Start(offset))
        .map_err(|e| DomainError::Host(e.to_string()))?;
    let mut buf = Vec::with_capacity(length as usize);
    f.take(length)
        .read_to_end(&mut buf)
        .map_err(|e| DomainError::Host(e.to_string()))?;
    Ok(buf)
}

/// `path` moved from below `from` to below `to` (unchanged when not below `from`);
/// the part after a `,` (disk options) is kept.
fn rebase(path: &str, from: &Path, to: &Path) -> (String, Option<String>) {
    let (file, opts) = match path.split_once(',') {
        Some((f, o)) => (f, Some(o)),
        None => (path, None),
    };
    let Ok(rel) = Path::new(file).strip_prefix(from) else {
        return (path.to_string(), None);
    };
    let moved = to.join(rel).display().to_string();
    let rel = rel.display().to_string();
    match opts {
        Some(o) => (format!("{moved},{o}"), Some(rel)),
        None => (moved, Some(rel)),
    }
}

impl ControlPlane {
    /// Points a launch's kernel, initrd, cdrom, disks and filesystem below the sender's
    /// files directory `from` at this host's, fetching from the mesh what is missing
    /// here (minimega fetches a launch's files the same way).
    pub(crate) async fn localize_files(
        &self,
        config: &mut crate::vm::config::VmConfig,
        from: &str,
    ) -> DomainResult<()> {
        if from.is_empty() || Path::new(from) == self.files_dir() {
            return Ok(());
        }
        let from = PathBuf::from(from);
        let to = self.files_dir().to_path_buf();
        let mut wanted = Vec::new();
        let singles = [
            &mut config.kernel,
            &mut config.initrd,
            &mut config.cdrom,
            &mut config.filesystem,
        ];
        for p in singles.into_iter().chain(config.disk.iter_mut()) {
            let (moved, rel) = rebase(p, &from, &to);
            *p = moved;
            wanted.extend(rel);
        }
        for rel in wanted {
            if !inside(&to, &rel)?.exists() {
                self.file_get_from_peers(&rel).await?;
            }
        }
        Ok(())
    }

    /// Answers a peer's file question: the matching files here, or — for a host beyond
    /// this one — that host's answer, asked through the next hop.
    pub async fn peer_file_info(&self, req: &PeerFileRequest) -> DomainResult<Vec<PeerFileInfo>> {
        if let Some((to, fwd)) = self.passed_on(req) {
            return self
                .file_info_of(&to, &fwd)
                .await
                .map_err(DomainError::Host);
        }
        matching_files(self.files_dir(), &req.path)
    }

    /// The bytes of one part of one file of the files directory (or of a host beyond
    /// this one, asked through the next hop).
    pub async fn peer_file_part(&self, req: &PeerFileRequest) -> DomainResult<Vec<u8>> {
        if let Some((to, fwd)) = self.passed_on(req) {
            return self
                .file_part_of(&to, &fwd)
                .await
                .map_err(DomainError::Host);
        }
        read_part(
            self.files_dir(),
            &req.path,
            req.offset.unwrap_or(0),
            req.length,
        )
    }

    /// A question for another host, and the question to pass on to it.
    fn passed_on(&self, req: &PeerFileRequest) -> Option<(String, PeerFileRequest)> {
        let to = req.to.clone().filter(|to| to != self.host())?;
        let fwd = PeerFileRequest {
            hops: req.hops + 1,
            ..req.clone()
        };
        Some((to, fwd))
    }

    /// The question as sent toward `host` (a peer, or a host beyond through the next
    /// hop) and the address to send it to.
    fn file_hop(
        &self,
        host: &str,
        req: &PeerFileRequest,
    ) -> Result<(Arc<dyn PeerLink>, String, PeerFileRequest), String> {
        let (link, via, addr) = self.route_to(host, req.hops)?;
        let req = PeerFileRequest {
            to: (via != host).then(|| host.to_string()),
            ..req.clone()
        };
        Ok((link, addr, req))
    }

    /// Which of `host`'s files match the question's glob.
    async fn file_info_of(
        &self,
        host: &str,
        req: &PeerFileRequest,
    ) -> Result<Vec<PeerFileInfo>, String> {
        let (link, addr, req) = self.file_hop(host, req)?;
        link.file_info(&addr, &req).await
    }

    /// One part of one of `host`'s files.
    async fn file_part_of(&self, host: &str, req: &PeerFileRequest) -> Result<Vec<u8>, String> {
        let (link, addr, req) = self.file_hop(host, req)?;
        link.file_part(&addr, &req).await
    }

    /// The transfers in flight: (file, transfer).
    pub(crate) fn transfers(&self) -> Vec<(String, Transfer)> {
        lock(&self.inner.mesh)
            .transfers
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// Fetches the files matching `pattern` from the hosts that have them (the peers
    /// that answer and the hosts beyond them); waits until every file is here (or one
    /// failed).
    pub(crate) async fn file_get_from_peers(&self, pattern: &str) -> DomainResult<()> {
        let hosts: Vec<String> = lock(&self.inner.mesh).next_hops().into_keys().collect();
        let req = PeerFileRequest {
            path: pattern.to_string(),
            offset: None,
            length: 0,
            ..PeerFileRequest::default()
        };
        let asks = hosts.iter().map(|name| {
            let req = &req;
            async move { (name.clone(), self.file_info_of(name, req).await) }
        });
        // Which hosts have each file (by path), with its size.
        let mut have: BTreeMap<String, (u64, Vec<String>)> = BTreeMap::new();
        for (name, r) in futures::future::join_all(asks).await {
            match r {
                Ok(files) => {
                    for f in files {
                        have.entry(f.path)
                            .or_insert((f.size, Vec::new()))
                            .1
                            .push(name.clone());
                    }
                }
                Err(e) => tracing::warn!("file get: {name} did not answer: {e}"),
            }
        }
        if have.is_empty() {
            return Err(DomainError::NotFound("file not found".to_string()));
        }
        let results: Vec<DomainResult<()>> = futures::stream::iter(have)
            .map(|(path, (size, sources))| async move { self.fetch(&path, size, &sources).await })
            .buffer_unordered(IN_FLIGHT)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Fetches one file in parts (from the hosts `sources`) into staging, then moves it
    /// into place.
    async fn fetch(&self, path: &str, size: u64, sources: &[String]) -> DomainResult<()> {
        let dest = inside(self.files_dir(), path)?;
        let stage_dir = self
            .files_dir()
            .join(STAGING)
            .join(uuid::Uuid::new_v4().to_string());
        let parts = size.div_ceil(PART).max(1);
        lock(&self.inner.mesh).transfers.insert(
            path.to_string(),
            Transfer {
                tempdir: stage_dir.display().to_string(),
                completed: 0,
                queued: parts,
            },
        );
        let r = self
            .fetch_parts(path, size, sources, &stage_dir, &dest)
            .await;
        lock(&self.inner.mesh).transfers.remove(path);
        let _ = std::fs::remove_dir_all(&stage_dir);
        // The staging root goes too once no transfer uses it.
        let _ = std::fs::remove_dir(self.files_dir().join(STAGING));
        r
    }

    async fn fetch_parts(
        &self,
        path: &str,
        size: u64,
        sources: &[String],
        stage_dir: &Path,
        dest: &Path,
    ) -> DomainResult<()> {
        let host_err = |e: std::io::Error| DomainError::Host(format!("{path}: {e}"));
        std::fs::create_dir_all(stage_dir).map_err(host_err)?;
        let staged = stage_dir.join("file");
        let mut out = std::fs::File::create(&staged).map_err(host_err)?;
        let parts = size.div_ceil(PART).max(1);
        for part in 0..parts {
            let req = PeerFileRequest {
                path: path.to_string(),
                offset: Some(part * PART),
                length: PART,
                ..PeerFileRequest::default()
            };
            let mut last = String::new();
            let mut got = None;
            for attempt in 0..ATTEMPTS {
                let host = &sources[(part as usize + attempt) % sources.len()];
                match self.file_part_of(host, &req).await {
                    Ok(bytes) => {
                        got = Some(bytes);
                        break;
                    }
                    Err(e) => last = e,
                }
            }
            let bytes = got.ok_or_else(|| {
                DomainError::Host(format!("{path}: part {part} failed 3 times: {last}"))
            })?;
            out.write_all(&bytes).map_err(host_err)?;
            if let Some(t) = lock(&self.inner.mesh).transfers.get_mut(path) {
                t.completed = part + 1;
            }
        }
        out.sync_all().map_err(host_err)?;
        let written = out.metadata().map_err(host_err)?.len();
        if written != size {
            return Err(DomainError::Host(format!(
                "{path}: got {written} bytes, want {size}"
            )));
        }
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(host_err)?;
        }
        std::fs::rename(&staged, dest).map_err(host_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_recurse_and_staging_is_hidden() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("a/b")).unwrap();
        std::fs::create_dir_all(d.path().join(STAGING)).unwrap();
        std::fs::write(d.path().join("a/x"), "12").unwrap();
        std::fs::write(d.path().join("a/b/y"), "123").unwrap();
        std::fs::write(d.path().join(STAGING).join("z"), "1").unwrap();
        let got = matching_files(d.path(), "a").unwrap();
        let names: Vec<(&str, u64)> = got.iter().map(|f| (f.path.as_str(), f.size)).collect();
        assert_eq!(names, [("a/b/y", 3), ("a/x", 2)]);
        assert!(matching_files(d.path(), "*")
            .unwrap()
            .iter()
            .all(|f| !f.path.starts_with('.')));
    }

    #[test]
    fn paths_below_the_senders_files_move_below_ours() {
        let (from, to) = (Path::new("/a/files"), Path::new("/b/files"));
        assert_eq!(
            rebase("/a/files/img/d.qc2", from, to),
            ("/b/files/img/d.qc2".into(), Some("img/d.qc2".into()))
        );
        assert_eq!(
            rebase("/a/files/d.qc2,virtio", from, to),
            ("/b/files/d.qc2,virtio".into(), Some("d.qc2".into()))
        );
        assert_eq!(
            rebase("/elsewhere/k", from, to),
            ("/elsewhere/k".into(), None)
        );
        assert_eq!(rebase("", from, to), (String::new(), None));
    }

    #[test]
    fn parts_are_bounded_and_paths_stay_inside() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("f"), "hello world").unwrap();
        assert_eq!(read_part(d.path(), "f", 6, 100).unwrap(), b"world");
        assert!(read_part(d.path(), "../etc/passwd", 0, 10).is_err());
        assert!(matches!(
            read_part(d.path(), "nope", 0, 10),
            Err(DomainError::NotFound(_))
        ));
    }
}
