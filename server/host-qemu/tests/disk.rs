//! Host tests: the `qemu-img` wrappers against the real tool, in a temp directory.
//!
//! Needs `qemu-utils`; fails (never skips) without it.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};

use ferromega_host_qemu::disk::{self, DiskError};

/// A uniquely named scratch directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "fm-disk-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn require_qemu_img() {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("qemu-img").is_file()));
    assert!(
        found,
        "qemu-img not found in PATH: install qemu-utils \
         (apt-get install qemu-system-x86 qemu-utils, in one command)"
    );
}

#[tokio::test]
async fn create_then_info_reports_format_and_size() {
    require_qemu_img();
    let dir = Scratch::new();
    let img = dir.0.join("base.qcow2");
    disk::create("qcow2", &img, "16M").await.unwrap();
    let info = disk::info(&img).await.unwrap();
    assert_eq!(info.format, "qcow2");
    assert_eq!(info.virtual_size, 16 << 20);
    assert!(info.disk_size > 0, "{info:?}");
    assert_eq!(info.backing_file, None);

    let raw = dir.0.join("plain.raw");
    disk::create("raw", &raw, "1048576").await.unwrap();
    let info = disk::info(&raw).await.unwrap();
    assert_eq!((info.format.as_str(), info.virtual_size), ("raw", 1 << 20));
}

#[tokio::test]
async fn snapshot_records_backing_file_and_its_format() {
    require_qemu_img();
    let dir = Scratch::new();
    for (base, format) in [("base.raw", "raw"), ("base.qcow2", "qcow2")] {
        let base = dir.0.join(base);
        disk::create(format, &base, "8M").await.unwrap();
        let snap = dir.0.join(format!("snap-of-{format}.qcow2"));
        disk::snapshot(&base, &snap).await.unwrap();

        let info = disk::info(&snap).await.unwrap();
        assert_eq!(info.format, "qcow2");
        assert_eq!(info.virtual_size, 8 << 20);
        assert_eq!(info.backing_file.as_deref(), base.to_str());
        // The backing format was recorded (`-F`), so qemu-img does not probe it.
        let out = std::process::Command::new("qemu-img")
            .args(["info", "--output=json", "-U"])
            .arg(&snap)
            .output()
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["backing-filename-format"], format);
    }
}

#[tokio::test]
async fn failures_carry_qemu_img_stderr() {
    require_qemu_img();
    let dir = Scratch::new();
    let missing = dir.0.join("missing.qcow2");

    let err = disk::info(&missing).await.unwrap_err();
    assert!(matches!(err, DiskError::Failed { .. }), "{err:?}");
    let text = err.to_string();
    assert!(
        text.contains("missing.qcow2") && text.contains("No such file"),
        "{text}"
    );

    let err = disk::create("nosuchformat", &dir.0.join("x"), "1M")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nosuchformat"), "{err}");

    let err = disk::snapshot(&missing, &dir.0.join("snap.qcow2"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("No such file"), "{err}");
    assert!(!dir.0.join("snap.qcow2").exists());
}
