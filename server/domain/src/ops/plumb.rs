//! Operations of the plumber: `plumb` pipelines of host processes and pipes, `pipe`
//! (listing, writing, mode, log, via), `clear plumb`, `clear pipe`; and delivering a
//! message written into a pipe, through its via program when it has one.

use ferromega_api::{Args, Response};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;

use crate::plumber::{Inbox, Mode, Pipeline, Plumber};
use crate::{ControlPlane, DomainError, DomainResult};

/// One stage of a pipeline.
enum Stage {
    Pipe(String),
    Process(Vec<String>),
}

impl ControlPlane {
    /// The plumber of namespace `ns`.
    pub(crate) fn plumber(&self, ns: &str) -> Plumber {
        self.with_ns(ns, |n| n.plumber.clone())
    }

    /// Writes `data` into pipe `name` of `ns` and delivers it.
    pub(crate) fn pipe_write(&self, ns: &str, name: &str, data: &str) {
        let d = self.plumber(ns).write(name, data);
        if d.via.is_empty() {
            for t in d.to {
                let _ = t.send(data.to_string());
            }
            return;
        }
        for t in d.to {
            let (cp, via, data) = (self.clone(), d.via.clone(), data.to_string());
            tokio::spawn(async move {
                match cp.run_via(&via, &data).await {
                    Ok(out) => {
                        let _ = t.send(out);
                    }
                    Err(e) => tracing::warn!("pipe via {}: {e}", via.join(" ")),
                }
            });
        }
    }

    /// Passes one message through a via program.
    async fn run_via(&self, via: &[String], data: &str) -> Result<String, String> {
        let mut p = self.inner.backends.system.spawn_piped(via)?;
        p.stdin
            .write_all(format!("{data}\n").as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        p.stdin.shutdown().await.map_err(|e| e.to_string())?;
        drop(p.stdin);
        let mut out = String::new();
        p.stdout
            .read_to_string(&mut out)
            .await
            .map_err(|e| e.to_string())?;
        Ok(out.trim_end_matches('\n').to_string())
    }

    pub(crate) fn plumb(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let plumber = self.plumber(ns);
        let Some(src) = args.string("src") else {
            let rows = plumber.pipelines().into_iter().map(|p| vec![p]).collect();
            return Ok(self.table(&["pipeline"], rows));
        };
        let words: Vec<String> = std::iter::once(src.to_string())
            .chain(args.list("dst").iter().cloned())
            .collect();
        let stages: Vec<Stage> = words
            .iter()
            .map(|w| {
                let argv: Vec<String> = w.split_whitespace().map(str::to_string).collect();
                match argv.first() {
                    Some(p) if self.inner.backends.system.in_path(p) => Ok(Stage::Process(argv)),
                    Some(_) if argv.len() == 1 => Ok(Stage::Pipe(w.clone())),
                    _ => Err(DomainError::invalid(format!(
                        "{w}: not a program in PATH nor a pipe name"
                    ))),
                }
            })
            .collect::<DomainResult<_>>()?;
        let name = words
            .iter()
            .map(|w| {
                if w.contains(' ') {
                    format!("\"{w}\"")
                } else {
                    w.clone()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        let pipeline = self.start_pipeline(ns, &plumber, stages)?;
        plumber.add_pipeline(name, pipeline);
        Ok(self.ok())
    }

    /// Starts the stages, each reading what the one before it gives.
    fn start_pipeline(
        &self,
        ns: &str,
        plumber: &Plumber,
        stages: Vec<Stage>,
    ) -> DomainResult<Pipeline> {
        let mut p = Pipeline::default();
        let mut source: Option<Inbox> = None;
        let last = stages.len() - 1;
        for (i, stage) in stages.into_iter().enumerate() {
            match stage {
                Stage::Pipe(name) => {
                    if let Some(mut src) = source.take() {
                        plumber.open_writer(&name);
                        let (cp, ns, pl, n) =
                            (self.clone(), ns.to_string(), plumber.clone(), name.clone());
                        let t = tokio::spawn(async move {
                            while let Some(line) = src.recv().await {
                                cp.pipe_write(&ns, &n, &line);
                            }
                            pl.close_writer(&n);
                        });
                        p.tasks.push(t.abort_handle());
                    }
                    if i < last {
                        source = Some(plumber.reader(&name).1);
                    }
                }
                Stage::Process(argv) => {
                    let proc = self
                        .inner
                        .backends
                        .system
                        .spawn_piped(&argv)
                        .map_err(DomainError::Host)?;
                    p.kills.push(proc.kill);
                    let mut stdin = proc.stdin;
                    if let Some(mut src) = source.take() {
                        let t = tokio::spawn(async move {
                            while let Some(line) = src.recv().await {
                                let line = format!("{line}\n");
                                if stdin.write_all(line.as_bytes()).await.is_err() {
                                    break;
                                }
                            }
                        });
                        p.tasks.push(t.abort_handle());
                    } else {
                        drop(stdin);
                    }
                    let (tx, rx) = mpsc::unbounded_channel();
                    let mut lines = BufReader::new(proc.stdout).lines();
                    let t = tokio::spawn(async move {
                        while let Ok(Some(line)) = lines.next_line().await {
                            if tx.send(line).is_err() {
                                break;
                            }
                        }
                    });
                    p.tasks.push(t.abort_handle());
                    if i < last {
                        source = Some(rx);
                    } else {
                        let mut rx = rx;
                        let t = tokio::spawn(async move {
                            while let Some(line) = rx.recv().await {
                                tracing::info!("plumb: {line}");
                            }
                        });
                        p.tasks.push(t.abort_handle());
                    }
                }
            }
        }
        Ok(p)
    }

    pub(crate) fn clear_plumb(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let plumber = self.plumber(ns);
        let names = args.list("pipeline");
        if names.is_empty() {
            plumber.stop_all();
        }
        for n in names {
            if !plumber.stop_pipeline(n) {
                return Err(DomainError::NotFound(format!("no such pipeline: {n}")));
            }
        }
        Ok(self.ok())
    }

    pub(crate) fn pipe(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let plumber = self.plumber(ns);
        let Some(name) = args.string("pipe") else {
            let rows = plumber
                .pipes()
                .into_iter()
                .map(|p| {
                    vec![
                        p.name,
                        p.mode.name().to_string(),
                        p.readers.to_string(),
                        p.writers.to_string(),
                        p.via.join(" "),
                        p.last,
                    ]
                })
                .collect();
            let header = ["name", "mode", "readers", "writers", "via", "last message"];
            return Ok(self.table(&header, rows));
        };
        if args.flag("mode") {
            let mode = ["all", "round-robin", "random"]
                .into_iter()
                .find(|m| args.flag(m))
                .and_then(Mode::parse)
                .ok_or_else(|| DomainError::invalid("invalid mode"))?;
            plumber.set_mode(name, mode);
        } else if args.flag("log") {
            plumber.set_log(name, args.flag("true"));
        } else if args.flag("via") {
            let via = args.list("command").to_vec();
            if !via
                .first()
                .is_some_and(|p| self.inner.backends.system.in_path(p))
            {
                return Err(DomainError::invalid(format!(
                    "via: not a program in PATH: {}",
                    via.join(" ")
                )));
            }
            plumber.set_via(name, via);
        } else {
            self.pipe_write(ns, name, args.string("data").unwrap_or_default());
        }
        Ok(self.ok())
    }

    pub(crate) fn clear_pipe(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let plumber = self.plumber(ns);
        let Some(name) = args.string("pipe") else {
            plumber.delete_all();
            return Ok(self.ok());
        };
        if !plumber.exists(name) {
            return Err(DomainError::NotFound(format!("no such pipe: {name}")));
        }
        if args.flag("mode") {
            plumber.set_mode(name, Mode::All);
        } else if args.flag("log") {
            plumber.set_log(name, false);
        } else if args.flag("via") {
            plumber.set_via(name, Vec::new());
        } else {
            plumber.delete(name);
        }
        Ok(self.ok())
    }
}

impl ControlPlane {
    /// Reads pipe `name` of namespace `ns` (created when new) from outside the command
    /// language (`ferromega pipe NAME`): its messages arrive on the inbox, which stops
    /// reading when dropped.
    pub fn pipe_read(&self, ns: &str, name: &str) -> DomainResult<Inbox> {
        if self.namespace(ns).is_none() {
            return Err(DomainError::NotFound(format!("unknown namespace: {ns}")));
        }
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(DomainError::invalid(format!("invalid pipe name: {name:?}")));
        }
        Ok(self.plumber(ns).reader(name).1)
    }
}
