//! Miscellaneous operations: help, history, echo, version, shell, background, check, debug,
//! quit, clear all and clear namespace.

use std::time::Instant;

use ferromega_api::{Args, Response};
use ferromega_command::handlers::HANDLERS;

use crate::engine::Session;
use crate::namespace::DEFAULT_NAMESPACE;
use crate::{lock, ControlPlane, DomainError, DomainResult};

/// A running `debug cpu start`: where to write, and the figures at the start.
#[derive(Debug)]
pub(crate) struct CpuProfile {
    path: std::path::PathBuf,
    started: Instant,
    cpu_ticks: u64,
}

impl ControlPlane {
    /// A path as minimega's `debug`/`vm migrate` take it: relative → files dir.
    pub(crate) fn files_path(&self, p: &str) -> std::path::PathBuf {
        let path = std::path::Path::new(p);
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.files_dir().join(path)
        }
    }

    pub(crate) fn help(&self, args: &Args) -> DomainResult<Response> {
        // minimega answers an unknown topic with text, not an error.
        let text = match ferromega_command::help::help(&HANDLERS, args.list("command")) {
            Ok(t) => t,
            Err(e) => e.to_string(),
        };
        Ok(self.text(text))
    }

    pub(crate) fn history(&self) -> DomainResult<Response> {
        Ok(self.text(lock(&self.inner.history).join("\n")))
    }

    pub(crate) fn clear_history(&self) -> DomainResult<Response> {
        lock(&self.inner.history).clear();
        Ok(self.ok())
    }

    pub(crate) fn write(&self, args: &Args) -> DomainResult<Response> {
        // Relative to the files directory, not the server's working directory (minimega
        // used its cwd, which for a shared server is nobody's business).
        let file = self.files_path(args.string("file").unwrap_or_default());
        let text = lock(&self.inner.history).join("\n");
        std::fs::write(&file, text)
            .map_err(|e| DomainError::Host(format!("{}: {e}", file.display())))?;
        Ok(self.ok())
    }

    pub(crate) fn echo(&self, args: &Args) -> Response {
        self.text(args.list("args").join(" "))
    }

    pub(crate) fn version(&self) -> Response {
        self.text(format!("ferromega {}", env!("CARGO_PKG_VERSION")))
    }

    pub(crate) async fn shell(&self, args: &Args) -> DomainResult<Response> {
        let out = self.inner.backends.system.run(args.list("command")).await;
        let out = out.map_err(DomainError::Host)?;
        match out.code {
            Some(0) => Ok(Response {
                response: out.stdout,
                error: out.stderr,
                ..self.ok()
            }),
            Some(n) => Err(DomainError::Host(format!("exit status {n}"))),
            None => Err(DomainError::Host("signal: killed".to_string())),
        }
    }

    pub(crate) fn background(&self, args: &Args) -> DomainResult<Response> {
        let argv = args.list("command");
        self.inner
            .backends
            .system
            .spawn_background(argv)
            .map_err(DomainError::Host)?;
        Ok(self.ok())
    }

    pub(crate) async fn check(&self) -> DomainResult<Response> {
        let problems = self.inner.backends.system.check().await;
        if problems.is_empty() {
            Ok(self.ok())
        } else {
            Err(DomainError::Host(problems.join("\n")))
        }
    }

    pub(crate) fn debug(&self, args: &Args) -> DomainResult<Response> {
        let programs = &self.inner.backends.system;
        if args.flag("memory") || args.flag("goroutine") {
            let path = self.files_path(args.string("file").unwrap_or_default());
            let report = if args.flag("memory") {
                programs.process_report()
            } else {
                programs.thread_report()
            };
            std::fs::write(&path, report)
                .map_err(|e| DomainError::Host(format!("{}: {e}", path.display())))?;
            return Ok(self.ok());
        }
        if args.flag("cpu") {
            let mut profile = lock(&self.inner.cpu_profile);
            if args.flag("start") {
                if profile.is_some() {
                    return Err(DomainError::Conflict("CPU profile still running".into()));
                }
                let path = self.files_path(args.string("file").unwrap_or_default());
                std::fs::write(&path, "")
                    .map_err(|e| DomainError::Host(format!("{}: {e}", path.display())))?;
                let cpu_ticks = programs.cpu_ticks();
                *profile = Some(CpuProfile {
                    path,
                    started: Instant::now(),
                    cpu_ticks,
                });
                return Ok(self.ok());
            }
            let Some(p) = profile.take() else {
                return Err(DomainError::Conflict("CPU profile not running".into()));
            };
            let text = format!(
                "wall_seconds {:.3}\ncpu_ticks {}\n",
                p.started.elapsed().as_secs_f64(),
                programs.cpu_ticks().saturating_sub(p.cpu_ticks)
            );
            std::fs::write(&p.path, text)
                .map_err(|e| DomainError::Host(format!("{}: {e}", p.path.display())))?;
            return Ok(self.ok());
        }
        let figures = programs.process_figures();
        let header: Vec<&str> = figures.iter().map(|(k, _)| k.as_str()).collect();
        let row = figures.iter().map(|(_, v)| v.clone()).collect();
        Ok(self.table(&header, vec![row]))
    }

    pub(crate) fn quit(&self, args: &Args) -> DomainResult<Response> {
        let delay = match args.string("delay") {
            Some(d) => d.parse::<u64>().map_err(|_| {
                DomainError::Invalid(format!("strconv.Atoi: parsing {d:?}: invalid syntax"))
            })?,
            None => 0,
        };
        let quit = self.inner.quit.clone();
        let host = self.host().to_string();
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(delay)).await;
            let _ = quit.send(true);
        });
        if delay > 0 {
            Ok(Response::text(
                &host,
                format!("quitting after {delay} seconds"),
            ))
        } else {
            Ok(self.ok())
        }
    }

    pub(crate) async fn clear_all(&self, session: &mut Session) -> DomainResult<Response> {
        self.destroy_namespaces(session, "all").await?;
        self.net_reset().await;
        self.clear_vlans_all();
        lock(&self.inner.history).clear();
        Ok(self.ok())
    }

    pub(crate) async fn clear_namespace(
        &self,
        session: &mut Session,
        args: &Args,
    ) -> DomainResult<Response> {
        match args.string("name") {
            None if session.namespace == DEFAULT_NAMESPACE => Err(DomainError::Invalid(format!(
                "already in namespace: {DEFAULT_NAMESPACE}"
            ))),
            None => {
                session.namespace = DEFAULT_NAMESPACE.to_string();
                Ok(self.ok())
            }
            Some(name) => {
                self.destroy_namespaces(session, name).await?;
                Ok(self.ok())
            }
        }
    }

    /// Destroys namespace `name` (or all of them): kills and removes its VMs, frees its
    /// VLAN aliases. The default namespace comes back empty.
    async fn destroy_namespaces(&self, session: &mut Session, name: &str) -> DomainResult<()> {
        let names = if name == "all" {
            self.namespace_names()
        } else if self.namespace(name).is_some() {
            vec![name.to_string()]
        } else {
            return Err(DomainError::NotFound(format!("unknown namespace: {name}")));
        };
        for ns in &names {
            let removed = lock(&self.inner.namespaces).remove(ns);
            if let Some(ns_state) = removed {
                let snapshot = lock(&ns_state).clone();
                self.teardown_vms(&snapshot).await;
                snapshot.cc.shutdown();
                snapshot.plumber.stop_all();
                snapshot.plumber.delete_all();
            }
            self.net_teardown_namespace(ns).await;
            let mut vlans = lock(&self.inner.vlans);
            vlans.clear(ns, "");
            self.write_vlans_file(&vlans);
            if session.namespace == *ns {
                session.namespace = DEFAULT_NAMESPACE.to_string();
            }
        }
        self.namespace_or_create(DEFAULT_NAMESPACE);
        Ok(())
    }
}
