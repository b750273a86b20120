//! ferromega-tests: the harness shared by the cross-crate tests — [`TestApp`], a real
//! server on a loopback port over its own temporary base directory.
//!
//! In the manner of crates.io's `TestApp`: every test builds its own app, so tests run
//! in parallel without sharing state. The app drives the real host backend
//! (`LinuxSystem`: `shell`, `background`, `check`, `debug`) and has no KVM or container
//! runtime, as on a host where those are not installed.

pub mod host;
pub mod netns;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferromega_api::{Args, CommandReply};
use ferromega_client::Client;
use ferromega_command::lex::quote;
use ferromega_domain::{Backends, ControlPlane, Session, Settings};
use ferromega_host_system::LinuxSystem;
use tempfile::TempDir;

/// The host name every test app reports (the `host` column, `Resp[].Host`).
pub const TEST_HOST: &str = "testhost";

/// A running server for one test. Dropping it stops the server and removes its base
/// directory.
pub struct TestApp {
    /// A client of the server.
    pub client: Client,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The base directory (`--base`).
    pub base: PathBuf,
    /// The files directory (`<base>/files`).
    pub files_dir: PathBuf,
    /// The control plane behind the server, for tests that drive it directly.
    pub cp: ControlPlane,
    server: tokio::task::JoinHandle<()>,
    _dir: TempDir,
}

/// Options of a [`TestApp`] before it starts.
#[derive(Debug, Clone)]
pub struct TestAppBuilder {
    host: String,
    plain: bool,
    files_env: bool,
    env: Vec<(String, String)>,
}

impl TestApp {
    /// A builder with the defaults: host [`TEST_HOST`], annotation on, no extra env.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            host: TEST_HOST.to_string(),
            plain: false,
            files_env: false,
            env: Vec::new(),
        }
    }

    /// A default app.
    pub async fn spawn() -> TestApp {
        Self::builder().spawn().await
    }

    /// A full URL for `path` (`/api/v1/…`).
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Runs a command line in namespace `ns`, panicking when the server cannot be reached.
    pub async fn run_in(&self, ns: &str, line: &str) -> CommandReply {
        self.client
            .command(ns, line)
            .await
            .unwrap_or_else(|e| panic!("command `{line}` failed: {e}"))
    }

    /// Runs a command line in the default namespace.
    pub async fn run(&self, line: &str) -> CommandReply {
        self.run_in("minimega", line).await
    }

    /// Runs lines one after the other as one session (a `namespace foo` line changes
    /// the namespace of the later ones) and returns minitest's output of all of them:
    /// `E: <error>` lines, then the rendered text.
    pub async fn script(&self, lines: &[&str]) -> String {
        self.script_in("minimega", lines).await
    }

    /// Like [`script`](Self::script), starting in namespace `ns`.
    pub async fn script_in(&self, ns: &str, lines: &[&str]) -> String {
        let mut ns = ns.to_string();
        let mut out = String::new();
        for line in lines {
            let reply = self.run_in(&ns, line).await;
            ferromega_cli::minitest::append_reply(&mut out, &reply);
            ns = reply.namespace;
        }
        out
    }

    /// minitest's output of one line in the default namespace.
    pub async fn out(&self, line: &str) -> String {
        self.script(&[line]).await
    }

    /// Writes `text` to `rel` under the files directory, creating folders.
    pub fn write_file(&self, rel: &str, text: &str) -> PathBuf {
        let path = self.files_dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create folders in the files dir");
        }
        std::fs::write(&path, text).expect("write a file in the files dir");
        path
    }

    /// Replaces the placeholder `@FILES@` in `text` with the files directory.
    pub fn expand(&self, text: &str) -> String {
        expand_files(text, &self.files_dir)
    }
}

/// Replaces the placeholder `@FILES@` in `text` with `files_dir`, so expected outputs
/// can name paths under a temporary directory.
pub fn expand_files(text: &str, files_dir: &Path) -> String {
    text.replace("@FILES@", &files_dir.to_string_lossy())
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl TestAppBuilder {
    /// The host name the server reports.
    pub fn host(mut self, host: &str) -> Self {
        self.host = host.to_string();
        self
    }

    /// Start with `.annotate false` (no host column or prefix), as minitest's prolog does.
    pub fn plain(mut self) -> Self {
        self.plain = true;
        self
    }

    /// Set the preprocessor variable `files` to the files directory, so commands can
    /// name paths as `$files/x`.
    pub fn files_env(mut self) -> Self {
        self.files_env = true;
        self
    }

    /// Set a preprocessor variable (`.env name value`).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_string(), value.to_string()));
        self
    }

    /// Starts the server on 127.0.0.1 with a fresh base directory.
    pub async fn spawn(self) -> TestApp {
        let dir = tempfile::Builder::new()
            .prefix("ferromega-test-")
            .tempdir()
            .expect("create a temporary base directory");
        let base = dir.path().to_path_buf();
        let files_dir = base.join("files");
        std::fs::create_dir_all(&files_dir).expect("create the files directory");
        let settings = Settings {
            host: self.host.clone(),
            base: base.clone(),
            files_dir: files_dir.clone(),
        };
        let backends = Backends {
            system: Arc::new(LinuxSystem),
            kvm: None,
            container: None,
            network: None,
        };
        let cp = ControlPlane::new(settings, backends);

        let mut setup: Vec<String> = Vec::new();
        if self.files_env {
            setup.push(format!(
                ".env files {}",
                quote(&files_dir.to_string_lossy())
            ));
        }
        for (name, value) in &self.env {
            setup.push(format!(".env {} {}", quote(name), quote(value)));
        }
        if self.plain {
            setup.push(".annotate false".to_string());
        }
        setup.push("clear history".to_string());
        let mut session = Session::default();
        for line in &setup {
            for batch in cp.run_line(&mut session, line).await {
                for r in &batch.resp {
                    assert!(r.error.is_empty(), "setup `{line}` failed: {}", r.error);
                }
            }
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("listener address");
        let app = ferromega_http::router(cp.clone());
        let mut quit = cp.quit_signal();
        let server = tokio::spawn(async move {
            let stop = async move {
                let _ = quit.wait_for(|q| *q).await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(stop)
                .await
            {
                eprintln!("test server stopped: {e}");
            }
        });
        TestApp {
            client: Client::new(&addr.to_string()),
            addr,
            base,
            files_dir,
            cp,
            server,
            _dir: dir,
        }
    }
}

/// Builds the `Args` body of an operation: strings, chosen keywords, lists, a sub-command.
#[derive(Debug, Clone, Default)]
pub struct ArgsBuilder(Args);

/// An empty [`ArgsBuilder`].
pub fn args() -> ArgsBuilder {
    ArgsBuilder::default()
}

impl ArgsBuilder {
    /// A string argument (`<key>` or `[key]`).
    pub fn s(mut self, key: &str, value: &str) -> Self {
        self.0.strings.insert(key.to_string(), value.to_string());
        self
    }

    /// A chosen keyword (`<a,b>` or `<a,>`).
    pub fn b(mut self, keyword: &str) -> Self {
        self.0.bools.insert(keyword.to_string(), true);
        self
    }

    /// A list argument (`<key>...`).
    pub fn l(mut self, key: &str, values: &[&str]) -> Self {
        self.0.lists.insert(
            key.to_string(),
            values.iter().map(|v| v.to_string()).collect(),
        );
        self
    }

    /// A nested command line (`(command)`).
    pub fn subcommand(mut self, line: &str) -> Self {
        self.0.subcommand = Some(line.to_string());
        self
    }

    /// The finished `Args`.
    pub fn build(self) -> Args {
        self.0
    }
}

/// The workspace root (the folder holding `openapi/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate sits in the workspace root")
        .to_path_buf()
}
