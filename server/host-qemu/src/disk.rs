//! host-qemu: `disk create`, `disk snapshot` and `disk info` as `qemu-img` runs (argument vectors, never a shell).

use std::ffi::OsString;
use std::path::Path;

use serde_json::Value;
use thiserror::Error;
use tokio::process::Command;

/// The image tool, looked up in PATH.
const QEMU_IMG: &str = "qemu-img";

/// Errors of the `qemu-img` wrappers.
#[derive(Debug, Error)]
pub enum DiskError {
    /// `qemu-img` could not be started (usually: not installed).
    #[error("unable to run qemu-img: {0}")]
    Spawn(#[from] std::io::Error),
    /// `qemu-img` ran and failed; the text is what it printed on stderr.
    #[error("{stderr}")]
    Failed {
        /// Its standard error, trimmed (e.g. `qemu-img: x: Could not open 'x': …`).
        stderr: String,
        /// Its exit code, `None` when killed by a signal.
        code: Option<i32>,
    },
    /// An image path that cannot be made absolute (empty).
    #[error("invalid image path: {0}")]
    InvalidPath(String),
    /// `qemu-img info --output=json` printed something we cannot read.
    #[error("unexpected qemu-img info output: {0}")]
    Parse(String),
}

/// What `qemu-img info` says about an image (`disk info`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskInfo {
    /// Image format (`qcow2`, `raw`, …).
    pub format: String,
    /// Size the guest sees, in bytes.
    pub virtual_size: u64,
    /// Space the image takes on the host, in bytes (0 when qemu-img cannot tell).
    pub disk_size: u64,
    /// The backing file as recorded in the image, if any.
    pub backing_file: Option<String>,
}

/// `qemu-img create -f <format> <path> <size>`; `size` is qemu-img's syntax (`512M`, `10G`, bytes).
pub async fn create(format: &str, path: &Path, size: &str) -> Result<(), DiskError> {
    run([
        "create".into(),
        "-f".into(),
        format.into(),
        path.into(),
        size.into(),
    ])
    .await?;
    Ok(())
}

/// Creates `dst` as a qcow2 overlay backed by `src`.
///
/// Modern qemu-img refuses to guess the backing format, so it is read from `src`
/// first and passed as `-F`. A relative `src` is made absolute, because qemu-img
/// would otherwise resolve it against `dst`'s directory.
pub async fn snapshot(src: &Path, dst: &Path) -> Result<(), DiskError> {
    let backing = std::path::absolute(src)
        .map_err(|e| DiskError::InvalidPath(format!("{}: {e}", src.display())))?;
    let format = info(&backing).await?.format;
    run([
        "create".into(),
        "-f".into(),
        "qcow2".into(),
        "-b".into(),
        backing.into(),
        "-F".into(),
        format.into(),
        dst.into(),
    ])
    .await?;
    Ok(())
}

/// `qemu-img info --output=json -U <path>`.
///
/// `-U` (force share) lets it read an image that a running VM holds open,
/// which modern QEMU otherwise refuses with a lock error.
pub async fn info(path: &Path) -> Result<DiskInfo, DiskError> {
    let out = run([
        "info".into(),
        "--output=json".into(),
        "-U".into(),
        path.into(),
    ])
    .await?;
    parse_info(&out)
}

/// Reads the JSON `qemu-img info` prints.
fn parse_info(json: &str) -> Result<DiskInfo, DiskError> {
    let v: Value = serde_json::from_str(json).map_err(|e| DiskError::Parse(e.to_string()))?;
    let format = v
        .get("format")
        .and_then(Value::as_str)
        .ok_or_else(|| DiskError::Parse("no format".into()))?
        .to_string();
    let virtual_size = v
        .get("virtual-size")
        .and_then(Value::as_u64)
        .ok_or_else(|| DiskError::Parse("no virtual-size".into()))?;
    let disk_size = v.get("actual-size").and_then(Value::as_u64).unwrap_or(0);
    let backing_file = v
        .get("backing-filename")
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(DiskInfo {
        format,
        virtual_size,
        disk_size,
        backing_file,
    })
}

/// Runs `qemu-img <args>` and returns its stdout, or its stderr as the error.
async fn run<const N: usize>(args: [OsString; N]) -> Result<String, DiskError> {
    let out = Command::new(QEMU_IMG)
        .args(args)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(DiskError::Failed {
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            code: out.status.code(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_info_reads_qemu_img_json() {
        let json = r#"{
            "virtual-size": 1048576, "filename": "/x/snap.qcow2", "cluster-size": 65536,
            "format": "qcow2", "actual-size": 200704, "backing-filename": "/x/base.qcow2",
            "full-backing-filename": "/x/base.qcow2", "backing-filename-format": "qcow2",
            "dirty-flag": false
        }"#;
        assert_eq!(
            parse_info(json).unwrap(),
            DiskInfo {
                format: "qcow2".into(),
                virtual_size: 1_048_576,
                disk_size: 200_704,
                backing_file: Some("/x/base.qcow2".into()),
            }
        );
    }

    #[test]
    fn parse_info_rejects_garbage() {
        assert!(matches!(parse_info("nope"), Err(DiskError::Parse(_))));
        assert!(matches!(
            parse_info(r#"{"virtual-size": 1}"#),
            Err(DiskError::Parse(_))
        ));
    }
}
