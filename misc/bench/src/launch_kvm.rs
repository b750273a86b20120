//! launch-kvm: launch and start N tiny VMs through a real `ferromega serve` until all are
//! RUNNING, next to N raw QEMU processes started with the very same argv (the physical
//! limit), and print both times, the server's resident memory per VM and
//! `ratio ferromega/raw = <x>`.
//!
//! The raw side reads each VM's argv from the server's own QEMUs (`/proc/<pid>/cmdline`),
//! points it at fresh instance directories, spawns the processes, connects to each QMP
//! socket and sends `cont` — exactly what the server does, minus the server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use ferromega_api::Args;
use ferromega_client::Client;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

mod common;

use common::{binary, rss_kib, Server};

/// Launch N VMs through ferromega and N raw QEMUs; compare.
#[derive(Debug, Parser)]
#[command(name = "launch-kvm")]
struct Opts {
    /// Number of VMs.
    #[arg(default_value_t = 20)]
    n: usize,
    /// Folder with miniccc.kernel and miniccc.initrd (default target/images).
    #[arg(long)]
    images: Option<PathBuf>,
    /// The `ferromega` binary (default: next to this program).
    #[arg(long)]
    bin: Option<PathBuf>,
}

struct RawGuard(Vec<Child>);

impl Drop for RawGuard {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

async fn states(c: &Client) -> anyhow::Result<Vec<(String, String, String)>> {
    let r = c.invoke("vm_info", "minimega", &Args::default()).await?;
    let Some(t) = r.first() else {
        return Ok(vec![]);
    };
    let col = |n: &str| {
        t.header
            .iter()
            .position(|h| h == n)
            .context("vm info column")
    };
    let (name, state, pid) = (col("name")?, col("state")?, col("pid")?);
    Ok(t.tabular
        .iter()
        .map(|r| (r[name].clone(), r[state].clone(), r[pid].clone()))
        .collect())
}

async fn ferromega_round(
    c: &Client,
    n: usize,
    images: &Path,
) -> anyhow::Result<(Duration, Vec<u32>)> {
    for line in [
        format!(
            "vm config kernel {}",
            images.join("miniccc.kernel").display()
        ),
        format!(
            "vm config initrd {}",
            images.join("miniccc.initrd").display()
        ),
        "vm config append console=ttyS0 no_timer_check quiet panic=-1".to_string(),
        "vm config memory 128".to_string(),
    ] {
        c.command("minimega", &line).await?;
    }
    let start = Instant::now();
    c.command("minimega", &format!("vm launch kvm bench[1-{n}]"))
        .await?;
    c.command("minimega", "vm start all").await?;
    loop {
        let s = states(c).await?;
        if s.len() == n && s.iter().all(|(_, st, _)| st == "RUNNING") {
            let pids = s.iter().filter_map(|(_, _, p)| p.parse().ok()).collect();
            return Ok((start.elapsed(), pids));
        }
        if s.iter().any(|(_, st, _)| st == "ERROR") {
            bail!("a VM failed to launch: {s:?}");
        }
        if start.elapsed() > Duration::from_secs(300) {
            bail!("VMs not RUNNING after 300 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cmdline(pid: u32) -> anyhow::Result<Vec<String>> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline"))?;
    Ok(raw
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect())
}

async fn qmp_cont(sock: &Path) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let stream = loop {
        match tokio::net::UnixStream::connect(sock).await {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => bail!("qmp {}: {e}", sock.display()),
        }
    };
    let (r, mut w) = stream.into_split();
    let mut lines = BufReader::new(r).lines();
    lines.next_line().await?;
    for cmd in ["qmp_capabilities", "cont"] {
        w.write_all(format!("{{\"execute\":\"{cmd}\"}}\n").as_bytes())
            .await?;
        loop {
            let line = lines.next_line().await?.context("qmp closed")?;
            if line.contains("\"return\"") {
                break;
            }
            if line.contains("\"error\"") {
                bail!("qmp {cmd}: {line}");
            }
        }
    }
    Ok(())
}

async fn raw_round(
    argvs: &[(Vec<String>, PathBuf)],
    root: &Path,
) -> anyhow::Result<(Duration, RawGuard)> {
    let start = Instant::now();
    let mut guard = RawGuard(Vec::new());
    let mut socks = Vec::new();
    for (i, (argv, dir)) in argvs.iter().enumerate() {
        let raw_dir = root.join(format!("raw{i}"));
        std::fs::create_dir_all(&raw_dir)?;
        let from = dir.to_string_lossy().into_owned();
        let to = raw_dir.to_string_lossy().into_owned();
        let args: Vec<String> = argv[1..].iter().map(|a| a.replace(&from, &to)).collect();
        let child = Command::new(&argv[0])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        guard.0.push(child);
        socks.push(raw_dir.join("qmp"));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for s in socks {
        tasks.spawn(async move { qmp_cont(&s).await });
    }
    while let Some(r) = tasks.join_next().await {
        r??;
    }
    Ok((start.elapsed(), guard))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let bin = binary(opts.bin)?;
    let images = opts
        .images
        .unwrap_or_else(|| PathBuf::from("target/images"));
    if !images.join("miniccc.kernel").is_file() {
        bail!(
            "no guest image in {}: run misc/images/build {}",
            images.display(),
            images.display()
        );
    }
    let images = std::fs::canonicalize(&images)?;
    let tmp = tempfile::Builder::new().prefix("fm-bench-kvm-").tempdir()?;
    let server = Server::start(&bin).await?;
    let server_pid = server.child.id();
    let c = Client::new(&server.addr);
    let rss_before = rss_kib(server_pid);
    let (t_ferro, pids) = ferromega_round(&c, opts.n, &images).await?;
    let rss_after = rss_kib(server_pid);
    println!(
        "ferromega: {} VMs RUNNING in {:.2} s",
        opts.n,
        t_ferro.as_secs_f64()
    );
    let mut argvs = Vec::new();
    for pid in &pids {
        let argv = cmdline(*pid)?;
        let dir = argv
            .iter()
            .find_map(|a| {
                a.strip_prefix("unix:")
                    .and_then(|p| p.strip_suffix("/qmp,server=on,wait=off"))
            })
            .map(PathBuf::from)
            .context("no qmp socket in argv")?;
        argvs.push((argv, dir));
    }
    c.command("minimega", "clear all").await?;
    let (t_raw, raw) = raw_round(&argvs, tmp.path()).await?;
    drop(raw);
    println!(
        "raw qemu:  {} VMs running in {:.2} s",
        opts.n,
        t_raw.as_secs_f64()
    );
    let per_vm = rss_after.saturating_sub(rss_before) as f64 / opts.n as f64;
    println!("server resident memory: {rss_before} KiB idle, {rss_after} KiB with {} VMs ({per_vm:.1} KiB per VM)", opts.n);
    println!(
        "ratio ferromega/raw = {:.2}",
        t_ferro.as_secs_f64() / t_raw.as_secs_f64()
    );
    Ok(())
}
