//! mesh: fan-out latency of `vm info` over 1, 2 and 4 hosts, container launch
//! throughput when the scheduler spreads the VMs over them, and how late a VM's state
//! change reaches the head's events WebSocket (relayed over the peer link) compared with
//! its own host's. The last line reads `vm info ms: 1=<a> 2=<b> 4=<c>`.
//!
//! Five `ferromega serve` processes on loopback ports with temporary bases form a mesh
//! with a shared cluster secret: h0 is the head node (in no namespace it drives) and
//! h1..h4 are the workers. For k = 1, 2, 4 a namespace spans h1..hk; `--per-host`
//! containers per host are launched through the head and started, then `vm info` is
//! timed `--samples` times from the head (the median is reported). Every server is
//! stopped with SIGTERM at the end (its graceful shutdown clears its containers) and on
//! every error path.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use ferromega_api::Response;
use ferromega_client::Client;

mod common;

use common::{binary, find_image, reap, sigterm};

/// Fan-out latency and spread launch throughput over a mesh of local servers.
#[derive(Debug, Parser)]
#[command(name = "mesh")]
struct Opts {
    /// Containers launched per worker host for each measurement.
    #[arg(long, default_value_t = 10)]
    per_host: usize,
    /// `vm info` calls timed per host count.
    #[arg(long, default_value_t = 50)]
    samples: usize,
    /// Folder with `minicccfs` (default: `$FERROMEGA_IMAGES`, else target/images).
    #[arg(long)]
    images: Option<PathBuf>,
    /// The `ferromega` binary (default: `$FERROMEGA_BIN`, else the one next to this program).
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// The servers of the mesh; each is stopped (SIGTERM, then SIGKILL) when dropped.
struct Mesh {
    children: Vec<Child>,
    addrs: Vec<String>,
    _dir: tempfile::TempDir,
}

impl Drop for Mesh {
    fn drop(&mut self) {
        // All at once, then each waited for: they stop in parallel.
        self.children.iter().for_each(sigterm);
        let deadline = Instant::now() + Duration::from_secs(30);
        for c in &mut self.children {
            reap(c, deadline);
        }
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Mesh {
    /// Starts `n` servers h0..h(n-1), each dialing all the others.
    async fn start(bin: &Path, n: usize) -> anyhow::Result<Mesh> {
        let dir = tempfile::Builder::new()
            .prefix("fm-mesh-bench-")
            .tempdir()
            .context("cannot create a temporary folder")?;
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "fm-mesh-bench-secret-0123456789abcdef\n")?;
        let addrs = (0..n)
            .map(|_| free_port().map(|p| format!("127.0.0.1:{p}")))
            .collect::<anyhow::Result<Vec<String>>>()?;
        let mut mesh = Mesh {
            children: Vec::new(),
            addrs: addrs.clone(),
            _dir: dir,
        };
        let root = mesh._dir.path().to_path_buf();
        for (i, addr) in addrs.iter().enumerate() {
            let base = root.join(format!("h{i}"));
            let child = Command::new(bin)
                .arg("serve")
                .arg("--base")
                .arg(&base)
                .args(["--addr", addr, "--hostname", &format!("h{i}")])
                .arg("--cluster-secret-file")
                .arg(&secret)
                .args(["--peers", &addrs.join(","), "--level", "error", "--logfile"])
                .arg(base.with_extension("log"))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("cannot start {}", bin.display()))?;
            mesh.children.push(child);
        }
        let head = Client::new(&mesh.addrs[0]);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let size = match head.command("minimega", "mesh status").await {
                Ok(r) => r
                    .batches
                    .first()
                    .and_then(|b| b.resp.first())
                    .and_then(|r| r.tabular.first())
                    .and_then(|row| row.first())
                    .cloned()
                    .unwrap_or_default(),
                Err(_) => String::new(),
            };
            if size == n.to_string() {
                break;
            }
            for c in &mut mesh.children {
                if let Some(status) = c.try_wait()? {
                    bail!("a server exited: {status}");
                }
            }
            if Instant::now() > deadline {
                bail!("the mesh did not form within 60 s (head sees {size:?})");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Ok(mesh)
    }
}

/// Runs a command line in `ns`; any error reply fails.
async fn run(c: &Client, ns: &str, line: &str) -> anyhow::Result<Vec<Response>> {
    let reply = c.command(ns, line).await?;
    let resps: Vec<Response> = reply.batches.into_iter().flat_map(|b| b.resp).collect();
    if let Some(r) = resps.iter().find(|r| !r.error.is_empty()) {
        bail!("`{line}` on {}: {}", r.host, r.error);
    }
    Ok(resps)
}

/// (RUNNING, total) over every host of `ns`.
async fn running(c: &Client, ns: &str) -> anyhow::Result<(usize, usize)> {
    let mut up = 0;
    let mut total = 0;
    for r in run(c, ns, ".columns state vm info").await? {
        total += r.tabular.len();
        up += r.tabular.iter().filter(|row| row[0] == "RUNNING").count();
    }
    Ok((up, total))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The events WebSocket of the server at `addr`.
async fn events(addr: &str) -> anyhow::Result<Ws> {
    let (ws, _) = tokio_tungstenite::connect_async(format!("ws://{addr}/api/v1/events"))
        .await
        .with_context(|| format!("events of {addr}"))?;
    Ok(ws)
}

/// Reads `ws` until VM `name` is reported in `state`; when that was.
async fn seen(ws: &mut Ws, name: &str, state: &str) -> anyhow::Result<Instant> {
    use futures_util::StreamExt;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let Ok(Some(m)) = tokio::time::timeout(left, ws.next()).await else {
            bail!("no event {name} {state} in 30 s");
        };
        if let tokio_tungstenite::tungstenite::Message::Text(t) = m? {
            let e: serde_json::Value = serde_json::from_str(t.as_str())?;
            if e["type"] == "vm" && e["vm"]["name"] == name && e["vm"]["state"] == state {
                return Ok(Instant::now());
            }
        }
    }
}

/// How late a state change of a container on h1 (a `vm stop`/`vm start` from the head)
/// reaches h1's own events WebSocket and the head's (relayed): medians in ms.
async fn relay_latency(mesh: &Mesh, image: &Path, samples: usize) -> anyhow::Result<(f64, f64)> {
    let head = Client::new(&mesh.addrs[0]);
    let ns = "relay";
    run(&head, ns, "ns del-hosts all").await?;
    run(&head, ns, "ns add-hosts h1").await?;
    run(
        &head,
        ns,
        &format!("vm config filesystem {}", image.display()),
    )
    .await?;
    run(&head, ns, "vm config memory 32").await?;
    let mut at_head = events(&mesh.addrs[0]).await?;
    let mut at_h1 = events(&mesh.addrs[1]).await?;
    run(&head, ns, "vm launch container r0").await?;
    run(&head, ns, "vm start r0").await?;
    seen(&mut at_head, "r0", "RUNNING").await?;
    seen(&mut at_h1, "r0", "RUNNING").await?;
    let (mut direct, mut relayed) = (Vec::new(), Vec::new());
    for i in 0..samples.max(1) {
        let (op, state) = if i % 2 == 0 {
            ("stop", "PAUSED")
        } else {
            ("start", "RUNNING")
        };
        let t0 = Instant::now();
        run(&head, ns, &format!("vm {op} r0")).await?;
        let (h1, hd) = tokio::try_join!(
            seen(&mut at_h1, "r0", state),
            seen(&mut at_head, "r0", state)
        )?;
        direct.push((h1 - t0).as_secs_f64() * 1000.0);
        relayed.push((hd - t0).as_secs_f64() * 1000.0);
    }
    run(&head, "minimega", &format!("clear namespace {ns}")).await?;
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    Ok((median(&mut direct), median(&mut relayed)))
}

/// One host count: launch and start the containers, then time `vm info`. Returns
/// (containers/s, median ms).
async fn measure(head: &Client, k: usize, opts: &Opts, image: &Path) -> anyhow::Result<(f64, f64)> {
    let ns = format!("bench{k}");
    run(head, &ns, "ns del-hosts all").await?;
    run(head, &ns, &format!("ns add-hosts h[1-{k}]")).await?;
    run(
        head,
        &ns,
        &format!("vm config filesystem {}", image.display()),
    )
    .await?;
    run(head, &ns, "vm config memory 32").await?;
    let n = k * opts.per_host;
    let t0 = Instant::now();
    if n > 0 {
        run(head, &ns, &format!("vm launch container {n}")).await?;
        run(head, &ns, "vm start all").await?;
        let deadline = Instant::now() + Duration::from_secs(600);
        loop {
            let (up, total) = running(head, &ns).await?;
            if total != n {
                bail!("{total} containers in {ns}, want {n}");
            }
            if up == n {
                break;
            }
            if Instant::now() > deadline {
                bail!("only {up} of {n} containers RUNNING after 600 s");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let rate = n as f64 / t0.elapsed().as_secs_f64();
    let mut ms = Vec::with_capacity(opts.samples);
    for _ in 0..opts.samples.max(1) {
        let t = Instant::now();
        let resps = run(head, &ns, "vm info").await?;
        ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let hosts = resps.len();
        if hosts != k {
            bail!("vm info answered from {hosts} hosts, want {k}");
        }
    }
    ms.sort_by(f64::total_cmp);
    let median = ms[ms.len() / 2];
    run(head, "minimega", &format!("clear namespace {ns}")).await?;
    Ok((rate, median))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let bin = binary(opts.bin.clone())?;
    let image = find_image(opts.images.clone())?;
    let mesh = Mesh::start(&bin, 5).await?;
    let head = Client::new(&mesh.addrs[0]);
    let mut figures = Vec::new();
    for k in [1, 2, 4] {
        let (rate, median) = measure(&head, k, &opts, &image).await?;
        println!(
            "{k} host(s): {} containers, {rate:.1} containers/s launched+running; vm info median {median:.2} ms over {} calls",
            k * opts.per_host,
            opts.samples.max(1)
        );
        figures.push((k, median));
    }
    let (direct, relayed) = relay_latency(&mesh, &image, opts.samples.min(20)).await?;
    println!(
        "vm event ms (vm stop/start from the head): at its host={direct:.2} at the head={relayed:.2} ratio head/host={:.2}",
        relayed / direct
    );
    drop(mesh);
    let line: Vec<String> = figures
        .iter()
        .map(|(k, ms)| format!("{k}={ms:.2}"))
        .collect();
    println!("vm info ms: {}", line.join(" "));
    Ok(())
}
