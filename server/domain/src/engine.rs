//! The command engine: a line (or an HTTP invocation) in, batches of rendered responses out.
//!
//! It applies aliases, compiles against the handler table, runs builtins and the
//! special handlers (`namespace`, `read`, `clear all` …), preprocesses arguments,
//! dispatches operations and records history. Output flags (`.annotate`, `.csv` …)
//! are server-wide defaults, as in minimega; the active namespace is the caller's.

use std::future::Future;
use std::pin::Pin;

use ferromega_api::{Args, Batch, Response};
use std::sync::LazyLock;

use ferromega_command::compile::{CompileError, Compiler};
use ferromega_command::handlers::HANDLERS;
use ferromega_command::render::{self, Flags, Mode};
use ferromega_command::{Command, Scope};

use crate::gate::{gate_check, Gate};
use crate::namespace::DEFAULT_NAMESPACE;
use crate::{lock, ControlPlane, DomainError};

/// The caller's side of a conversation: the active namespace, `read` nesting, and who
/// may run what.
#[derive(Debug, Clone)]
pub struct Session {
    /// The active namespace.
    pub namespace: String,
    /// Whether a `read` is running (nested reads are refused).
    pub reading: bool,
    /// Where the command came from when a peer sent it (the namespace for fan-out,
    /// `meshage` for `mesh send`): such commands run here only and never fan out.
    pub source: Option<String>,
    /// When set, asked before every operation the session runs — nested ones
    /// (`namespace bar (…)`, the lines of a `read`) included.
    pub gate: Option<Gate>,
}

impl Default for Session {
    fn default() -> Self {
        Session::in_namespace(DEFAULT_NAMESPACE)
    }
}

impl Session {
    /// A session in namespace `ns`.
    pub fn in_namespace(ns: &str) -> Self {
        Session {
            namespace: ns.to_string(),
            reading: false,
            source: None,
            gate: None,
        }
    }

    /// This session, with every operation asked of `gate` first.
    pub fn gated(mut self, gate: Option<Gate>) -> Self {
        self.gate = gate;
        self
    }
}

/// Responses of one batch with the flags to render them with.
pub(crate) type RawBatch = (Vec<Response>, Flags);

/// The handler table's patterns, parsed once.
static COMPILER: LazyLock<Result<Compiler, CompileError>> =
    LazyLock::new(|| Compiler::new(&HANDLERS));

/// Compiles a line against the handler table.
pub(crate) fn compile(line: &str) -> Result<Option<Command>, CompileError> {
    match &*COMPILER {
        Ok(c) => c.compile(line),
        Err(e) => Err(e.clone()),
    }
}

type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

pub(crate) const FLAG_BUILTINS: &[&str] = &[
    "csv",
    "json",
    "headers",
    "annotate",
    "sort",
    "compress",
    "record",
    "preprocess",
];

fn set_flag(flags: &mut Flags, name: &str, value: bool) {
    match name {
        "csv" => flags.mode = if value { Mode::Csv } else { Mode::Text },
        "json" => flags.mode = if value { Mode::Json } else { Mode::Text },
        "headers" => flags.headers = value,
        "annotate" => flags.annotate = value,
        "sort" => flags.sort = value,
        "compress" => flags.compress = value,
        "record" => flags.record = value,
        "preprocess" => flags.preprocess = value,
        _ => {}
    }
}

fn get_flag(flags: &Flags, name: &str) -> bool {
    match name {
        "csv" => flags.mode == Mode::Csv,
        "json" => flags.mode == Mode::Json,
        "headers" => flags.headers,
        "annotate" => flags.annotate,
        "sort" => flags.sort,
        "compress" => flags.compress,
        "record" => flags.record,
        "preprocess" => flags.preprocess,
        _ => false,
    }
}

/// The value of a `[true,false]` choice, if one was given.
pub(crate) fn bool_choice(args: &Args) -> Option<bool> {
    if args.flag("true") {
        Some(true)
    } else if args.flag("false") {
        Some(false)
    } else {
        None
    }
}

/// The largest script `read` accepts.
const MAX_SCRIPT_BYTES: u64 = 16 << 20;

/// Reads a script, refusing files larger than [`MAX_SCRIPT_BYTES`] (or endless ones such
/// as `/dev/zero`).
async fn read_script(path: &str) -> std::io::Result<String> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let mut buf = Vec::new();
    file.take(MAX_SCRIPT_BYTES + 1)
        .read_to_end(&mut buf)
        .await?;
    if buf.len() as u64 > MAX_SCRIPT_BYTES {
        return Err(std::io::Error::other(format!(
            "script larger than {MAX_SCRIPT_BYTES} bytes"
        )));
    }
    String::from_utf8(buf).map_err(std::io::Error::other)
}

fn render_batches(raw: Vec<RawBatch>) -> Vec<Batch> {
    raw.into_iter()
        .map(|(resp, flags)| {
            let rendered = render::render(&resp, &flags);
            Batch { resp, rendered }
        })
        .collect()
}

impl ControlPlane {
    /// Runs one command line in `session`, returning its batches (none for a blank
    /// line or a comment). Errors are responses with `error` set, never panics.
    pub async fn run_line(&self, session: &mut Session, line: &str) -> Vec<Batch> {
        render_batches(self.run_line_raw(session, line).await)
    }

    pub(crate) async fn run_line_raw(&self, session: &mut Session, line: &str) -> Vec<RawBatch> {
        let line = self.expand_alias(line.trim());
        let flags = *lock(&self.inner.flags);
        let cmd = match compile(&line) {
            Ok(Some(cmd)) => cmd,
            Ok(None) => return Vec::new(),
            Err(e) => return vec![(vec![Response::error(self.host(), e.to_string())], flags)],
        };
        let record = self.should_record(&cmd, &flags);
        let out = self.execute(session, cmd, flags).await;
        if record {
            let mut history = lock(&self.inner.history);
            history.push(line.clone());
            let excess = history.len().saturating_sub(10_000);
            history.drain(..excess);
        }
        out
    }

    /// Runs the operation `name` with `args` in `session`, as its HTTP endpoint does.
    /// The result is the operation's responses (batches flattened).
    pub async fn invoke(
        &self,
        session: &mut Session,
        name: &str,
        args: Args,
    ) -> Result<Vec<Response>, DomainError> {
        let (index, spec) = ferromega_command::handlers::by_name(name)
            .filter(|(_, h)| h.scope != Scope::Builtin)
            .ok_or_else(|| DomainError::NotFound(format!("unknown operation: {name}")))?;
        if let Some(gate) = &session.gate {
            let ns = match (name, args.string("name")) {
                ("namespace", Some(entered)) => entered,
                _ => session.namespace.as_str(),
            };
            gate.check(name, ns, &args)
                .map_err(DomainError::Forbidden)?;
        }
        if !matches!(name, "namespace" | "read" | "ns_run" | "mesh_send") {
            let mut args = args;
            if self.output_flags().preprocess {
                self.preprocess(&mut args).await?;
            }
            return self.dispatch_scoped(session, name, &args).await;
        }
        let sub = match &args.subcommand {
            Some(text) => match compile(text) {
                Ok(Some(c)) => Some(Box::new(c)),
                Ok(None) => None,
                Err(e) => return Err(DomainError::invalid(e)),
            },
            None => None,
        };
        let original = format!("{} (via API)", spec.name);
        let cmd = Command {
            handler: index,
            pattern: 0,
            args,
            sub,
            original,
        };
        let flags = *lock(&self.inner.flags);
        let batches = self.execute(session, cmd, flags).await;
        let resps: Vec<Response> = batches.into_iter().flat_map(|(r, _)| r).collect();
        // `namespace`, `read` and `ns run` report failures as responses; over HTTP a
        // lone failure is the request's failure.
        match resps.as_slice() {
            [only] if !only.error.is_empty() => Err(DomainError::Invalid(only.error.clone())),
            _ => Ok(resps),
        }
    }

    fn expand_alias(&self, line: &str) -> String {
        let aliases = lock(&self.inner.aliases);
        for (alias, expansion) in aliases.iter() {
            if let Some(rest) = line.strip_prefix(alias.as_str()) {
                return format!("{expansion}{rest}");
            }
        }
        line.to_string()
    }

    fn should_record(&self, cmd: &Command, flags: &Flags) -> bool {
        let spec = &HANDLERS[cmd.handler];
        match spec.name.as_str() {
            "read" | "clear_history" => false,
            "record" => match (&cmd.sub, bool_choice(&cmd.args)) {
                (Some(_), Some(v)) => v,
                _ => false,
            },
            _ => flags.record,
        }
    }

    /// Runs a compiled command with `flags`, returning raw batches.
    pub(crate) fn execute<'a>(
        &'a self,
        session: &'a mut Session,
        cmd: Command,
        flags: Flags,
    ) -> BoxFut<'a, Vec<RawBatch>> {
        Box::pin(async move {
            let spec = &HANDLERS[cmd.handler];
            let host = self.host().to_string();
            let name = spec.name.as_str();
            if let Err(e) = gate_check(session, spec.scope, name, &cmd) {
                return vec![(vec![Response::error(&host, e)], flags)];
            }
            if spec.scope == Scope::Builtin {
                return self.builtin(session, name, cmd, flags).await;
            }
            let mut cmd = cmd;
            if flags.preprocess {
                if let Err(e) = self.preprocess(&mut cmd.args).await {
                    return vec![(vec![Response::error(&host, e.to_string())], flags)];
                }
            }
            if let Some(e) = crate::mesh::fanout::refused_from_mesh(session, name) {
                return vec![(vec![Response::error(&host, e)], flags)];
            }
            match name {
                "namespace" => return self.namespace_cmd(session, cmd, flags).await,
                "mesh_send" => return self.mesh_send(session, &cmd, flags).await,
                "read" => return self.read(session, &cmd.args, flags).await,
                "ns_run" => {
                    return match cmd.sub {
                        Some(sub) => self.ns_run(session, *sub, flags).await,
                        None => vec![(vec![Response::error(&host, "missing command")], flags)],
                    }
                }
                _ => {}
            }
            let result = self.dispatch_scoped(session, name, &cmd.args).await;
            let resps = match result {
                Ok(r) => r,
                Err(e) => vec![Response::error(&host, e.to_string())],
            };
            vec![(resps, flags)]
        })
    }

    async fn builtin(
        &self,
        session: &mut Session,
        name: &str,
        cmd: Command,
        mut flags: Flags,
    ) -> Vec<RawBatch> {
        let host = self.host().to_string();
        let args = cmd.args;
        if FLAG_BUILTINS.contains(&name) {
            return match (cmd.sub, bool_choice(&args)) {
                (Some(sub), Some(v)) => {
                    set_flag(&mut flags, name, v);
                    self.execute(session, *sub, flags).await
                }
                (_, Some(v)) => {
                    set_flag(&mut lock(&self.inner.flags), name, v);
                    Vec::new()
                }
                _ => {
                    let v = get_flag(&flags, name);
                    vec![(vec![Response::text(&host, v.to_string())], flags)]
                }
            };
        }
        match name {
            "filter" | "columns" => {
                let Some(sub) = cmd.sub else {
                    return Vec::new();
                };
                let spec = if name == "filter" {
                    args.string("filter").unwrap_or_default().to_string()
                } else {
                    args.string("columns").unwrap_or_default().to_string()
                };
                let mut batches = self.execute(session, *sub, flags).await;
                for (resps, _) in &mut batches {
                    let r = if name == "filter" {
                        render::filter(resps, &spec)
                    } else {
                        render::columns(resps, &spec)
                    };
                    if let Err(e) = r {
                        *resps = vec![Response::error(&host, e.to_string())];
                    }
                }
                batches
            }
            "alias" => vec![(vec![self.alias(&args)], flags)],
            "unalias" => {
                if let Some(a) = args.string("alias") {
                    lock(&self.inner.aliases).remove(a);
                }
                Vec::new()
            }
            "env" => vec![(vec![self.env(&args)], flags)],
            _ => vec![(
                vec![Response::error(&host, format!("unknown builtin: {name}"))],
                flags,
            )],
        }
    }

    fn alias(&self, args: &Args) -> Response {
        let host = self.host();
        let words = args.list("alias");
        if words.is_empty() {
            let rows = lock(&self.inner.aliases)
                .iter()
                .map(|(k, v)| vec![k.clone(), v.clone()])
                .collect();
            return Response::table(host, vec!["alias".into(), "expansion".into()], rows);
        }
        let joined = words.join(" ");
        match joined.split_once('=') {
            Some((alias, expansion)) if !alias.trim().is_empty() => {
                lock(&self.inner.aliases).insert(alias.to_string(), expansion.to_string());
                Response::new(host)
            }
            _ => Response::error(host, "expected alias of format `alias=expansion`"),
        }
    }

    fn env(&self, args: &Args) -> Response {
        let host = self.host();
        let mut env = lock(&self.inner.env);
        match (args.string("name"), args.string("value")) {
            (None, _) => {
                let rows = env
                    .iter()
                    .map(|(k, v)| vec![k.clone(), v.clone()])
                    .collect();
                Response::table(host, vec!["key".into(), "value".into()], rows)
            }
            (Some(name), None) => Response::text(host, env.get(name).cloned().unwrap_or_default()),
            (Some(name), Some("")) => {
                env.remove(name);
                Response::new(host)
            }
            (Some(name), Some(value)) => {
                env.insert(name.to_string(), value.to_string());
                Response::new(host)
            }
        }
    }

    /// A value of the preprocessor's environment.
    pub(crate) fn env_var(&self, name: &str) -> Option<String> {
        lock(&self.inner.env).get(name).cloned()
    }

    async fn namespace_cmd(
        &self,
        session: &mut Session,
        cmd: Command,
        flags: Flags,
    ) -> Vec<RawBatch> {
        let host = self.host().to_string();
        let Some(name) = cmd.args.string("name").map(str::to_string) else {
            return vec![(vec![self.namespace_table(session)], flags)];
        };
        if crate::vm::launch::check_name(&name).is_err() {
            let e = format!("invalid namespace name `{name}`: use letters, digits, '_', '.', '-'");
            return vec![(vec![Response::error(&host, e)], flags)];
        }
        self.namespace_or_create(&name);
        match cmd.sub {
            Some(sub) => {
                let mut inner = Session {
                    namespace: name,
                    ..session.clone()
                };
                self.execute(&mut inner, *sub, flags).await
            }
            None if session.namespace == name => {
                vec![(
                    vec![Response::error(
                        &host,
                        format!("already in namespace: {name}"),
                    )],
                    flags,
                )]
            }
            None => {
                session.namespace = name;
                Vec::new()
            }
        }
    }

    fn namespace_table(&self, session: &Session) -> Response {
        let vlans = lock(&self.inner.vlans);
        let rows = self
            .namespace_names()
            .into_iter()
            .map(|ns| {
                let (min, max, _) = vlans.range(&ns);
                let active = (ns == session.namespace).to_string();
                vec![ns, format!("{min}-{max}"), active]
            })
            .collect();
        Response::table(
            self.host(),
            vec!["namespace".into(), "vlans".into(), "active".into()],
            rows,
        )
    }

    async fn read(&self, session: &mut Session, args: &Args, flags: Flags) -> Vec<RawBatch> {
        let host = self.host().to_string();
        if session.reading {
            let e = "cannot run nested `read` commands";
            return vec![(vec![Response::error(&host, e)], flags)];
        }
        let path = args.string("file").unwrap_or_default().to_string();
        let text = match read_script(&path).await {
            Ok(t) => t,
            Err(e) => return vec![(vec![Response::error(&host, format!("{path}: {e}"))], flags)],
        };
        let check_only = args.flag("check");
        let mut out = Vec::new();
        session.reading = true;
        for line in text.lines() {
            if check_only {
                if let Err(e) = compile(line) {
                    out.push((vec![Response::error(&host, e.to_string())], flags));
                    break;
                }
                continue;
            }
            if let Err(e) = compile(&self.expand_alias(line.trim())) {
                out.push((vec![Response::error(&host, e.to_string())], flags));
                break;
            }
            out.extend(self.run_line_raw(session, line).await);
        }
        session.reading = false;
        out
    }

    async fn ns_run(&self, session: &mut Session, sub: Command, flags: Flags) -> Vec<RawBatch> {
        let name = HANDLERS[sub.handler].name.as_str();
        if matches!(name, "read" | "ns_run" | "vm_launch") {
            let e = format!("cannot run `{}` using `ns run`", sub.original);
            return vec![(vec![Response::error(self.host(), e)], flags)];
        }
        self.ns_run_hosts(session, sub, flags).await
    }
}
