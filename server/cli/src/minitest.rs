//! `ferromega test`: a minitest-compatible runner. Each extension-less file of a folder is a
//! script; its output (`## line`, `E: error`, rendered text) goes to `<name>.got` and is
//! compared byte for byte with `<name>.want`.

use std::path::{Path, PathBuf};

use ferromega_api::CommandReply;
use ferromega_client::Client;
pub use regex::Regex;

/// Files that are not tests.
const SPECIAL: &[&str] = &["prolog", "epilog", "enter", "exit"];

/// A script's name without its `.mm` extension (minimega's scripts have none).
fn stem(name: &str) -> &str {
    name.strip_suffix(".mm").unwrap_or(name)
}

/// Whether a file is a script: no extension (minitest's convention) or `.mm`, not one of
/// the special files, not a hidden file.
fn is_script(name: &str) -> bool {
    let stem = stem(name);
    !name.starts_with('.')
        && !stem.contains('.')
        && !name.ends_with("got")
        && !name.ends_with("want")
        && !SPECIAL.contains(&stem)
}

/// Totals of a run.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Scripts whose output matched.
    pub passed: usize,
    /// Scripts whose output differed (or had no `.want`).
    pub failed: usize,
}

/// Appends minitest's rendering of one reply: one `E: ` line per error, then the text.
pub fn append_reply(out: &mut String, reply: &CommandReply) {
    for b in &reply.batches {
        for r in b.resp.iter().filter(|r| !r.error.is_empty()) {
            out.push_str("E: ");
            out.push_str(&r.error);
            out.push('\n');
        }
        if !b.rendered.is_empty() {
            out.push_str(&b.rendered);
            out.push('\n');
        }
    }
}

/// The runner: a client and where output goes.
pub struct Runner {
    client: Client,
    filter: Option<Regex>,
}

impl Runner {
    /// A runner against `client`, running scripts whose names match `run` (all when None).
    pub fn new(client: Client, run: Option<Regex>) -> Self {
        Runner {
            client,
            filter: run,
        }
    }

    /// Runs every line of `path` in one session and returns minitest's output.
    async fn run_script(&self, path: &Path) -> anyhow::Result<String> {
        let text = std::fs::read_to_string(path)?;
        let mut out = String::new();
        let mut ns = "minimega".to_string();
        for line in text.lines() {
            if line.is_empty() {
                out.push('\n');
                continue;
            }
            out.push_str("## ");
            out.push_str(line);
            out.push('\n');
            let reply = self.client.command(&ns, line).await?;
            append_reply(&mut out, &reply);
            ns = reply.namespace;
        }
        Ok(out)
    }

    /// Runs `name` of `dir` if it exists, discarding its output.
    async fn run_quiet(&self, dir: &Path, name: &str) -> anyhow::Result<()> {
        let path = dir.join(name);
        if path.is_file() {
            self.run_script(&path).await?;
        }
        Ok(())
    }

    /// Runs the tests of `dir` (and its sub-folders, after its files) and returns the tally.
    pub async fn run_dir(&self, dir: &Path) -> anyhow::Result<Tally> {
        let mut tally = Tally::default();
        let mut files: Vec<PathBuf> = Vec::new();
        let mut dirs: Vec<PathBuf> = Vec::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            if name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                dirs.push(path);
            } else if is_script(&name)
                && self
                    .filter
                    .as_ref()
                    .is_none_or(|re| re.is_match(stem(&name)))
            {
                files.push(path);
            }
        }
        files.sort();
        dirs.sort();
        let enter = dir.join("enter");
        if enter.is_file() {
            std::fs::write(dir.join("enter.got"), self.run_script(&enter).await?)?;
        }
        for file in files {
            self.run_quiet(dir, "prolog").await?;
            let got = self.run_script(&file).await?;
            self.run_quiet(dir, "epilog").await?;
            let name = file
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default()
                .to_string();
            let name = stem(&name).to_string();
            std::fs::write(dir.join(format!("{name}.got")), &got)?;
            let want = std::fs::read_to_string(dir.join(format!("{name}.want"))).ok();
            if want.as_deref() == Some(got.as_str()) {
                tally.passed += 1;
            } else {
                println!("got != want for {name}");
                tally.failed += 1;
            }
        }
        let exit = dir.join("exit");
        if exit.is_file() {
            std::fs::write(dir.join("exit.got"), self.run_script(&exit).await?)?;
        }
        for sub in dirs {
            let t = Box::pin(self.run_dir(&sub)).await?;
            tally.passed += t.passed;
            tally.failed += t.failed;
        }
        Ok(tally)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferromega_api::{Batch, Response};

    #[test]
    fn errors_come_before_the_rendered_text() {
        let reply = CommandReply {
            batches: vec![Batch {
                resp: vec![Response::error("h", "boom")],
                rendered: "text".into(),
            }],
            namespace: "minimega".into(),
        };
        let mut out = String::new();
        append_reply(&mut out, &reply);
        assert_eq!(out, "E: boom\ntext\n");
    }

    #[test]
    fn scripts_are_bare_names_or_mm_files() {
        assert!(is_script("vm_config"));
        assert!(is_script("builtins.mm"));
        assert!(!is_script("vm_config.want"));
        assert!(!is_script("vm_config.got"));
        assert!(!is_script("prolog"));
        assert!(!is_script(".hidden"));
    }

    #[test]
    fn empty_rendering_prints_nothing() {
        let reply = CommandReply {
            batches: vec![Batch {
                resp: vec![Response::new("h")],
                rendered: String::new(),
            }],
            namespace: "minimega".into(),
        };
        let mut out = String::new();
        append_reply(&mut out, &reply);
        assert_eq!(out, "");
    }
}
