//! launch-containers: launch and start N containers (default 100) from the minicccfs image
//! through a real `ferromega serve` until all are RUNNING, and print the time, the rate and
//! the server's resident memory per container. The last line reads
//! `containers/s = <x>; server KiB per container = <y>`.
//!
//! The server runs on a free loopback port with a temporary base; at the end (and on
//! every error path) its containers are cleared (`clear all`, or SIGTERM, whose graceful
//! shutdown clears them) before it goes, so no container outlives the benchmark.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use ferromega_api::Args;
use ferromega_client::Client;

mod common;

use common::{binary, find_image, ok, rss_kib, Server};

/// Launch and start N containers through ferromega; report the rate and memory.
#[derive(Debug, Parser)]
#[command(name = "launch-containers")]
struct Opts {
    /// Number of containers.
    #[arg(default_value_t = 100)]
    n: usize,
    /// Memory limit of each container, MB.
    #[arg(long, default_value_t = 64)]
    memory: u64,
    /// Folder with `minicccfs` (default: `$FERROMEGA_IMAGES`, else target/images).
    #[arg(long)]
    images: Option<PathBuf>,
    /// The `ferromega` binary (default: `$FERROMEGA_BIN`, else the one next to this program).
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// (RUNNING, ERROR, total) over `vm info`; the first error text, if any.
async fn census(c: &Client) -> anyhow::Result<(usize, usize, usize, Option<String>)> {
    let r = c.invoke("vm_info", "minimega", &Args::default()).await?;
    let Some(t) = r.first() else {
        return Ok((0, 0, 0, None));
    };
    let col = |n: &str| {
        t.header
            .iter()
            .position(|h| h == n)
            .context("vm info column")
    };
    let (state, tags) = (col("state")?, col("tags")?);
    let running = t.tabular.iter().filter(|r| r[state] == "RUNNING").count();
    let errors: Vec<_> = t.tabular.iter().filter(|r| r[state] == "ERROR").collect();
    let first = errors.first().map(|r| r[tags].clone());
    Ok((running, errors.len(), t.tabular.len(), first))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    if opts.n == 0 {
        bail!("N must be at least 1");
    }
    let bin = binary(opts.bin)?;
    let image = find_image(opts.images)?;
    let server = Server::start(&bin).await?;
    let c = Client::new(&server.addr);
    ok(&c, &format!("vm config filesystem {}", image.display())).await?;
    ok(&c, &format!("vm config memory {}", opts.memory)).await?;
    let pid = server.child.id();
    let rss_before = rss_kib(pid);

    let t0 = Instant::now();
    ok(&c, &format!("vm launch container bench[0-{}]", opts.n - 1)).await?;
    let launched = t0.elapsed();
    ok(&c, "vm start all").await?;
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let (running, errors, total, first) = census(&c).await?;
        if errors > 0 {
            bail!(
                "{errors} of {total} containers failed, e.g. {}",
                first.unwrap_or_default()
            );
        }
        if running == opts.n {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "only {running} of {} containers RUNNING after 600 s",
                opts.n
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let all = t0.elapsed();
    let rss_after = rss_kib(pid);

    let t1 = Instant::now();
    ok(&c, "clear all").await?;
    let cleared = t1.elapsed();
    drop(server);

    let n = opts.n as f64;
    let per = rss_after.saturating_sub(rss_before) as f64 / n;
    println!("containers:        {}", opts.n);
    println!("launch (BUILDING): {:.2} s", launched.as_secs_f64());
    println!("all RUNNING:       {:.2} s", all.as_secs_f64());
    println!("clear all:         {:.2} s", cleared.as_secs_f64());
    println!("server RSS:        {rss_before} KiB -> {rss_after} KiB");
    println!(
        "containers/s = {:.1}; server KiB per container = {per:.0}",
        n / all.as_secs_f64()
    );
    Ok(())
}
