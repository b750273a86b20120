//! Benchmark `tls-auth`: what TLS and auth cost a request. Requests per second of one
//! read operation (`vm info`) over kept-alive connections — plain HTTP, HTTPS, a bearer
//! token, HTTP Basic (argon2 once, then the server's cache) — and the time of a request on
//! a fresh connection (HTTP vs HTTPS: the TLS handshake) and of the first Basic request
//! (the argon2 verification). Last line: `ratio https/http = <x> bearer/none = <y>
//! basic/bearer = <z>`.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Parser;
use ferromega_api::Args;
use ferromega_client::{Client, Credentials};

/// Options.
#[derive(Debug, Parser)]
struct Opts {
    /// Seconds per mode and round.
    #[arg(long, default_value_t = 2)]
    seconds: u64,
    /// Rounds: the modes take turns, each round, and each mode's median is reported (the
    /// machine is shared; turns spread its noise over every mode alike).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Fresh connections timed per scheme.
    #[arg(long, default_value_t = 30)]
    fresh: usize,
    /// The `ferromega` binary (default `$FERROMEGA_BIN`, else next to this program).
    #[arg(long)]
    bin: Option<PathBuf>,
}

/// Starts a server with `extra` flags, waiting for it through a client with `creds`;
/// returns it and its URL.
async fn start(
    bin: &Path,
    extra: &[&std::ffi::OsStr],
    tls: bool,
    creds: &Credentials,
) -> anyhow::Result<(common::Server, String)> {
    let scheme = if tls { "https" } else { "http" };
    let server = common::Server::start_with(bin, extra, |addr| {
        Ok(Client::connect(&format!("{scheme}://{addr}"), creds)?)
    })
    .await?;
    let url = format!("{scheme}://{}", server.addr);
    Ok((server, url))
}

/// Runs `ferromega auth …` with `stdin`; its standard output.
fn auth(bin: &Path, args: &[&std::ffi::OsStr], stdin: &str) -> anyhow::Result<String> {
    use std::io::Write as _;
    let mut child = Command::new(bin)
        .arg("auth")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()?;
    child
        .stdin
        .take()
        .context("stdin")?
        .write_all(stdin.as_bytes())?;
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("ferromega auth {args:?} failed");
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Requests per second of `vm info` by `clients` copies of `client` for `secs`.
async fn rate(client: &Client, clients: usize, secs: u64) -> anyhow::Result<f64> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                c.invoke("vm_info", "minimega", &Args::default()).await?;
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(total as f64 / start.elapsed().as_secs_f64())
}

/// Mean milliseconds of one request on a fresh client (a new connection each time).
async fn fresh_ms(url: &str, creds: &Credentials, n: usize) -> anyhow::Result<f64> {
    let start = Instant::now();
    for _ in 0..n {
        let c = Client::connect(url, creds)?;
        c.invoke("vm_info", "minimega", &Args::default()).await?;
    }
    Ok(start.elapsed().as_secs_f64() * 1000.0 / n as f64)
}

/// The median of `v` (not empty).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let opts = Opts::parse();
    let bin = common::binary(opts.bin.clone())?;
    let dir = tempfile::Builder::new()
        .prefix("ferromega-bench-auth-")
        .tempdir()?;
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])?;
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, ck.cert.pem())?;
    std::fs::write(&key, ck.key_pair.serialize_pem())?;
    let file = dir.path().join("auth");
    let f = file.as_os_str();
    let token = auth(&bin, &["add-token".as_ref(), f, "bench".as_ref()], "")?;
    auth(
        &bin,
        &[
            "add-user".as_ref(),
            f,
            "bench-user".as_ref(),
            "--password-stdin".as_ref(),
        ],
        "bench-password\n",
    )?;
    auth(
        &bin,
        &["allow".as_ref(), f, "bench-user".as_ref(), "/".as_ref()],
        "",
    )?;

    let none = Credentials::default();
    let ca = Credentials {
        ca: Some(std::fs::read(&cert)?),
        ..Credentials::default()
    };
    let bearer = Credentials {
        token: Some(token),
        ..Credentials::default()
    };
    let basic = Credentials {
        user: Some(("bench-user".into(), "bench-password".into())),
        ..Credentials::default()
    };
    let (_plain, plain_url) = start(&bin, &[], false, &none).await?;
    let tls_flags = [
        "--tls-cert".as_ref(),
        cert.as_os_str(),
        "--tls-key".as_ref(),
        key.as_os_str(),
    ];
    let (_tls, tls_url) = start(&bin, &tls_flags, true, &ca).await?;
    let (_authed, authed_url) = start(&bin, &["--auth".as_ref(), f], false, &bearer).await?;

    // The first Basic request pays argon2; later ones hit the cache.
    let t = Instant::now();
    Client::connect(&authed_url, &basic)?
        .invoke("vm_info", "minimega", &Args::default())
        .await?;
    let first_basic = t.elapsed().as_secs_f64() * 1000.0;

    let http_fresh = fresh_ms(&plain_url, &none, opts.fresh).await?;
    let https_fresh = fresh_ms(&tls_url, &ca, opts.fresh).await?;
    let (c, s) = (opts.clients, opts.seconds);
    let modes = [
        Client::connect(&plain_url, &none)?,
        Client::connect(&tls_url, &ca)?,
        Client::connect(&authed_url, &bearer)?,
        Client::connect(&authed_url, &basic)?,
    ];
    let mut rates: [Vec<f64>; 4] = Default::default();
    for _ in 0..opts.rounds.max(1) {
        for (client, r) in modes.iter().zip(rates.iter_mut()) {
            r.push(rate(client, c, s).await?);
        }
    }
    let [http, https, bearer_rate, basic_rate] = rates.map(median);

    println!("fresh connection + request: http {http_fresh:.2} ms, https {https_fresh:.2} ms");
    println!("first HTTP Basic request (argon2 verify): {first_basic:.1} ms");
    println!(
        "requests/s ({c} clients, kept alive, median of {} rounds): http {http:.0}, \
         https {https:.0}, bearer {bearer_rate:.0}, basic {basic_rate:.0}",
        opts.rounds.max(1)
    );
    println!(
        "ratio https/http = {:.2} bearer/none = {:.2} basic/bearer = {:.2}",
        https / http,
        bearer_rate / http,
        basic_rate / bearer_rate
    );
    Ok(())
}
