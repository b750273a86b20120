//! Script tests: every `tests/scripts/<name>.mm` runs through the minitest-compatible
//! runner against a [`TestApp`] and its output must equal `<name>.want`.
//!
//! The wants say what minimega 2.4 prints (reasoned from the reference), not what
//! ferromega happens to print. Where ferromega differs today, the script is listed in
//! [`KNOWN_DIFFERENCES`] with the reason: the test fails when such a script passes
//! (remove it from the list) and when any other script differs.
//!
//! `prolog` (`.annotate false`, `clear history`) runs before and `epilog` (`clear all`)
//! after every script, as minimega's test suite does. The server's preprocessor has
//! `files` set to its files directory, so scripts name paths as `$files/x`; the
//! placeholder `@FILES@` in a `.mm` or `.want` stands for that directory too (for
//! commands the preprocessor does not reach and for printed paths). Scripts run in a
//! copy of the folder, so no `.got` lands in the source tree; set
//! `FERROMEGA_SCRIPTS=<regex>` to run only some of them.

use std::path::Path;

use ferromega_cli::minitest::Runner;
use ferromega_tests::{expand_files, TestApp};

/// Scripts whose output differs from minimega 2.4's today, with the reason.
const KNOWN_DIFFERENCES: &[(&str, &str)] = &[
    (
        "namespace_listing",
        "a namespace without its own VLAN range lists the global range instead of an empty cell",
    ),
    (
        "vm_launch_container_without_filesystem",
        "the container is created in ERROR instead of failing creation (it is listed by vm info)",
    ),
    (
        "vm_tag_read_ignores_target",
        "2.4 quirk (fixed in 2.5) not reproduced: reading tags honours the target",
    ),
    (
        "clear_vm_tag_named_clears_all",
        "2.4 quirk (fixed later) not reproduced: clear vm tag <vm> <tag> removes only that tag",
    ),
];

/// A line diff of `want` and `got` (longest common subsequence), `-` want, `+` got.
fn diff(want: &str, got: &str) -> String {
    let a: Vec<&str> = want.lines().collect();
    let b: Vec<&str> = got.lines().collect();
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            i += 1;
            j += 1;
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        } else {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        }
    }
    out
}

/// Copies the scripts to `dst`, replacing `@FILES@` with `files_dir`.
fn copy_scripts(src: &Path, dst: &Path, files_dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(src).expect("read tests/scripts") {
        let path = entry.expect("a directory entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("a UTF-8 file name")
            .to_string();
        if name.ends_with(".got") || !path.is_file() {
            continue;
        }
        let text = std::fs::read_to_string(&path).expect("read a script file");
        std::fs::write(dst.join(&name), expand_files(&text, files_dir)).expect("copy a script");
        if let Some(stem) = name.strip_suffix(".mm") {
            names.push(stem.to_string());
        }
    }
    names.sort();
    names
}

#[tokio::test]
async fn scripts_print_what_minimega_prints() {
    let app = TestApp::builder().files_env().spawn().await;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let work = tempfile::Builder::new()
        .prefix("ferromega-scripts-")
        .tempdir()
        .expect("a temporary directory");
    let names = copy_scripts(&src, work.path(), &app.files_dir);
    assert!(names.len() >= 30, "only {} scripts found", names.len());

    let filter = std::env::var("FERROMEGA_SCRIPTS").ok().map(|re| {
        ferromega_cli::minitest::Regex::new(&re).expect("FERROMEGA_SCRIPTS is a regular expression")
    });
    let runner = Runner::new(app.client.clone(), filter.clone());
    runner
        .run_dir(work.path())
        .await
        .expect("the runner completes");

    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let mut known = Vec::new();
    for name in &names {
        if filter.as_ref().is_some_and(|re| !re.is_match(name)) {
            continue;
        }
        let got = std::fs::read_to_string(work.path().join(format!("{name}.got")))
            .unwrap_or_else(|e| format!("(no output: {e})"));
        let want = std::fs::read_to_string(work.path().join(format!("{name}.want")))
            .unwrap_or_else(|e| format!("(no want: {e})"));
        let reason = KNOWN_DIFFERENCES
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, r)| *r);
        match (got == want, reason) {
            (true, None) => {}
            (true, Some(_)) => fixed.push(name.clone()),
            (false, Some(r)) => known.push(format!("{name}: {r}\n{}", diff(&want, &got))),
            (false, None) => unexpected.push(format!(
                "{name}.mm differs (- want, + got):\n{}",
                diff(&want, &got)
            )),
        }
    }
    if !known.is_empty() {
        println!(
            "known differences from minimega 2.4:\n  {}",
            known.join("\n  ")
        );
    }
    assert!(
        unexpected.is_empty() && fixed.is_empty(),
        "scripts that differ from their .want:\n{}\n\
         scripts listed in KNOWN_DIFFERENCES that now pass (remove them): {fixed:?}",
        unexpected.join("\n")
    );
}

#[test]
fn every_script_has_a_want_and_every_known_difference_a_script() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    let mut missing = Vec::new();
    let mut scripts = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("read tests/scripts") {
        let name = entry
            .expect("a directory entry")
            .file_name()
            .to_string_lossy()
            .into_owned();
        if let Some(stem) = name.strip_suffix(".mm") {
            scripts.push(stem.to_string());
            if !dir.join(format!("{stem}.want")).is_file() {
                missing.push(stem.to_string());
            }
        }
    }
    assert!(missing.is_empty(), "scripts without a .want: {missing:?}");
    for (name, _) in KNOWN_DIFFERENCES {
        assert!(
            scripts.iter().any(|s| s == name),
            "KNOWN_DIFFERENCES names {name}, which has no script"
        );
    }
    assert!(dir.join("prolog").is_file() && dir.join("epilog").is_file());
}
