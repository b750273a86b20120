//! A cluster of ferromega hosts on one machine: the test runs itself again in a network
//! namespace of its own holding a bridge (the "segment"), and each host is a
//! `ferromega serve` in a further namespace of its own, joined to the bridge by a veth,
//! with its own base directory, address (10.77.0.N:9001), name (hN) and the shared
//! cluster secret; every host dials every other from a peers file (or finds them by
//! discovery). Namespaces die with their processes, so nothing is left behind.
//! [`Cluster::start_tls`] starts the hosts serving HTTPS instead, with certificates a
//! test CA signed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferromega_api::Response;
use ferromega_client::{Client, Credentials};

/// The secret every host of the test cluster shares.
pub const SECRET: &str = "fm-mesh-test-secret-0123456789abcdef";

/// Runs test `name` again under `unshare -n`; true in that inner run.
pub fn in_private_netns(name: &str) -> bool {
    ferromega_tests::netns::in_private_netns(name, &["busybox"])
}

pub use ferromega_tests::netns::run;

/// Runs a program that must succeed.
pub fn must(argv: &[&str]) {
    let o = run(argv);
    assert!(
        o.status.success(),
        "{argv:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// One host of the cluster.
pub struct Host {
    /// `hN`.
    pub name: String,
    /// `10.77.0.N:9001`.
    pub addr: String,
    child: Option<Child>,
    n: usize,
    /// The CA (PEM) a client of a host serving TLS trusts.
    ca: Option<Vec<u8>>,
}

impl Host {
    /// A client of this host (over https, trusting its CA, when it serves TLS).
    pub fn client(&self) -> Client {
        match &self.ca {
            None => Client::new(&self.addr),
            Some(ca) => {
                let creds = Credentials {
                    ca: Some(ca.clone()),
                    ..Credentials::default()
                };
                Client::connect(&format!("https://{}", self.addr), &creds).expect("client")
            }
        }
    }

    /// The CA certificate (PEM) of a host serving TLS.
    #[allow(dead_code, reason = "only the TLS test reads it")]
    pub fn ca(&self) -> Option<&[u8]> {
        self.ca.as_deref()
    }

    /// Output of a program run in the host's network namespace (for failure messages).
    pub fn inside(&self, argv: &[&str]) -> String {
        let pid = self.child.as_ref().map(Child::id).unwrap_or(0).to_string();
        let mut a = vec!["nsenter", "-t", pid.as_str(), "-n", "--"];
        a.extend_from_slice(argv);
        let o = run(&a);
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    }

    /// Stops the host with SIGTERM (the server tears its VMs down); whether it exited
    /// within 15 s. It is killed when it did not.
    pub fn terminate(&mut self) -> bool {
        self.child
            .take()
            .is_none_or(|mut c| ferromega_tests::host::terminate(&mut c, Duration::from_secs(15)))
    }

    /// Kills the host with SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.terminate();
    }
}

/// The cluster: hosts h1..hN on one bridge.
pub struct Cluster {
    /// The hosts, h1 first (the head node in the tests).
    pub hosts: Vec<Host>,
    /// The mesh flags of each host (`--peers-file …` or `--degree … --context …`, and
    /// the TLS flags).
    flags: Vec<String>,
    /// The CA each host's clients trust, for hosts serving TLS.
    cas: Vec<Option<Vec<u8>>>,
    tmp: tempfile::TempDir,
}

fn ferromega() -> PathBuf {
    ferromega_tests::host::binary()
}

impl Cluster {
    /// Starts `n` hosts, each dialing the others from a peers file, and waits until
    /// each sees all the others as peers.
    pub fn start(n: usize) -> Cluster {
        let mut c = Cluster::segment();
        let peers: String = (1..=n).map(|i| format!("10.77.0.{i}:9001\n")).collect();
        let file = c.tmp.path().join("peers");
        std::fs::write(&file, peers).expect("peers");
        c.flags = vec![format!("--peers-file {}", file.display()); n];
        c.spawn_all();
        c.wait_for_mesh(Duration::from_secs(60));
        c
    }

    /// Starts `n` hosts in a chain: each dials only the next (h1–h2–…–hn); waits until
    /// h1 counts them all (the hosts beyond its peer are announced hello by hello).
    pub fn chain(n: usize) -> Cluster {
        let mut c = Cluster::segment();
        for i in 1..=n {
            let file = c.tmp.path().join(format!("peers{i}"));
            let next = if i < n {
                format!("10.77.0.{}:9001\n", i + 1)
            } else {
                String::new()
            };
            std::fs::write(&file, next).expect("peers");
            c.flags.push(format!("--peers-file {}", file.display()));
        }
        c.spawn_all();
        c.wait_for_size(&[0], n, Duration::from_secs(60));
        c
    }

    /// Starts `n` hosts serving HTTPS with certificates one test CA signed (IP SAN
    /// 10.77.0.N), each dialing the others from a peers file (or, with `discover`,
    /// finding them by UDP discovery), and `strangers` more hosts after them whose
    /// certificates another CA signed, dialing no one (or discovering in the same
    /// context); waits until each of the `n` sees the `n`. h1's certificate file holds
    /// its chain and is its own peer CA (the default); the others name the CA with
    /// `--peer-ca`.
    #[allow(dead_code, reason = "only the TLS test starts such a cluster")]
    pub fn start_tls(n: usize, strangers: usize, discover: bool) -> Cluster {
        let mut c = Cluster::segment();
        let dir = c.tmp.path().to_path_buf();
        let peers: String = (1..=n).map(|i| format!("10.77.0.{i}:9001\n")).collect();
        std::fs::write(dir.join("peers"), peers).expect("peers");
        let (ours, theirs) = (TestCa::new("cluster"), TestCa::new("stranger"));
        for i in 1..=n + strangers {
            let ca = if i <= n { &ours } else { &theirs };
            let (cert, key) = ca.issue(&format!("10.77.0.{i}"));
            let cert = if i == 1 { cert + &ca.pem } else { cert };
            let (cert_file, key_file) =
                (dir.join(format!("h{i}.crt")), dir.join(format!("h{i}.key")));
            std::fs::write(&cert_file, cert).expect("cert");
            std::fs::write(&key_file, key).expect("key");
            let mut flags = format!(
                "--tls-cert {} --tls-key {}",
                cert_file.display(),
                key_file.display()
            );
            if i > 1 {
                let ca_file = dir.join(format!("{}.ca", ca.name));
                std::fs::write(&ca_file, &ca.pem).expect("ca");
                flags += &format!(" --peer-ca {}", ca_file.display());
            }
            if discover {
                flags += &format!(" --degree {} --context tls", n + strangers - 1);
            } else if i <= n {
                flags += &format!(" --peers-file {}", dir.join("peers").display());
            }
            c.flags.push(flags);
            c.cas.push(Some(ca.pem.clone().into_bytes()));
        }
        c.spawn_all();
        let first: Vec<usize> = (0..n).collect();
        c.wait_for_size(&first, n, Duration::from_secs(60));
        c
    }

    /// Starts one host per entry of `contexts`, with no peers given: each looks for
    /// the hosts of its context by UDP discovery (degree = their number).
    pub fn discovering(contexts: &[&str]) -> Cluster {
        let mut c = Cluster::segment();
        c.flags = contexts
            .iter()
            .map(|ctx| {
                let others = contexts.iter().filter(|c| *c == ctx).count() - 1;
                format!("--degree {others} --context {ctx}")
            })
            .collect();
        c.spawn_all();
        c
    }

    /// The segment (bridge `fmm_br`) and the shared secret; no host yet.
    fn segment() -> Cluster {
        must(&["ip", "link", "set", "lo", "up"]);
        must(&["ip", "link", "add", "fmm_br", "type", "bridge"]);
        must(&["ip", "addr", "add", "10.77.0.254/24", "dev", "fmm_br"]);
        must(&["ip", "link", "set", "fmm_br", "up"]);
        let tmp = tempfile::Builder::new()
            .prefix("fm-mesh-")
            .tempdir()
            .expect("tempdir");
        std::fs::write(tmp.path().join("secret"), format!("{SECRET}\n")).expect("secret");
        Cluster {
            hosts: Vec::new(),
            flags: Vec::new(),
            cas: Vec::new(),
            tmp,
        }
    }

    fn spawn_all(&mut self) {
        for i in 1..=self.flags.len() {
            let h = self.spawn(i);
            self.hosts.push(h);
        }
    }

    fn base(&self, i: usize) -> PathBuf {
        self.tmp.path().join(format!("h{i}"))
    }

    /// The files directory of host `i`.
    pub fn files_dir(&self, i: usize) -> PathBuf {
        self.base(i).join("files")
    }

    /// The log of host `i` (for failure messages).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.base(i).with_extension("log")).unwrap_or_default()
    }

    fn spawn(&self, i: usize) -> Host {
        let dir = self.tmp.path();
        let addr = format!("10.77.0.{i}:9001");
        // The server waits for its address, which the veth below brings.
        let script = format!(
            "ip link set lo up && until ip -o addr show dev eth0 2>/dev/null | grep -q 10.77.0.{i}/; \
             do sleep 0.05; done && exec {bin} serve --accel tcg --level info --base {base} \
             --addr {addr} --hostname h{i} --cluster-secret-file {secret} {flags}",
            bin = ferromega().display(),
            base = self.base(i).display(),
            secret = dir.join("secret").display(),
            flags = self.flags[i - 1],
        );
        let log = std::fs::File::create(self.base(i).with_extension("log")).expect("log");
        let child = Command::new("unshare")
            .args(["-n", "--", "sh", "-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("unshare");
        let pid = child.id().to_string();
        // Owned from here: a failed step below kills it on unwind.
        let host = Host {
            name: format!("h{i}"),
            addr: addr.clone(),
            child: Some(child),
            n: i,
            ca: self.cas.get(i - 1).cloned().flatten(),
        };
        // `unshare` may not have left our namespace yet: a veth end sent there now
        // would land here.
        let ours = std::fs::read_link("/proc/self/ns/net").expect("our netns");
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::fs::read_link(format!("/proc/{pid}/ns/net"))
            .ok()
            .as_ref()
            == Some(&ours)
        {
            assert!(
                Instant::now() < deadline,
                "h{i} never left the test's namespace"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let veth = format!("fmm_h{i}");
        must(&[
            "ip", "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns", &pid,
        ]);
        must(&["ip", "link", "set", &veth, "master", "fmm_br", "up"]);
        let inside = |argv: &[&str]| {
            let mut a = vec!["nsenter", "-t", pid.as_str(), "-n", "--"];
            a.extend_from_slice(argv);
            must(&a);
        };
        inside(&[
            "ip",
            "addr",
            "add",
            &format!("10.77.0.{i}/24"),
            "dev",
            "eth0",
        ]);
        inside(&["ip", "link", "set", "eth0", "up"]);
        // Discovery's limited broadcast (255.255.255.255) needs a route out.
        inside(&["ip", "route", "add", "default", "dev", "eth0"]);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "h{i} did not listen on {addr}:\n{}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        host
    }

    /// Starts host `i` again after [`Host::kill`] (same base, address and peers).
    pub fn restart(&mut self, i: usize) {
        let h = self.spawn(i);
        self.hosts[i - 1] = h;
    }

    /// Waits until every live host counts every live host in `mesh status`.
    pub fn wait_for_mesh(&self, limit: Duration) {
        let live: Vec<usize> = (0..self.hosts.len())
            .filter(|i| self.hosts[*i].child.is_some())
            .collect();
        self.wait_for_size(&live, live.len(), limit);
    }

    /// Waits until each of the hosts at `which` (indexes) counts `size` in `mesh status`.
    pub fn wait_for_size(&self, which: &[usize], size: usize, limit: Duration) {
        let deadline = Instant::now() + limit;
        for h in which.iter().map(|i| &self.hosts[*i]) {
            loop {
                let got = block(cell(&h.client(), "minimega", "mesh status", "size"));
                if got == size.to_string() {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} sees a mesh of {got}, want {size}:\n{}",
                    h.name,
                    self.log(h.n)
                );
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
}

/// Runs a future to completion on a small runtime (the tests are synchronous so that
/// they can re-run themselves under `unshare`).
pub fn block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(f)
}

/// All responses of `line` in namespace `ns`.
pub async fn resps(c: &Client, ns: &str, line: &str) -> Vec<Response> {
    let reply = c.command(ns, line).await.expect("command");
    reply.batches.into_iter().flat_map(|b| b.resp).collect()
}

/// Runs `line`; every response must succeed.
pub async fn ok(c: &Client, ns: &str, line: &str) -> Vec<Response> {
    let r = resps(c, ns, line).await;
    for x in &r {
        assert!(
            x.error.is_empty(),
            "`{line}` failed on {}: {}",
            x.host,
            x.error
        );
    }
    r
}

/// The errors `line` gives, as `host: error`.
pub async fn errors(c: &Client, ns: &str, line: &str) -> Vec<String> {
    resps(c, ns, line)
        .await
        .into_iter()
        .filter(|r| !r.error.is_empty())
        .map(|r| format!("{}: {}", r.host, r.error))
        .collect()
}

/// Rows of a table command over every host: (host, row as column → value).
pub async fn rows(c: &Client, ns: &str, line: &str) -> Vec<(String, Vec<(String, String)>)> {
    let mut out = Vec::new();
    for r in ok(c, ns, line).await {
        for row in &r.tabular {
            let named = r.header.iter().cloned().zip(row.iter().cloned()).collect();
            out.push((r.host.clone(), named));
        }
    }
    out
}

/// The value of `column` in the first row of `line`'s table.
pub async fn cell(c: &Client, ns: &str, line: &str, column: &str) -> String {
    rows(c, ns, line)
        .await
        .into_iter()
        .next()
        .and_then(|(_, row)| row.into_iter().find(|(k, _)| k == column).map(|(_, v)| v))
        .unwrap_or_default()
}

/// Where each VM of the namespace runs: (name, host), sorted by name.
pub async fn placement(c: &Client, ns: &str) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = rows(c, ns, "vm info")
        .await
        .into_iter()
        .map(|(host, row)| {
            let name = row
                .into_iter()
                .find(|(k, _)| k == "name")
                .map(|(_, v)| v)
                .unwrap_or_default();
            (name, host)
        })
        .collect();
    v.sort();
    v
}

/// Configures namespace `ns` on the host of `c` for small containers of the test image
/// (16 MB) and launches one per `(name, host)`, scheduled on that host.
pub async fn launch_on(c: &Client, ns: &str, placed: &[(&str, &str)]) {
    ok(
        c,
        ns,
        &format!("vm config filesystem {}", image().display()),
    )
    .await;
    ok(c, ns, "vm config memory 16").await;
    for (name, host) in placed {
        ok(c, ns, &format!("vm config schedule {host}")).await;
        ok(c, ns, &format!("vm launch container {name}")).await;
    }
}

/// The container image, checked.
pub fn image() -> PathBuf {
    let fs = ferromega_tests::host::images_dir().join("minicccfs");
    assert!(
        Path::new(&fs).join("init").exists(),
        "{} missing: run `misc/images/build` or set FERROMEGA_IMAGES",
        fs.display()
    );
    fs
}

/// A test certificate authority.
struct TestCa {
    name: String,
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
    pem: String,
}

impl TestCa {
    fn new(name: &str) -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, format!("{name} test CA"));
        let key = rcgen::KeyPair::generate().expect("CA key");
        let cert = params.self_signed(&key).expect("CA certificate");
        let pem = cert.pem();
        TestCa {
            name: name.to_string(),
            cert,
            key,
            pem,
        }
    }

    /// A certificate for `ip` and its key (PEM).
    fn issue(&self, ip: &str) -> (String, String) {
        let params = rcgen::CertificateParams::new(vec![ip.to_string()]).expect("params");
        let key = rcgen::KeyPair::generate().expect("key");
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("certificate");
        (cert.pem(), key.serialize_pem())
    }
}
