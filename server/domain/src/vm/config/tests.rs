//! Tests of `VmConfig`: every field's default, set and clear, Go's parse errors, path
//! resolution, netspecs, and the printout byte for byte against minimega's.
use super::*;
use ferromega_command::fields::{field, FIELDS};

const FILES: &str = "/tmp/minimega/files";

/// Runs `vm config <name>` with the given args in namespace `minimega`.
fn run(
    cfg: &mut VmConfig,
    vlans: &mut Vlans,
    name: &str,
    args: Args,
) -> Result<Option<String>, ConfigError> {
    let f = field(name).expect("field");
    let mut ctx = ConfigCtx {
        files_dir: Path::new(FILES),
        namespace: "minimega",
        vlans,
    };
    cfg.apply(f, &args, &mut ctx)
}

fn get(cfg: &mut VmConfig, name: &str) -> String {
    run(cfg, &mut Vlans::new(), name, Args::default())
        .expect("get")
        .expect("printed")
}

fn value(v: &str) -> Args {
    let mut a = Args::default();
    a.strings.insert("value".into(), v.into());
    a
}

fn list(key: &str, v: &[&str]) -> Args {
    let mut a = Args::default();
    a.lists
        .insert(key.into(), v.iter().map(|s| s.to_string()).collect());
    a
}

fn strings(pairs: &[(&str, &str)]) -> Args {
    let mut a = Args::default();
    for (k, v) in pairs {
        a.strings.insert(k.to_string(), v.to_string());
    }
    a
}

#[test]
fn every_field_prints_its_table_default_and_clears_back_to_it() {
    let mut cfg = VmConfig::default();
    for f in FIELDS {
        let printed = get(&mut cfg, f.name);
        let expected = match f.kind {
            FieldKind::List | FieldKind::PathList if !f.default.is_empty() => {
                format!("[{}]", f.default)
            }
            FieldKind::Net => "[]".to_string(),
            FieldKind::Override => "id\tmatch\treplacement\n".to_string(),
            _ => f.default.to_string(),
        };
        assert_eq!(printed, expected, "default of {}", f.name);
    }
    let mut changed = VmConfig::default();
    let mut vlans = Vlans::new();
    for f in FIELDS {
        let args = match f.kind {
            FieldKind::Str | FieldKind::Path | FieldKind::Uint | FieldKind::Int => value("7"),
            FieldKind::Bool => {
                let mut a = Args::default();
                a.bools.insert("false".into(), true);
                a
            }
            FieldKind::List | FieldKind::PathList => list("value", &["x"]),
            FieldKind::Net => list("netspec", &["7"]),
            FieldKind::Map => strings(&[("key", "k"), ("value", "v")]),
            FieldKind::Override => strings(&[("match", "m"), ("replacement", "r")]),
        };
        assert_eq!(
            run(&mut changed, &mut vlans, f.name, args),
            Ok(None),
            "set {}",
            f.name
        );
        assert_ne!(
            get(&mut changed, f.name),
            get(&mut cfg, f.name),
            "changed {}",
            f.name
        );
    }
    for f in FIELDS {
        changed.clear(f);
    }
    assert_eq!(changed, VmConfig::default());
}

#[test]
fn vm_config_want_sequence() {
    let (mut cfg, mut vlans) = (VmConfig::default(), Vlans::new());
    let err = run(&mut cfg, &mut vlans, "memory", value("foo")).map_err(|e| e.to_string());
    assert_eq!(
        err,
        Err("strconv.ParseUint: parsing \"foo\": invalid syntax".into())
    );
    assert_eq!(run(&mut cfg, &mut vlans, "memory", value("1024")), Ok(None));
    assert_eq!(get(&mut cfg, "memory"), "1024");
    for name in ["cdrom", "initrd", "kernel", "migrate", "qemu", "filesystem"] {
        assert_eq!(run(&mut cfg, &mut vlans, name, value("foo")), Ok(None));
        assert_eq!(get(&mut cfg, name), "/tmp/minimega/files/foo");
    }
    assert_eq!(run(&mut cfg, &mut vlans, "uuid", value("foo")), Ok(None));
    assert_eq!(get(&mut cfg, "uuid"), "foo");
    assert_eq!(
        run(&mut cfg, &mut vlans, "disk", list("value", &["a"])),
        Ok(None)
    );
    assert_eq!(get(&mut cfg, "disk"), "[/tmp/minimega/files/a]");
    assert_eq!(
        run(&mut cfg, &mut vlans, "disk", list("value", &["b", "c"])),
        Ok(None)
    );
    assert_eq!(
        get(&mut cfg, "disk"),
        "[/tmp/minimega/files/b /tmp/minimega/files/c]"
    );
    cfg.clear(field("disk").expect("disk"));
    assert_eq!(get(&mut cfg, "disk"), "");
    assert_eq!(
        run(
            &mut cfg,
            &mut vlans,
            "append",
            list("value", &["a", "b", "c"])
        ),
        Ok(None)
    );
    assert_eq!(get(&mut cfg, "append"), "[a b c]");
    let mut t = Args::default();
    t.bools.insert("true".into(), true);
    cfg.snapshot = false;
    assert_eq!(run(&mut cfg, &mut vlans, "snapshot", t), Ok(None));
    assert_eq!(get(&mut cfg, "snapshot"), "true");
}

#[test]
fn numbers_reproduce_go_strconv_errors() {
    let (mut cfg, mut vlans) = (VmConfig::default(), Vlans::new());
    let mut e = |name: &str, v: &str| {
        run(&mut cfg, &mut vlans, name, value(v))
            .map_err(|e| e.to_string())
            .err()
    };
    let range = "strconv.ParseUint: parsing \"99999999999999999999\": value out of range";
    assert_eq!(e("vcpus", "99999999999999999999").as_deref(), Some(range));
    assert_eq!(
        e("vcpus", "+1").as_deref(),
        Some("strconv.ParseUint: parsing \"+1\": invalid syntax")
    );
    assert_eq!(
        e("coschedule", "x\"y").as_deref(),
        Some("strconv.ParseInt: parsing \"x\\\"y\": invalid syntax")
    );
    assert_eq!(
        e("coschedule", "-99999999999999999999").as_deref(),
        Some("strconv.ParseInt: parsing \"-99999999999999999999\": value out of range")
    );
    assert_eq!(e("coschedule", "-1"), None);
    assert_eq!(e("coschedule", "+3"), None);
    assert_eq!(cfg.coschedule, 3);
}

#[test]
fn paths_resolve_by_pure_join() {
    let dir = Path::new(FILES);
    assert_eq!(resolve_path(dir, "./x"), "/tmp/minimega/files/x");
    assert_eq!(resolve_path(dir, "a//b/../c"), "/tmp/minimega/files/a/c");
    assert_eq!(resolve_path(dir, "../../../../x"), "/x");
    assert_eq!(resolve_path(dir, "/abs/./y"), "/abs/./y");
    assert_eq!(go_clean("a/../.."), "..");
    assert_eq!(go_clean(""), ".");
}

#[test]
fn net_parse_error_clears_the_whole_list() {
    let (mut cfg, mut vlans) = (VmConfig::default(), Vlans::new());
    assert_eq!(
        run(&mut cfg, &mut vlans, "net", list("netspec", &["A", "10"])),
        Ok(None)
    );
    assert_eq!(
        run(&mut cfg, &mut vlans, "net", Args::default()),
        Ok(Some("[mega_bridge,A (101) mega_bridge,10]".into()))
    );
    let err = run(
        &mut cfg,
        &mut vlans,
        "net",
        list("netspec", &["10", "br,1,bad"]),
    );
    assert_eq!(err, Err(NetspecError::InvalidDriver("bad".into()).into()));
    assert!(cfg.networks.is_empty());
}

#[test]
fn maps_and_overrides() {
    let (mut cfg, mut vlans) = (VmConfig::default(), Vlans::new());
    let set = strings(&[("key", "/data"), ("value", "data")]);
    assert_eq!(run(&mut cfg, &mut vlans, "volume", set), Ok(None));
    assert_eq!(
        get(&mut cfg, "volume"),
        "/data -> /tmp/minimega/files/data\n"
    );
    // The quirk: a key without value prints nothing.
    let key_only = strings(&[("key", "/data")]);
    assert_eq!(
        run(&mut cfg, &mut vlans, "volume", key_only),
        Ok(Some(String::new()))
    );
    for (k, v) in [("b", "2"), ("a", "<&>")] {
        run(
            &mut cfg,
            &mut vlans,
            "tags",
            strings(&[("key", k), ("value", v)]),
        )
        .ok();
    }
    assert_eq!(get(&mut cfg, "tags"), "a -> <&>\nb -> 2\n");
    assert_eq!(go_json(&cfg.tags), r#"{"a":"\u003c\u0026\u003e","b":"2"}"#);
    cfg.clear_tag("b");
    assert_eq!(cfg.tags.len(), 1);
    cfg.clear_tag("all");
    assert!(cfg.tags.is_empty());
    let o = strings(&[("match", "-m 2048"), ("replacement", "-m 4096")]);
    assert_eq!(run(&mut cfg, &mut vlans, "qemu-override", o), Ok(None));
    assert_eq!(
        get(&mut cfg, "qemu-override"),
        "id\tmatch\treplacement\n0\t\"-m 2048\"\t\"-m 4096\"\n"
    );
}

const DEFAULT_DISPLAY: &str = "VM configuration:
Memory:           2048
VCPUs:            1
Networks:         []
Snapshot:         true
UUID:             \nSchedule host:    \nCoschedule limit: -1
Backchannel:      true
Tags:             {}

KVM configuration:
Migrate Path:       \nDisk Paths:         []
CDROM Path:         \nKernel Path:        \nInitrd Path:        \nKernel Append:      []
QEMU Path:          \nQEMU Append:        []
SerialPorts:        0
Virtio-SerialPorts: 0

Container configuration:
Filesystem Path: \nHostname:        \nInit:            [/init]
Pre-init:        \nFIFOs:           0
Volumes:

";

#[test]
fn display_matches_vm_config_save_want() {
    let (mut cfg, mut vlans) = (VmConfig::default(), Vlans::new());
    assert_eq!(cfg.display("minimega", &vlans), DEFAULT_DISPLAY);
    let uuid = "9131e2a3-ad6b-4f38-b5ba-5ff2b19e32dc";
    run(&mut cfg, &mut vlans, "uuid", value(uuid)).ok();
    run(
        &mut cfg,
        &mut vlans,
        "net",
        list("netspec", &["10,b4:b6:76:69:68:68"]),
    )
    .ok();
    run(&mut cfg, &mut vlans, "vcpus", value("4")).ok();
    run(&mut cfg, &mut vlans, "memory", value("1024")).ok();
    run(
        &mut cfg,
        &mut vlans,
        "qemu-append",
        list("value", &["-k", "en-us"]),
    )
    .ok();
    let expected = DEFAULT_DISPLAY
        .replace("2048", "1024")
        .replace("VCPUs:            1", "VCPUs:            4")
        .replace(
            "Networks:         []",
            "Networks:         [mega_bridge,10,b4:b6:76:69:68:68]",
        )
        .replace("UUID:             ", &format!("UUID:             {uuid}"))
        .replace("QEMU Append:        []", "QEMU Append:        [-k en-us]");
    assert_eq!(cfg.display("minimega", &vlans), expected);
    run(
        &mut cfg,
        &mut vlans,
        "volume",
        strings(&[("key", "/d"), ("value", "/h")]),
    )
    .ok();
    assert!(cfg
        .display("minimega", &vlans)
        .ends_with("Volumes:\n    /d -> /h\n\n"));
}
