//! ferromega-agent: the guest command-and-control agent (ferromega's miniccc).
//!
//! It connects to the server over the virtio-serial port named `cc` (KVM guests), the
//! unix socket `/cc` (containers) or TCP, says [`Hello`], runs the commands it is sent
//! in ID order and answers each (fetching and returning files, killing processes,
//! binding stdio to pipes), relays tunnels, and sends heartbeats. When the link drops
//! it connects again. Its local socket (`<dir>/miniccc`) serves the `tag` and `pipe`
//! client modes.
//!
//! ```text
//! ferromega-agent [--path <char device | unix socket | tcp:host:port>] [--uuid <uuid>]
//!                 [--dir <dir>] [--level <level>]
//! ferromega-agent [--dir <dir>] tag KEY VALUE
//! ferromega-agent [--dir <dir>] pipe NAME
//! ```
//!
//! Without `--path` it looks for the virtio port named `cc`, then `/cc`. The UUID comes
//! from `--uuid`, `$FERROMEGA_UUID`, or `/sys/class/dmi/id/product_uuid`. `--dir`
//! (default `/tmp/miniccc`, as miniccc) holds the files it is sent (`files/`) and its
//! local socket.

mod exec;
mod local;
mod log;
mod session;
mod state;

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ferromega_cc_proto::{Hello, VERSION};

use state::Agent;

#[derive(Default)]
struct Options {
    path: Option<String>,
    uuid: Option<String>,
    dir: Option<PathBuf>,
    rest: Vec<String>,
}

fn usage() -> ! {
    eprintln!(
        "usage: ferromega-agent [--path PATH] [--uuid UUID] [--dir DIR] [--level LEVEL]\n       \
         ferromega-agent [--dir DIR] tag KEY VALUE\n       \
         ferromega-agent [--dir DIR] pipe NAME"
    );
    std::process::exit(2)
}

fn options() -> Options {
    let mut o = Options::default();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--path" => o.path = Some(args.next().unwrap_or_else(|| usage())),
            "--uuid" => o.uuid = Some(args.next().unwrap_or_else(|| usage())),
            "--dir" => o.dir = Some(args.next().unwrap_or_else(|| usage()).into()),
            "--level" => {
                if !log::set_level(&args.next().unwrap_or_else(|| usage())) {
                    usage()
                }
            }
            _ if a.starts_with('-') => usage(),
            _ => {
                o.rest.push(a);
                o.rest.extend(args.by_ref());
            }
        }
    }
    o
}

fn main() {
    let opts = options();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let dir = opts.dir.clone().unwrap_or_else(|| "/tmp/miniccc".into());
    let rest: Vec<&str> = opts.rest.iter().map(String::as_str).collect();
    let result = match rest.as_slice() {
        [] => {
            rt.block_on(run(opts, dir));
            Ok(())
        }
        ["tag", k, v] => rt.block_on(local::tag(&dir, k, v)),
        ["pipe", name] => rt.block_on(local::pipe(&dir, name)),
        _ => usage(),
    };
    if let Err(e) = result {
        eprintln!("ferromega-agent: {e}");
        std::process::exit(1);
    }
}

async fn run(opts: Options, dir: PathBuf) {
    let agent = Agent::new(dir);
    tokio::spawn(local::serve(agent.clone()));
    loop {
        let path = opts.path.clone().or_else(default_path);
        match path {
            None => warn!("no cc port found (virtio port `cc` or /cc)"),
            Some(path) => {
                let mut hello = hello(opts.uuid.as_deref());
                hello.tags = agent.tags();
                match session(&agent, &path, hello).await {
                    Ok(()) => info!("{path}: link closed"),
                    Err(e) => warn!("{path}: {e}"),
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// The virtio-serial port named `cc`, else the container socket `/cc`.
fn default_path() -> Option<String> {
    if let Ok(ports) = std::fs::read_dir("/sys/class/virtio-ports") {
        for p in ports.flatten() {
            let name = std::fs::read_to_string(p.path().join("name")).unwrap_or_default();
            if name.trim() == "cc" {
                return Some(format!("/dev/{}", p.file_name().to_string_lossy()));
            }
        }
    }
    Path::new("/cc").exists().then(|| "/cc".to_string())
}

async fn session(agent: &Agent, path: &str, hello: Hello) -> io::Result<()> {
    if let Some(addr) = path.strip_prefix("tcp:") {
        let s = tokio::net::TcpStream::connect(addr).await?;
        let (r, w) = tokio::io::split(s);
        return session::serve(agent, r, w, hello).await;
    }
    let meta = std::fs::metadata(path)?;
    use std::os::unix::fs::FileTypeExt;
    if meta.file_type().is_socket() {
        let s = tokio::net::UnixStream::connect(path).await?;
        let (r, w) = tokio::io::split(s);
        session::serve(agent, r, w, hello).await
    } else {
        // A virtio port opens once; one tokio File cannot read and write at the same
        // time, so reads and writes go through two handles of the one open file.
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)?;
        let w = tokio::fs::File::from_std(f.try_clone()?);
        let r = tokio::fs::File::from_std(f);
        session::serve(agent, r, w, hello).await
    }
}

fn read_trim(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// What the agent says about the guest.
fn hello(uuid: Option<&str>) -> Hello {
    let uuid = uuid
        .map(str::to_string)
        .or_else(|| std::env::var("FERROMEGA_UUID").ok())
        .unwrap_or_else(|| read_trim("/sys/class/dmi/id/product_uuid"))
        .to_lowercase();
    let hostname = {
        let h = read_trim("/proc/sys/kernel/hostname");
        if h.is_empty() {
            read_trim("/etc/hostname")
        } else {
            h
        }
    };
    let (ips, macs) = interfaces();
    Hello {
        version: VERSION,
        uuid,
        hostname,
        arch: std::env::consts::ARCH.to_string(),
        os: std::env::consts::OS.to_string(),
        ips,
        macs,
        tags: BTreeMap::new(),
    }
}

/// MACs of the interfaces that have one, and their IPv4 addresses (from
/// `/proc/net/fib_trie`, which lists local addresses without needing a socket ioctl).
fn interfaces() -> (Vec<String>, Vec<String>) {
    let mut macs = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/sys/class/net") {
        let mut names: Vec<PathBuf> = dir.flatten().map(|e| e.path()).collect();
        names.sort();
        for p in names {
            let mac = read_trim(p.join("address"));
            if !mac.is_empty() && mac != "00:00:00:00:00:00" {
                macs.push(mac);
            }
        }
    }
    let mut ips = Vec::new();
    let trie = std::fs::read_to_string("/proc/net/fib_trie").unwrap_or_default();
    let mut prev = "";
    for line in trie.lines() {
        if line.contains("/32 host LOCAL") {
            if let Some(ip) = prev.trim().strip_prefix("|-- ") {
                if !ip.starts_with("127.") && !ips.iter().any(|i| i == ip) {
                    ips.push(ip.to_string());
                }
            }
        }
        prev = line;
    }
    (ips, macs)
}

#[cfg(test)]
mod tests;
