//! bench-commands: command round trips per second against a real `ferromega serve`, through
//! the command endpoint (the CLI path) and through the per-operation endpoints (HTTP).
//!
//! The program starts its own server (the built `ferromega` binary on a free loopback port
//! with a temporary `--base`), then runs rounds of the two modes alternately on that one
//! server — cli, http, cli, http … — so that both see the same machine, caches and load.
//! Each round runs `--clients` concurrent clients (each with its own connection pool and
//! its own namespace, so that namespace locks do not serialise them) for `--seconds`,
//! cycling through the same mix of read-only operations. It prints every round, the
//! medians, the ratio, and as its last line `commands/s: cli=<n> http=<n>`.
//!
//! The server is stopped at the end and on every error path (the guard sends SIGTERM, then
//! a kill if it lingers), and the temporary base is removed.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use ferromega_api::{Args, Response};
use ferromega_client::Client;
use ferromega_command::handlers::HANDLERS;

mod common;

use common::Server;

/// The operations each client cycles through, as command lines. All are reads of the
/// client's own namespace (or global echoes), so the figures measure the request path —
/// parsing, routing, serialisation — rather than contention or host work.
const MIX: &[&str] = &["vm config memory", "vlans", "vm config", "echo hi"];

/// Command round trips per second: CLI path (command endpoint) against the per-operation
/// HTTP endpoints, on a server this program starts.
#[derive(Debug, Parser)]
#[command(name = "bench-commands")]
struct Opts {
    /// Seconds each round runs.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Rounds of each mode (the report gives their medians).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// The `ferromega` binary (default: `$FERROMEGA_BIN`, else the one next to this
    /// program, built first when this program runs under `cargo run`).
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// One way of sending the mix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `POST /api/v1/namespaces/{ns}/command` with the command line.
    Cli,
    /// `POST` to the operation's own endpoint with its typed `Args`.
    Http,
}

impl Mode {
    fn label(self) -> &'static str {
        match self {
            Mode::Cli => "cli",
            Mode::Http => "http",
        }
    }
}

/// One operation of the mix, in both forms.
#[derive(Debug, Clone)]
struct Op {
    /// The command line (cli mode).
    line: &'static str,
    /// The operation name, compiled from the line (http mode).
    name: String,
    /// The arguments the line compiles to (http mode).
    args: Args,
}

/// Compiles the mix with the command language's own table, so that both modes call the
/// same operations with the same arguments.
fn compile_mix() -> anyhow::Result<Vec<Op>> {
    MIX.iter()
        .map(|line| {
            let cmd = ferromega_command::compile::compile(&HANDLERS, line)
                .map_err(|e| anyhow::anyhow!("{line}: {e}"))?
                .with_context(|| format!("{line}: compiles to nothing"))?;
            Ok(Op {
                line,
                name: HANDLERS[cmd.handler].name.clone(),
                args: cmd.args,
            })
        })
        .collect()
}

/// The `ferromega` binary to benchmark: `--bin`, `$FERROMEGA_BIN`, or the one next to
/// this program. Under `cargo run` (which sets `$CARGO`) the sibling is (re)built first
/// with this program's profile, so the figures never come from a stale server.
fn find_binary(flag: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = flag.or_else(|| std::env::var_os("FERROMEGA_BIN").map(PathBuf::from)) {
        if !p.is_file() {
            bail!("no ferromega binary at {}", p.display());
        }
        return Ok(p);
    }
    let me = std::env::current_exe().context("cannot find this program's path")?;
    let dir = me.parent().context("this program has no folder")?;
    let sibling = dir.join("ferromega");
    if let Some(cargo) = std::env::var_os("CARGO") {
        let release = dir.file_name().is_some_and(|n| n == "release");
        let mut build = Command::new(cargo);
        build.args([
            "build",
            "--quiet",
            "-p",
            "ferromega-daemon",
            "--bin",
            "ferromega",
        ]);
        if release {
            build.arg("--release");
        }
        if let Some(target) = dir.parent() {
            build.env("CARGO_TARGET_DIR", target);
        }
        let status = build
            .status()
            .context("cannot run cargo to build ferromega")?;
        if !status.success() {
            bail!("building ferromega failed ({status})");
        }
    }
    if !sibling.is_file() {
        bail!(
            "no ferromega binary at {}: build it (cargo build --release -p ferromega-daemon), \
             or pass --bin or FERROMEGA_BIN",
            sibling.display()
        );
    }
    Ok(sibling)
}

/// The first error text in a set of responses, if any.
fn first_error(resps: &[Response]) -> Option<&str> {
    resps
        .iter()
        .map(|r| r.error.as_str())
        .find(|e| !e.is_empty())
}

/// Runs one operation once in `mode`; an error reply counts as a failure.
async fn call(client: &Client, mode: Mode, ns: &str, op: &Op) -> anyhow::Result<()> {
    let resps: Vec<Response> = match mode {
        Mode::Cli => client
            .command(ns, op.line)
            .await?
            .batches
            .into_iter()
            .flat_map(|b| b.resp)
            .collect(),
        Mode::Http => client.invoke(&op.name, ns, &op.args).await?,
    };
    match first_error(&resps) {
        Some(e) => bail!("{} ({}): {e}", op.line, mode.label()),
        None => Ok(()),
    }
}

/// What one round measured.
#[derive(Debug, Clone, Copy)]
struct Round {
    calls: u64,
    elapsed: Duration,
}

impl Round {
    fn rate(&self) -> f64 {
        self.calls as f64 / self.elapsed.as_secs_f64()
    }
}

/// One round: every client loops over the mix until the deadline; the first failure
/// fails the round.
async fn round(
    clients: &[(Client, String)],
    mode: Mode,
    ops: &[Op],
    seconds: f64,
) -> anyhow::Result<Round> {
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(seconds);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (client, ns)) in clients.iter().enumerate() {
        let (client, ns, ops) = (client.clone(), ns.clone(), ops.to_vec());
        tasks.spawn(async move {
            // Clients start at different places in the mix so every operation is in
            // flight at any moment.
            let mut k = i;
            let mut calls = 0u64;
            while Instant::now() < deadline {
                call(&client, mode, &ns, &ops[k % ops.len()]).await?;
                k += 1;
                calls += 1;
            }
            anyhow::Ok(calls)
        });
    }
    let mut calls = 0;
    while let Some(done) = tasks.join_next().await {
        calls += done.context("a client panicked")??;
    }
    Ok(Round {
        calls,
        elapsed: start.elapsed(),
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

async fn bench(opts: &Opts, server: &Server, ops: &[Op]) -> anyhow::Result<(f64, f64)> {
    let pid = std::process::id();
    let clients: Vec<(Client, String)> = (0..opts.clients)
        .map(|i| (Client::new(&server.addr), format!("bench-{pid}-{i}")))
        .collect();
    // Every operation must work both ways before anything is timed.
    for (client, ns) in &clients {
        for op in ops {
            for mode in [Mode::Cli, Mode::Http] {
                call(client, mode, ns, op)
                    .await
                    .with_context(|| format!("check before timing, namespace {ns}"))?;
            }
        }
    }
    // Warm-up: connections opened, caches filled; not reported.
    let warm = (opts.seconds / 5.0).clamp(0.2, 1.0);
    for mode in [Mode::Cli, Mode::Http] {
        round(&clients, mode, ops, warm).await?;
    }
    let (mut cli, mut http) = (Vec::new(), Vec::new());
    for r in 1..=opts.rounds {
        for mode in [Mode::Cli, Mode::Http] {
            let got = round(&clients, mode, ops, opts.seconds).await?;
            println!(
                "round {r}/{}  {:<4}  {:>9.0} commands/s  ({} calls in {:.2} s)",
                opts.rounds,
                mode.label(),
                got.rate(),
                got.calls,
                got.elapsed.as_secs_f64()
            );
            match mode {
                Mode::Cli => cli.push(got.rate()),
                Mode::Http => http.push(got.rate()),
            }
        }
    }
    Ok((median(cli), median(http)))
}

/// Starts the server, benchmarks it and stops it; the medians of cli and http.
async fn run(opts: &Opts, bin: &Path, ops: &[Op]) -> anyhow::Result<(f64, f64)> {
    let server = Server::start(bin).await?;
    println!("bench-commands: {} at {}", bin.display(), server.addr);
    println!(
        "{} clients, each in its own namespace; {} round(s) per mode of {} s, alternating cli/http",
        opts.clients, opts.rounds, opts.seconds
    );
    let mix: Vec<String> = ops
        .iter()
        .map(|o| format!("`{}` = {}", o.line, o.name))
        .collect();
    println!("mix: {}", mix.join(", "));
    let result = bench(opts, &server, ops).await;
    drop(server); // SIGTERM, then a kill if it lingers
    result
}

/// Resolves on SIGINT or SIGTERM, naming it.
async fn interrupted() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => { r?; Ok("SIGINT") }
        _ = term.recv() => Ok("SIGTERM"),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    if opts.seconds <= 0.0 || opts.rounds == 0 || opts.clients == 0 {
        bail!("--seconds, --rounds and --clients must be positive");
    }
    let ops = compile_mix()?;
    let bin = find_binary(opts.bin.clone())?;
    // On a signal the benchmark's future is dropped, and with it the server guard, which
    // kills the server: it never outlives this program (short of SIGKILL).
    let (cli, http) = tokio::select! {
        r = run(&opts, &bin, &ops) => r?,
        sig = interrupted() => bail!("interrupted by {}", sig?),
    };
    println!("median cli  {cli:>9.0} commands/s");
    println!("median http {http:>9.0} commands/s");
    if http > 0.0 {
        println!("ratio cli/http = {:.2}", cli / http);
    }
    println!("commands/s: cli={cli:.0} http={http:.0}");
    Ok(())
}
