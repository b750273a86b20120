//! Host tests: the real `qemu-system-x86_64` accepts the argv we build (TCG, paused),
//! answers QMP on the instance socket and exposes the CD drive as `ide0-cd0`.
//!
//! Needs `qemu-system-x86` and `qemu-utils` installed; fails (never skips) without them.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use ferromega_domain::vm::config::VmConfig;
use ferromega_host_qemu::argv::{apply_overrides, build, Accel, ArgvInput, CDROM_ID};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::UnixStream;
use tokio::process::{Child, Command};

const QEMU: &str = "qemu-system-x86_64";

/// A running QEMU in its own instance directory; killed and removed on drop.
struct Instance {
    dir: PathBuf,
    child: Option<Child>,
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A fresh, uniquely named instance directory.
fn instance_dir() -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "fm-qemu-argv-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn require_qemu() {
    let found = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(QEMU).is_file()));
    assert!(
        found,
        "{QEMU} not found in PATH: install qemu-system-x86 \
         (apt-get install qemu-system-x86 qemu-utils, in one command)"
    );
}

/// Starts QEMU with the argv built for `config` (TCG) in `inst.dir`.
fn start(inst: &mut Instance, config: VmConfig) {
    let vm = common::test_vm(config);
    let input = ArgvInput {
        vm: &vm,
        instance_dir: &inst.dir,
        accel: Accel::Tcg,
        taps: &[],
        hugepages: None,
        nic_csum_off: false,
    };
    let argv = apply_overrides(&build(&input), &vm.config.qemu_override);
    let child = Command::new(QEMU)
        .args(&argv)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {QEMU}: {e}"));
    inst.child = Some(child);
}

/// Minimal QMP client: JSON lines, events skipped.
struct Qmp {
    lines: Lines<BufReader<OwnedReadHalf>>,
    tx: OwnedWriteHalf,
}

impl Qmp {
    /// Dials the instance's QMP socket (50 tries, 100 ms apart, like minimega),
    /// failing with QEMU's stderr if it exits first.
    async fn connect(inst: &mut Instance) -> Qmp {
        let path = inst.dir.join("qmp");
        for _ in 0..50 {
            if let Ok(stream) = UnixStream::connect(&path).await {
                let (rx, tx) = stream.into_split();
                let mut qmp = Qmp {
                    lines: BufReader::new(rx).lines(),
                    tx,
                };
                let greeting = qmp.read().await;
                assert!(greeting.get("QMP").is_some(), "greeting: {greeting}");
                let r = qmp.call("qmp_capabilities", json!({})).await;
                assert_eq!(r, json!({}), "qmp_capabilities");
                return qmp;
            }
            let child = inst.child.as_mut().unwrap();
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                let _ = child.stderr.take().unwrap().read_to_string(&mut err).await;
                panic!("{QEMU} exited ({status}) before QMP came up: {err}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no QMP socket at {}", path.display());
    }

    async fn read(&mut self) -> Value {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
                .await
                .expect("QMP reply within 10 s")
                .unwrap()
                .expect("QMP connection open");
            let v: Value = serde_json::from_str(&line).unwrap();
            if v.get("event").is_none() {
                return v;
            }
        }
    }

    /// Runs a command; returns its `return` value, panicking on `error`.
    async fn call(&mut self, cmd: &str, args: Value) -> Value {
        let req = json!({"execute": cmd, "arguments": args});
        self.tx
            .write_all(format!("{req}\n").as_bytes())
            .await
            .unwrap();
        let reply = self.read().await;
        match reply.get("return") {
            Some(r) => r.clone(),
            None => panic!("{cmd}: {reply}"),
        }
    }
}

fn devices(blocks: &Value) -> Vec<&str> {
    blocks
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|b| b["device"].as_str())
        .collect()
}

async fn stop(mut inst: Instance) {
    let mut child = inst.child.take().unwrap();
    child.kill().await.unwrap();
}

#[tokio::test]
async fn default_config_starts_paused_with_cdrom_ide0_cd0() {
    require_qemu();
    let mut inst = Instance {
        dir: instance_dir(),
        child: None,
    };
    start(&mut inst, VmConfig::default());
    let mut qmp = Qmp::connect(&mut inst).await;

    let status = qmp.call("query-status", json!({})).await;
    let state = status["status"].as_str().unwrap();
    assert!(
        matches!(state, "prelaunch" | "paused"),
        "status {state}, want prelaunch or paused"
    );
    assert_eq!(status["running"], json!(false));

    let blocks = qmp.call("query-block", json!({})).await;
    let cd = blocks
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["device"] == CDROM_ID)
        .unwrap_or_else(|| panic!("no {CDROM_ID} in {blocks}"));
    assert_eq!(cd["qdev"], json!(CDROM_ID), "device id");
    assert_eq!(cd["removable"], json!(true));
    // The explicit ide-cd suppresses QEMU's default second CD drive.
    assert!(!devices(&blocks).contains(&"ide1-cd0"), "{blocks}");

    let uuid = qmp.call("query-uuid", json!({})).await;
    assert_eq!(uuid["UUID"], json!(common::TEST_UUID));
    let vnc = qmp.call("query-vnc", json!({})).await;
    assert_eq!(vnc["family"], json!("unix"));
    assert!(inst.dir.join("cc").exists(), "backchannel socket");
    stop(inst).await;
}

#[tokio::test]
async fn ports_disks_and_cdrom_are_accepted_and_cdrom_can_be_changed() {
    require_qemu();
    let mut inst = Instance {
        dir: instance_dir(),
        child: None,
    };
    let file = |name: &str, len: u64| -> String {
        let p = inst.dir.join(name);
        fs::File::create(&p).unwrap().set_len(len).unwrap();
        p.to_string_lossy().into_owned()
    };
    let config = VmConfig {
        memory: 128,
        serial_ports: 2,
        virtio_ports: 31,
        snapshot: false,
        cdrom: file("cd.iso", 2048 * 16),
        disk: vec![
            file("a.raw", 1 << 20),
            file("b.raw", 1 << 20),
            file("c.raw", 1 << 20),
        ],
        ..VmConfig::default()
    };
    let other_cd = file("other.iso", 2048 * 16);
    start(&mut inst, config);
    let mut qmp = Qmp::connect(&mut inst).await;

    let blocks = qmp.call("query-block", json!({})).await;
    let names = devices(&blocks);
    for want in [CDROM_ID, "ide0-hd0", "ide0-hd1", "ide1-hd0"] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // `vm cdrom change` / `vm cdrom eject`, by qdev id and by block-backend name.
    for key in ["id", "device"] {
        qmp.call(
            "blockdev-change-medium",
            json!({key: CDROM_ID, "filename": other_cd, "format": "raw"}),
        )
        .await;
        let blocks = qmp.call("query-block", json!({})).await;
        let cd = blocks
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["device"] == CDROM_ID)
            .unwrap();
        assert_eq!(cd["inserted"]["file"], json!(other_cd), "{key}: {cd}");
        qmp.call("eject", json!({key: CDROM_ID, "force": true}))
            .await;
    }

    for sock in [
        "serial0",
        "serial1",
        "virtio-serial0",
        "virtio-serial30",
        "cc",
    ] {
        assert!(inst.dir.join(sock).exists(), "socket {sock}");
    }
    stop(inst).await;
}
