//! Helpers of the host network tests: re-running a test in a fresh network namespace,
//! "NICs" whose far end is a process in a namespace of its own, pcap reading, and what
//! is left on the host afterwards.

#![expect(
    clippy::unwrap_used,
    reason = "test helpers: a failed unwrap is a failed test"
)]

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use ferromega_domain::network::Attach;

const INNER: &str = "FERROMEGA_NET_TEST_INNER";

/// Runs the test `name` again inside a fresh network namespace and checks it passed;
/// returns true when the caller is that inner run and should do the work (with `lo` up
/// there). Fails loudly
/// when one of `tools` (or unshare, nsenter, ip) is missing.
pub fn in_private_netns(name: &str, tools: &[&str]) -> bool {
    if std::env::var_os(INNER).is_some() {
        // Loopback carries the NetFlow exporters' datagrams to the collector.
        assert!(run(&["ip", "link", "set", "lo", "up"]).status.success());
        return true;
    }
    for tool in ["unshare", "nsenter", "ip"].iter().chain(tools) {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .unwrap()
                .status
                .success(),
            "{tool} missing: run misc/setup"
        );
    }
    let out = Command::new("unshare")
        .args(["-n", "--"])
        .arg(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(INNER, "1")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{name} failed in its network namespace:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    false
}

/// Runs a program and returns what it did.
pub fn run(argv: &[&str]) -> Output {
    Command::new(argv[0]).args(&argv[1..]).output().unwrap()
}

/// Its standard output as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// A process in a network namespace of its own: the far end of a "NIC".
pub struct Endpoint {
    child: Child,
}

impl Default for Endpoint {
    fn default() -> Self {
        Self::new()
    }
}

impl Endpoint {
    /// A new one (`unshare -n sleep`).
    pub fn new() -> Endpoint {
        let child = Command::new("unshare")
            .args(["-n", "--", "sleep", "600"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(100));
        Endpoint { child }
    }

    /// The PID whose namespace it is.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Runs a program in its namespace.
    pub fn sh(&self, argv: &[&str]) -> Output {
        let pid = self.pid().to_string();
        let mut a = vec!["nsenter", "-t", &pid, "-n", "--"];
        a.extend_from_slice(argv);
        run(&a)
    }

    /// Brings eth0 up with `cidr`.
    pub fn address(&self, cidr: &str) {
        assert!(self.sh(&["ip", "link", "set", "lo", "up"]).status.success());
        assert!(self
            .sh(&["ip", "addr", "add", cidr, "dev", "eth0"])
            .status
            .success());
        assert!(self
            .sh(&["ip", "link", "set", "eth0", "up"])
            .status
            .success());
    }

    /// Whether two pings to `ip` get an answer.
    pub fn pings(&self, ip: &str) -> bool {
        self.sh(&["busybox", "ping", "-c", "2", "-W", "1", ip])
            .status
            .success()
    }

    /// Whether `ip` answers within a few tries (Open vSwitch relearns a moved port's MAC
    /// and revalidates its cached flows in the background).
    pub fn connects(&self, ip: &str) -> bool {
        (0..4).any(|_| self.pings(ip))
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `bridge`, `vlan`.
pub fn at(bridge: &str, vlan: u16) -> Attach {
    Attach {
        bridge: bridge.into(),
        vlan,
    }
}

/// Interfaces of this namespace besides `lo`.
pub fn leftover_links() -> Vec<String> {
    stdout(&run(&["ip", "-br", "link"]))
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .filter(|n| n != "lo")
        .collect()
}

/// A runtime for one test.
pub fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Reads a classic pcap: (file snaplen, [(caplen, len, bytes)]).
pub fn read_pcap(path: &Path) -> (u32, Vec<(usize, usize, Vec<u8>)>) {
    let d = std::fs::read(path).unwrap();
    let u = |i: usize| u32::from_le_bytes(d[i..i + 4].try_into().unwrap());
    assert_eq!(u(0), 0xa1b2_c3d4, "pcap magic");
    let mut out = Vec::new();
    let mut i = 24;
    while i + 16 <= d.len() {
        let (cap, len) = (u(i + 8) as usize, u(i + 12) as usize);
        out.push((cap, len, d[i + 16..i + 16 + cap].to_vec()));
        i += 16 + cap;
    }
    (u(16), out)
}

/// Whether an Ethernet frame is IPv4 ICMP.
pub fn is_icmp(frame: &[u8]) -> bool {
    frame.len() > 23 && frame[12..14] == [0x08, 0x00] && frame[23] == 1
}

/// Waits up to `secs` seconds until `path` holds a line with both addresses; returns
/// the file's text.
pub fn wait_for_flow(path: &Path, a: &str, b: &str, secs: u64) -> String {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().any(|l| l.contains(a) && l.contains(b)) || Instant::now() > deadline {
            return text;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}
