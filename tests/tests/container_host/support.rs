//! Helpers of the container host test: the server under test, `vm info` reads, the
//! container's record, a console client, and what a container holds on the host.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use ferromega_api::{Args, Response};
use ferromega_client::Client;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::UnixStream;

#[allow(
    unused_imports,
    reason = "each test binary uses part of the support module"
)]
pub use ferromega_tests::host::{binary, free_port, info, ok, workspace, Server};

/// The container image, after checking what containers need from this host.
pub fn image() -> PathBuf {
    let uid = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Uid:")
                .map(|v| v.split_whitespace().next().map(str::to_string))
        })
        .flatten()
        .unwrap();
    assert_eq!(uid, "0", "container host tests need root");
    let fs = std::fs::read_to_string("/proc/filesystems").unwrap();
    assert!(
        fs.contains("overlay"),
        "overlayfs missing from /proc/filesystems"
    );
    let cgroups = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        cgroups.contains(" - cgroup ") || cgroups.contains(" - cgroup2 "),
        "no cgroup hierarchy is mounted"
    );
    let dir = ferromega_tests::host::images_dir();
    let fs = dir.join("minicccfs");
    assert!(
        fs.join("init").is_file(),
        "{} missing: run `misc/images/build {}` (or misc/images/container/build)",
        fs.display(),
        dir.display()
    );
    fs
}

/// A server on a fresh temporary base.
pub fn server(prefix: &str) -> (tempfile::TempDir, PathBuf, Server) {
    let tmp = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let base = tmp.path().join("base");
    std::fs::create_dir_all(&base).unwrap();
    let s = Server::start(&base, &format!("127.0.0.1:{}", free_port()));
    (tmp, base, s)
}

/// Runs a line and returns every response, errors included.
#[allow(dead_code, reason = "cc_host uses it; container_host only needs `ok`")]
pub async fn run(c: &Client, line: &str) -> Vec<Response> {
    let reply = c.command("minimega", line).await.expect("command");
    reply.batches.into_iter().flat_map(|b| b.resp).collect()
}

pub async fn vm_count(c: &Client) -> usize {
    let r = c
        .invoke("vm_info", "minimega", &Args::default())
        .await
        .unwrap();
    r[0].tabular.len()
}

pub async fn wait_state(c: &Client, name: &str, state: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let s = info(c, name, "state").await;
        if s == state {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{name} stayed {s}, wanted {state}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// What `<base>/<id>/container.json` says about a container.
pub struct Record {
    pub pid: u32,
    pub cgroups: Vec<PathBuf>,
}

impl Record {
    pub fn load(base: &Path, id: &str) -> Record {
        let text = std::fs::read_to_string(base.join(id).join("container.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let dirs = v["cgroup"]["dirs"].as_object().unwrap();
        Record {
            pid: v["pid"].as_u64().unwrap() as u32,
            cgroups: dirs
                .values()
                .map(|d| PathBuf::from(d.as_str().unwrap()))
                .collect(),
        }
    }

    pub fn dir(&self, controller: &str) -> PathBuf {
        self.cgroups
            .iter()
            .find(|d| d.to_string_lossy().contains(&format!("/{controller}/")))
            .cloned()
            .unwrap_or_else(|| self.cgroups[0].clone())
    }

    pub fn read(&self, controller: &str, file: &str) -> String {
        std::fs::read_to_string(self.dir(controller).join(file))
            .unwrap()
            .trim()
            .to_string()
    }

    /// cgroup v2 (one `unified` directory) rather than v1.
    fn v2(&self) -> bool {
        self.cgroups.len() == 1 && !self.cgroups[0].to_string_lossy().contains("/freezer/")
    }

    /// The freezer's state in v1 words: FROZEN or THAWED.
    pub fn freezer(&self) -> String {
        if !self.v2() {
            return self.read("freezer", "freezer.state");
        }
        let frozen = self.read("", "cgroup.events").contains("frozen 1");
        if frozen { "FROZEN" } else { "THAWED" }.to_string()
    }

    /// The memory limit in bytes.
    pub fn memory_limit(&self) -> u64 {
        let file = if self.v2() {
            "memory.max"
        } else {
            "memory.limit_in_bytes"
        };
        self.read("memory", file).parse().unwrap()
    }

    /// The CPU quota and period, microseconds.
    pub fn cpu_quota(&self) -> (String, String) {
        if self.v2() {
            let max = self.read("cpu", "cpu.max");
            let (q, p) = max.split_once(' ').unwrap();
            return (q.to_string(), p.to_string());
        }
        (
            self.read("cpu", "cpu.cfs_quota_us"),
            self.read("cpu", "cpu.cfs_period_us"),
        )
    }

    /// Processes the out-of-memory killer has killed in the cgroup.
    pub fn oom_kills(&self) -> u64 {
        let file = if self.v2() {
            "memory.events"
        } else {
            "memory.oom_control"
        };
        self.read("memory", file)
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill "))
            .map(|v| v.trim().parse().unwrap())
            .unwrap_or(0)
    }

    /// The server's group directories (the parents of the container's cgroups).
    pub fn groups(&self) -> Vec<PathBuf> {
        self.cgroups
            .iter()
            .map(|d| d.parent().unwrap().to_path_buf())
            .collect()
    }
}

/// A console client on `<instance>/console`.
pub struct Console {
    pub stream: UnixStream,
    pub seen: String,
}

static TAG: AtomicU64 = AtomicU64::new(100);

impl Console {
    pub async fn connect(path: &Path) -> Console {
        Console {
            stream: UnixStream::connect(path).await.unwrap(),
            seen: String::new(),
        }
    }

    /// Reads until `needle` has been seen (since connecting); returns everything.
    pub async fn until(&mut self, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut buf = [0u8; 4096];
        while !self.seen.contains(needle) {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(
                !left.is_zero(),
                "no {needle:?} on the console:\n{}",
                self.seen
            );
            if let Ok(r) = tokio::time::timeout(left, self.stream.read(&mut buf)).await {
                let n = r.unwrap();
                assert!(n > 0, "console closed before {needle:?}:\n{}", self.seen);
                self.seen.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        }
        self.seen.clone()
    }

    /// Runs `cmd` in the console's shell and returns its output. The markers are
    /// computed by the shell, so the echo of the typed line never matches them.
    pub async fn sh(&mut self, cmd: &str) -> String {
        let tag = TAG.fetch_add(1, Ordering::SeqCst);
        let line = format!("echo fm-b$(({tag}+0)); {cmd}; echo fm-e$(({tag}+0))\n");
        self.stream.write_all(line.as_bytes()).await.unwrap();
        let end = format!("fm-e{tag}");
        let text = self.until(&end, 30).await;
        let begin = format!("fm-b{tag}");
        let from = text.rfind(&begin).unwrap() + begin.len();
        let to = text.rfind(&end).unwrap();
        text[from..to].replace('\r', "").trim().to_string()
    }
}

/// `ns` links of a process (`/proc/<pid>/ns/<ns>`).
pub fn ns_link(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap()
        .display()
        .to_string()
}

/// Processes of the host whose cgroups name `group`, with the lines naming it.
pub fn processes_in(group: &str) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        if !name.chars().all(|c| c.is_ascii_digit()) {
            continue;
        }
        let text = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if text.contains(group) {
            found.push(format!("{name}: {}", text.replace('\n', " ")));
        }
    }
    found
}

/// Holders of the network namespace `netns` (`net:[…]`) that belong to one of `groups`
/// (a process in one of the server's cgroups), or a bind mount of it. Namespace inode
/// numbers are reused, so a process of another test may hold a new namespace with the
/// same number: only ours count.
pub fn netns_holders(netns: &str, groups: &[String]) -> Vec<String> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().filter_map(Result::ok) {
        let same = std::fs::read_link(e.path().join("ns/net"))
            .map(|l| l.display().to_string() == netns)
            .unwrap_or(false);
        let cg = std::fs::read_to_string(e.path().join("cgroup")).unwrap_or_default();
        if same && groups.iter().any(|g| cg.contains(g.as_str())) {
            found.push(format!("process {}", e.file_name().to_string_lossy()));
        }
    }
    let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    found.extend(
        mounts
            .lines()
            .filter(|l| l.contains(" nsfs ") && l.contains(netns))
            .map(|l| format!("mount {l}")),
    );
    found
}

/// Mounts of the host under `base`.
pub fn mounts_under(base: &Path) -> Vec<String> {
    let base = base.display().to_string();
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter(|l| l.split(' ').nth(4).is_some_and(|p| p.starts_with(&base)))
        .map(str::to_string)
        .collect()
}

/// What a launched container holds on the host, to check it is all gone later.
#[derive(Default)]
pub struct Held {
    pub groups: Vec<PathBuf>,
    pub cgroups: Vec<PathBuf>,
    pub netns: Vec<String>,
    pub pids: Vec<u32>,
}

impl Held {
    pub fn add(&mut self, base: &Path, id: &str) {
        let r = Record::load(base, id);
        self.netns.push(ns_link(&r.pid.to_string(), "net"));
        self.pids.push(r.pid);
        for g in r.groups() {
            if !self.groups.contains(&g) {
                self.groups.push(g);
            }
        }
        self.cgroups.extend(r.cgroups);
    }

    /// Asserts that nothing of the containers is left: mounts under `base`, cgroups,
    /// processes, network namespaces (held by our processes, a mount, or a descriptor of
    /// the server `server`), and the inits themselves.
    pub fn assert_released(&self, base: &Path, server: u32, when: &str) {
        let mounts = mounts_under(base);
        assert!(mounts.is_empty(), "{when}: mounts left: {mounts:#?}");
        for d in self.cgroups.iter().chain(&self.groups) {
            assert!(!d.exists(), "{when}: cgroup {} left", d.display());
        }
        for g in &self.groups {
            let name = g.file_name().unwrap().to_string_lossy().into_owned();
            let procs = processes_in(&name);
            assert!(procs.is_empty(), "{when}: processes left: {procs:#?}");
        }
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| g.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let server_fds: Vec<String> = std::fs::read_dir(format!("/proc/{server}/fd"))
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .map(|l| l.display().to_string())
            .collect();
        for n in &self.netns {
            assert!(
                !server_fds.contains(n),
                "{when}: the server holds netns {n}"
            );
            let held = netns_holders(n, &groups);
            assert!(held.is_empty(), "{when}: netns {n} still held: {held:?}");
        }
        for p in &self.pids {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).unwrap_or_default();
            assert!(
                !stat.contains("(init)") && !stat.contains("(ferromega)"),
                "{when}: container process {p} left: {stat}"
            );
        }
    }
}
