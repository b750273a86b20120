//! Golden tests of the QEMU argv builder, in the manner of Proxmox's cfg2cmd:
//! each `tests/golden/<case>.json` (a partial `VmConfig` plus `_taps`, `_accel`,
//! `_hugepages`) must build exactly `tests/golden/<case>.argv` (one argument a
//! line, after qemu-overrides). `UPDATE_GOLDEN=1 cargo test -p ferromega-host-qemu
//! --test golden` rewrites the `.argv` files; review the diff before committing.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers outside #[test] functions; a panic is the failure report"
)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use ferromega_host_qemu::argv::{apply_overrides, build, preview, ArgvInput};

/// The instance directory golden VMs use (`<base>/<id>` with the default base).
const INSTANCE_DIR: &str = "/tmp/ferromega/7";

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn render(json: &Path) -> String {
    let case = common::case_from_json(&fs::read_to_string(json).unwrap());
    let input = ArgvInput {
        vm: &case.vm,
        instance_dir: Path::new(INSTANCE_DIR),
        accel: case.accel,
        taps: &case.taps,
        hugepages: case.hugepages.as_deref(),
        nic_csum_off: false,
    };
    let argv = apply_overrides(&build(&input), &case.vm.config.qemu_override);
    argv.iter().map(|a| format!("{a}\n")).collect()
}

#[test]
fn every_golden_config_builds_its_argv() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| v == "1");
    let mut cases: Vec<PathBuf> = fs::read_dir(golden_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 12, "golden cases missing: {cases:?}");

    let mut failures = Vec::new();
    for json in &cases {
        let want_path = json.with_extension("argv");
        let got = render(json);
        if update {
            fs::write(&want_path, &got).unwrap();
            continue;
        }
        match fs::read_to_string(&want_path) {
            Ok(want) if want == got => {}
            Ok(want) => failures.push(format!(
                "{}: argv differs\n{}",
                want_path.display(),
                diff(&want, &got)
            )),
            Err(e) => failures.push(format!("{}: {e}", want_path.display())),
        }
    }
    assert!(
        failures.is_empty(),
        "{}\n(run with UPDATE_GOLDEN=1 to accept)",
        failures.join("\n")
    );
}

#[test]
fn every_argv_file_has_a_config() {
    for entry in fs::read_dir(golden_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "argv") {
            assert!(
                path.with_extension("json").exists(),
                "{} has no .json",
                path.display()
            );
        }
    }
}

#[test]
fn preview_matches_minimega_before_and_after_lines() {
    let case = common::case_from_json(
        r#"{"networks": [{"bridge": "mega_bridge", "vlan": 1, "alias": null,
            "mac": "", "driver": "e1000", "raw": "1"}],
            "qemu_override": [["-m 2048", "-m 512"]]}"#,
    );
    let (before, after) = preview(&case.vm, ferromega_host_qemu::argv::Accel::Kvm);
    let before = before.join(" ");
    assert!(before.starts_with("-name 0 -m 2048 -nographic -vnc unix:vnc -smp 1 -qmp unix:qmp,"));
    assert!(before.contains(" -pidfile qemu.pid "));
    assert!(before.contains(
        " -netdev tap,id=,script=no,ifname=,downscript=no -device driver=e1000,netdev=,bus=pci.1,addr=0x1 "
    ));
    assert!(before.contains(" -chardev socket,id=charvserialCC,path=cc,server=on,wait=off "));
    assert_eq!(after.join(" "), before.replace("-m 2048", "-m 512"));
}

/// A line diff good enough to spot a changed argument.
fn diff(want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let mut out = String::new();
    for i in 0..w.len().max(g.len()) {
        let (a, b) = (w.get(i).copied(), g.get(i).copied());
        if a != b {
            out.push_str(&format!(
                "  line {}: want {:?}, got {:?}\n",
                i + 1,
                a.unwrap_or("<none>"),
                b.unwrap_or("<none>")
            ));
        }
    }
    out
}

#[test]
fn nics_on_a_userspace_switch_turn_virtio_checksum_offload_off() {
    let json = fs::read_to_string(golden_dir().join("nics-3.json")).unwrap();
    let case = common::case_from_json(&json);
    let input = ArgvInput {
        vm: &case.vm,
        instance_dir: Path::new(INSTANCE_DIR),
        accel: case.accel,
        taps: &case.taps,
        hugepages: None,
        nic_csum_off: true,
    };
    let nics: Vec<String> = build(&input)
        .into_iter()
        .filter(|a| a.starts_with("driver="))
        .collect();
    assert_eq!(
        nics,
        [
            "driver=e1000,netdev=mega_tap0,mac=00:11:22:33:44:01,bus=pci.1,addr=0x1",
            "driver=virtio-net-pci,netdev=mega_tap1,mac=00:11:22:33:44:02,csum=off,\
             guest_csum=off,bus=pci.1,addr=0x2",
            "driver=e1000e,netdev=mega_tap2,mac=00:11:22:33:44:03,bus=pci.1,addr=0x3",
        ]
    );
}
