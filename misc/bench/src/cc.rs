//! cc: how fast command and control is, through a real `ferromega serve` — the time from
//! `vm start` to the agent checked in (a container and a KVM guest), the `cc exec` round
//! trip with N container clients (default 100: queue `cc exec true`, wait until all
//! answered), and file send throughput (`cc send` of a file to one container). The last
//! line reads `checkin s: container=<x> kvm=<y>; exec round trip s (100 clients) = <z>`.
//!
//! Needs the images with the agent (`misc/images/build` with `AGENT=`, as misc/test does).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use ferromega_client::Client;

mod common;

use common::{binary, find_image, ok, Server};

/// Command-and-control figures.
#[derive(Debug, Parser)]
#[command(name = "cc")]
struct Opts {
    /// Container clients for the exec round trip.
    #[arg(long, default_value_t = 100)]
    clients: usize,
    /// Exec rounds (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Size of the file sent, MB.
    #[arg(long, default_value_t = 100)]
    file_mb: usize,
    /// Skip the KVM guest (its figure is then `-`).
    #[arg(long)]
    no_kvm: bool,
    /// Folder with `minicccfs`, `miniccc.kernel`, `miniccc.initrd` (default:
    /// `$FERROMEGA_IMAGES`, else target/images).
    #[arg(long)]
    images: Option<PathBuf>,
    /// The `ferromega` binary (default: `$FERROMEGA_BIN`, else the one next to this program).
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// A table column of one response, by header name.
async fn column(c: &Client, line: &str, name: &str) -> anyhow::Result<Vec<String>> {
    let reply = c.command("minimega", line).await?;
    let mut out = Vec::new();
    for r in reply.batches.iter().flat_map(|b| &b.resp) {
        if !r.error.is_empty() {
            bail!("`{line}`: {}", r.error);
        }
        if let Some(i) = r.header.iter().position(|h| h == name) {
            out.extend(r.tabular.iter().map(|row| row[i].clone()));
        }
    }
    Ok(out)
}

/// Waits until `n` VMs are cc_active; seconds taken from `since`.
async fn checked_in(c: &Client, n: usize, since: Instant) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let active = column(c, "vm info", "cc_active").await?;
        if active.iter().filter(|a| *a == "true").count() >= n {
            return Ok(since.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            bail!("agents did not check in within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Queues `cc <line>` and waits until `n` clients answered it; seconds taken.
async fn answered(c: &Client, line: &str, n: usize) -> anyhow::Result<f64> {
    let t = Instant::now();
    ok(c, &format!("cc {line}")).await?;
    let id = column(c, "cc commands", "id")
        .await?
        .last()
        .cloned()
        .context("no command queued")?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let ids = column(c, "cc commands", "id").await?;
        let resp = column(c, "cc commands", "responses").await?;
        let got = ids
            .iter()
            .zip(&resp)
            .find(|(i, _)| **i == id)
            .and_then(|(_, r)| r.parse::<usize>().ok())
            .unwrap_or(0);
        if got >= n {
            return Ok(t.elapsed().as_secs_f64());
        }
        if Instant::now() > deadline {
            bail!("`cc {line}`: {got} of {n} answers after 600 s");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

async fn container_figures(opts: &Opts, bin: &Path, fs: &Path) -> anyhow::Result<(f64, f64, f64)> {
    let server = Server::start(bin).await?;
    let c = Client::new(&server.addr);
    ok(&c, &format!("vm config filesystem {}", fs.display())).await?;
    ok(&c, "vm config memory 64").await?;
    ok(&c, "vm launch container first").await?;
    let t = Instant::now();
    ok(&c, "vm start first").await?;
    let checkin = checked_in(&c, 1, t).await?;

    // File send throughput, to the one container.
    let data: Vec<u8> = (0..opts.file_mb * 1024 * 1024)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3])
        .collect();
    let files_dir = server.files_dir();
    std::fs::create_dir_all(&files_dir)?;
    std::fs::write(files_dir.join("bench.bin"), &data)?;
    drop(data);
    let send_s = answered(&c, "send bench.bin", 1).await?;
    let mbps = opts.file_mb as f64 / send_s;

    // The exec round trip with N clients.
    if opts.clients > 1 {
        ok(&c, &format!("vm launch container c[2-{}]", opts.clients)).await?;
        ok(&c, "vm start all").await?;
    }
    checked_in(&c, opts.clients, Instant::now()).await?;
    let mut trips = Vec::new();
    for _ in 0..opts.rounds.max(1) {
        trips.push(answered(&c, "exec true", opts.clients).await?);
    }
    ok(&c, "clear all").await?;
    Ok((checkin, median(trips), mbps))
}

async fn kvm_checkin(bin: &Path, images: &Path) -> anyhow::Result<f64> {
    let server = Server::start(bin).await?;
    let c = Client::new(&server.addr);
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
        "vm launch kvm guest".to_string(),
    ] {
        ok(&c, &line).await?;
    }
    let t = Instant::now();
    ok(&c, "vm start guest").await?;
    let s = checked_in(&c, 1, t).await?;
    ok(&c, "clear all").await?;
    Ok(s)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    if opts.clients == 0 || opts.file_mb == 0 {
        bail!("--clients and --file-mb must be at least 1");
    }
    let bin = binary(opts.bin.clone())?;
    let fs = find_image(opts.images.clone())?;
    let images = fs.parent().context("images folder")?.to_path_buf();
    let (container, trip, mbps) = container_figures(&opts, &bin, &fs).await?;
    let kvm = if opts.no_kvm {
        "-".to_string()
    } else {
        format!("{:.2}", kvm_checkin(&bin, &images).await?)
    };
    println!(
        "cc send MB/s (one container, {} MB) = {mbps:.1}",
        opts.file_mb
    );
    println!(
        "checkin s: container={container:.2} kvm={kvm}; exec round trip s ({} clients) = {trip:.3}",
        opts.clients
    );
    Ok(())
}
