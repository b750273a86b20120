//! network: TCP throughput between two endpoints on one VLAN through the Linux-bridge
//! backend (or, with `--backend ovs`, the Open vSwitch one on a private userspace
//! switch), without and with a pcap capture of the bridge running.
//!
//! The program re-runs itself under `unshare -n`, so the bridge, veths and endpoint
//! namespaces are private and vanish with it. Two `unshare -n sleep` processes are the
//! endpoints; `LinuxNetwork::veth_attach` plugs each into VLAN 10 of one logical bridge
//! (the same call that plugs a container in). iperf3 measures `--seconds` of TCP from
//! one to the other, alternately without and with a bridge capture writing a pcap file,
//! `--rounds` times each. It prints every round, and as its last line
//! `Mbit/s bridge=<x> captured=<y> drops=<n>` (medians; drops summed over the captured
//! rounds: frames the kernel discarded because the capture reader fell behind); with
//! `--backend ovs` the last line starts `Mbit/s ovs=`.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use ferromega_domain::backends::HostNetwork;
use ferromega_domain::network::{Attach, CaptureSpec, CaptureTarget};
use ferromega_host_network::ovs::PrivateSwitch;
use ferromega_host_network::{LinuxNetwork, OvsNetwork};

const INNER: &str = "FERROMEGA_BENCH_NETNS";

/// Throughput through the Linux-bridge backend, with and without a pcap capture.
#[derive(Debug, Parser)]
#[command(name = "network")]
struct Opts {
    /// Seconds each iperf3 run lasts.
    #[arg(long, default_value_t = 3)]
    seconds: u32,
    /// Runs of each mode (the report gives medians).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Snaplen of the capture.
    #[arg(long, default_value_t = 1600)]
    snaplen: u32,
    /// The switch: Linux bridges, or Open vSwitch (a private ovsdb-server and
    /// ovs-vswitchd with the userspace datapath, started for the run).
    #[arg(long, default_value = "bridge", value_parser = ["bridge", "ovs"])]
    backend: String,
}

/// A process alone in a new network namespace.
struct Endpoint(Child);

impl Endpoint {
    fn new() -> anyhow::Result<Endpoint> {
        let c = Command::new("unshare")
            .args(["-n", "--", "sleep", "3600"])
            .stdin(Stdio::null())
            .spawn()
            .context("unshare")?;
        std::thread::sleep(Duration::from_millis(100));
        Ok(Endpoint(c))
    }

    fn pid(&self) -> u32 {
        self.0.id()
    }

    fn cmd(&self, argv: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.pid().to_string(), "-n", "--"])
            .args(argv);
        c
    }

    fn run(&self, argv: &[&str]) -> anyhow::Result<Vec<u8>> {
        let o = self.cmd(argv).output().with_context(|| argv.join(" "))?;
        if !o.status.success() {
            bail!("{}: {}", argv.join(" "), String::from_utf8_lossy(&o.stderr));
        }
        Ok(o.stdout)
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Mbit/s of one iperf3 run from `a` to `b` (at 10.96.0.2).
fn iperf(a: &Endpoint, b: &Endpoint, seconds: u32) -> anyhow::Result<f64> {
    let mut server = b
        .cmd(&["iperf3", "-s", "-1"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("iperf3 -s")?;
    std::thread::sleep(Duration::from_millis(300));
    let out = a.run(&[
        "iperf3",
        "-c",
        "10.96.0.2",
        "-J",
        "-t",
        &seconds.to_string(),
    ]);
    let _ = server.kill();
    let _ = server.wait();
    let v: serde_json::Value = serde_json::from_slice(&out?).context("iperf3 json")?;
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e6)
        .context("iperf3 gave no result")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

async fn bench(opts: &Opts) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let switch = match opts.backend.as_str() {
        "ovs" => Some(PrivateSwitch::start(&dir.path().join("ovs")).context("open vswitch")?),
        _ => None,
    };
    let net: Box<dyn HostNetwork> = match &switch {
        Some(s) => Box::new(OvsNetwork::new(Some(s.db()))),
        None => Box::new(LinuxNetwork::new()),
    };
    let lan = Attach {
        bridge: "fmbench_br".into(),
        vlan: 10,
    };
    let (a, b) = (Endpoint::new()?, Endpoint::new()?);
    for (e, mac, ip) in [
        (&a, "00:1b:21:00:0b:01", "10.96.0.1/24"),
        (&b, "00:1b:21:00:0b:02", "10.96.0.2/24"),
    ] {
        net.veth_attach(e.pid(), "eth0", mac, Some(&lan))
            .await
            .map_err(anyhow::Error::msg)?;
        e.run(&["ip", "addr", "add", ip, "dev", "eth0"])?;
        e.run(&["ip", "link", "set", "eth0", "up"])?;
        e.run(&["ip", "link", "set", "lo", "up"])?;
    }
    let (mut plain, mut captured, mut drops, mut frames) = (Vec::new(), Vec::new(), 0, 0);
    for round in 0..opts.rounds {
        let x = iperf(&a, &b, opts.seconds)?;
        println!("round {round}: plain    {x:9.1} Mbit/s");
        plain.push(x);
        let spec = CaptureSpec {
            target: CaptureTarget::Bridge(lan.bridge.clone()),
            path: dir.path().join(format!("round{round}.pcap")),
            snaplen: opts.snaplen,
            filter: String::new(),
        };
        let id = net.capture_start(&spec).await.map_err(anyhow::Error::msg)?;
        let y = iperf(&a, &b, opts.seconds);
        let stats = net.capture_stop(id).await.map_err(anyhow::Error::msg)?;
        let _ = std::fs::remove_file(&spec.path);
        let y = y?;
        println!(
            "round {round}: captured {y:9.1} Mbit/s ({} frames written, {} dropped)",
            stats.packets, stats.drops
        );
        captured.push(y);
        drops += stats.drops;
        frames += stats.packets;
    }
    net.reset().await;
    drop(switch);
    println!("capture wrote {frames} frames in total");
    let label = if opts.backend == "ovs" {
        "ovs"
    } else {
        "bridge"
    };
    println!(
        "Mbit/s {label}={:.1} captured={:.1} drops={drops}",
        median(plain),
        median(captured)
    );
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    if std::env::var_os(INNER).is_none() {
        for tool in ["unshare", "nsenter", "ip", "iperf3"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()?
                .status
                .success();
            if !found {
                bail!("{tool} missing (apt-get install iproute2 iperf3 util-linux)");
            }
        }
        let status = Command::new("unshare")
            .args(["-n", "--"])
            .arg(std::env::current_exe()?)
            .args(std::env::args().skip(1))
            .env(INNER, "1")
            .status()
            .context("unshare -n")?;
        if !status.success() {
            bail!("benchmark failed");
        }
        return Ok(());
    }
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?
        .block_on(bench(&opts))
}
