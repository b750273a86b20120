//! Test helpers shared by host-qemu's integration tests: VMs from golden JSON files.

// Each test binary uses only part of this module.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use ferromega_domain::vm::config::VmConfig;
use ferromega_domain::vm::registry::{Vm, VmState, VmType};
use ferromega_host_qemu::argv::Accel;
use serde_json::Value;

/// The UUID golden VMs get when their config presets none.
pub const TEST_UUID: &str = "5d0e64a4-0c4a-4a47-9a0f-6b7f2f7a1c11";
/// The id golden VMs get.
pub const TEST_ID: u64 = 7;

/// One golden case: the VM and the launch inputs that are not part of its config.
pub struct Case {
    /// The VM (id [`TEST_ID`], name `golden`).
    pub vm: Vm,
    /// `_taps`: tap of each NIC.
    pub taps: Vec<String>,
    /// `_accel`: `"kvm"` (default) or `"tcg"`.
    pub accel: Accel,
    /// `_hugepages`: hugetlbfs mount.
    pub hugepages: Option<PathBuf>,
}

/// A KVM VM in BUILDING with `config`.
pub fn test_vm(config: VmConfig) -> Vm {
    let uuid = if config.uuid.is_empty() {
        TEST_UUID.to_string()
    } else {
        config.uuid.clone()
    };
    Vm {
        id: TEST_ID,
        name: "golden".into(),
        namespace: "minimega".into(),
        host: "localhost".into(),
        state: VmState::Building,
        vm_type: VmType::Kvm,
        uuid,
        config,
        tags: BTreeMap::new(),
        launched_ms: 0,
        generation: 0,
        pid: 0,
        cc_active: false,
        hotplug: BTreeMap::new(),
        taps: Vec::new(),
        qos: BTreeMap::new(),
        ips: Vec::new(),
    }
}

/// Reads a golden JSON: a (partial) `VmConfig` in its serde form, laid over
/// `VmConfig::default()`, plus test inputs in keys starting with `_`.
pub fn case_from_json(text: &str) -> Case {
    let Value::Object(mut given) = serde_json::from_str(text).expect("golden json") else {
        panic!("golden json must be an object");
    };
    let taps: Vec<String> = given
        .remove("_taps")
        .map(|v| serde_json::from_value(v).expect("_taps: list of strings"))
        .unwrap_or_default();
    let accel = match given.remove("_accel").as_ref().and_then(Value::as_str) {
        None | Some("kvm") => Accel::Kvm,
        Some("tcg") => Accel::Tcg,
        Some(other) => panic!("_accel: unknown accelerator {other}"),
    };
    let hugepages = given
        .remove("_hugepages")
        .map(|v| PathBuf::from(v.as_str().expect("_hugepages: string")));
    if let Some(k) = given.keys().find(|k| k.starts_with('_')) {
        panic!("unknown test key {k}");
    }
    let Value::Object(mut config) = serde_json::to_value(VmConfig::default()).unwrap() else {
        unreachable!("VmConfig serialises to an object");
    };
    for (k, v) in given {
        assert!(config.contains_key(&k), "{k} is not a VmConfig field");
        config.insert(k, v);
    }
    let config: VmConfig = serde_json::from_value(Value::Object(config)).expect("VmConfig");
    Case {
        vm: test_vm(config),
        taps,
        accel,
        hugepages,
    }
}
