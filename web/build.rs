//! Embeds the dashboard's static files into the server: our own (`web/static/`) and the
//! front-end libraries `npm ci` installed from `web/package-lock.json` (noVNC, xterm.js,
//! uPlot). Writes `$OUT_DIR/assets.rs`, a table of `(url path, include_bytes!(file))`.
//!
//! Without `web/node_modules` the server still builds, with a warning, and serves its
//! pages without those libraries (the VNC console and graphs then say so).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// (URL prefix, folder under `web/`, extensions to take) of each embedded tree.
const TREES: &[(&str, &str, &[&str])] = &[
    ("", "static", &["js", "css", "svg", "png", "ico"]),
    ("novnc/core/", "node_modules/@novnc/novnc/core", &["js"]),
    ("novnc/vendor/", "node_modules/@novnc/novnc/vendor", &["js"]),
    ("xterm/", "node_modules/@xterm/xterm/lib", &["mjs"]),
    ("xterm/", "node_modules/@xterm/xterm/css", &["css"]),
    ("uplot/", "node_modules/uplot/dist", &["js", "css"]),
];

/// The files the npm packages must provide for the dashboard to be complete.
const REQUIRED: &[&str] = &["novnc/core/rfb.js", "xterm/xterm.mjs", "uplot/uPlot.esm.js"];

fn walk(dir: &Path, exts: &[&str], out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, exts, out);
        } else if p
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| exts.contains(&x))
        {
            out.push(p);
        }
    }
}

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into()));
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| ".".into()));
    println!("cargo:rerun-if-changed=static");
    println!("cargo:rerun-if-changed=package-lock.json");
    println!("cargo:rerun-if-changed=node_modules/.package-lock.json");
    let mut table = String::from("&[\n");
    let mut names = Vec::new();
    for (prefix, folder, exts) in TREES {
        let base = root.join(folder);
        let mut files = Vec::new();
        walk(&base, exts, &mut files);
        files.sort();
        for f in files {
            let Ok(rel) = f.strip_prefix(&base) else {
                continue;
            };
            let url = format!("{prefix}{}", rel.to_string_lossy());
            let _ = writeln!(
                table,
                "    ({url:?}, include_bytes!({:?})),",
                f.to_string_lossy()
            );
            names.push(url);
        }
    }
    table.push(']');
    let missing: Vec<&&str> = REQUIRED
        .iter()
        .filter(|r| !names.iter().any(|n| n == **r))
        .collect();
    if !missing.is_empty() {
        println!(
            "cargo:warning=web/node_modules lacks {missing:?}: run `npm ci` in web/ (the VNC \
             console, terminal and graphs need them), then rebuild"
        );
    }
    let code = format!(
        "/// Every embedded static file: (path under `/static/`, contents).\n\
         pub(crate) static ASSETS: &[(&str, &[u8])] = {table};\n"
    );
    if let Err(e) = std::fs::write(out_dir.join("assets.rs"), code) {
        panic!("cannot write assets.rs: {e}");
    }
}
