//! The contract table: one meaningful call of every operation, its expected result and
//! its effect seen through later commands; a test fails when an operation has no row.

use std::collections::BTreeSet;
use std::time::Duration;

use ferromega_api::Args;
use ferromega_command::handlers::operations;
use ferromega_tests::{args, TestApp, TEST_HOST};

use crate::{outcome, Outcome};

mod cc;
mod fields;
mod kvm;
mod net;
mod vnc;

/// What the call itself must give.
enum Expect {
    /// One empty successful response from the test host.
    Ok,
    /// One response with exactly this text (`@FILES@` is the files directory).
    Text(String),
    /// One response whose text contains this.
    Contains(String),
    /// Responses with these texts, in order.
    Texts(Vec<String>),
    /// One table with this header and exactly these rows.
    Table(Vec<String>, Vec<Vec<String>>),
    /// One table with this header and this many rows.
    Shape(Vec<String>, usize),
    /// An error with this HTTP status and text.
    Error(u16, String),
    /// Anything else: a check returning what is wrong.
    Custom(fn(&Outcome) -> Result<(), String>),
}

/// One row of the table.
struct Case {
    op: &'static str,
    /// Namespace in the URL (ignored by global operations).
    ns: &'static str,
    /// Files created under the files directory first (path, content).
    files: Vec<(&'static str, &'static str)>,
    /// Command lines run first, as one session starting in `ns`.
    setup: Vec<&'static str>,
    args: Args,
    expect: Expect,
    /// Lines run afterwards in `ns` and their exact minitest output (`@FILES@` expanded).
    after: Vec<(&'static str, &'static str)>,
    /// Lines run afterwards whose output must contain the text.
    after_has: Vec<(&'static str, &'static str)>,
    /// The server must stop after the call.
    stops_server: bool,
}

fn case(op: &'static str, expect: Expect) -> Case {
    Case {
        op,
        ns: "minimega",
        files: Vec::new(),
        setup: Vec::new(),
        args: Args::default(),
        expect,
        after: Vec::new(),
        after_has: Vec::new(),
        stops_server: false,
    }
}

impl Case {
    fn args(mut self, a: ferromega_tests::ArgsBuilder) -> Self {
        self.args = a.build();
        self
    }

    fn setup(mut self, lines: &[&'static str]) -> Self {
        self.setup = lines.to_vec();
        self
    }

    fn files(mut self, files: &[(&'static str, &'static str)]) -> Self {
        self.files = files.to_vec();
        self
    }

    fn after(mut self, checks: &[(&'static str, &'static str)]) -> Self {
        self.after = checks.to_vec();
        self
    }

    fn after_has(mut self, checks: &[(&'static str, &'static str)]) -> Self {
        self.after_has = checks.to_vec();
        self
    }

    fn ns(mut self, ns: &'static str) -> Self {
        self.ns = ns;
        self
    }

    fn stops_server(mut self) -> Self {
        self.stops_server = true;
        self
    }
}

fn text(s: &str) -> Expect {
    Expect::Text(s.to_string())
}

fn contains(s: &str) -> Expect {
    Expect::Contains(s.to_string())
}

fn strs(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn table(header: &[&str], rows: &[&[&str]]) -> Expect {
    Expect::Table(strs(header), rows.iter().map(|r| strs(r)).collect())
}

fn err(status: u16, text: &str) -> Expect {
    Expect::Error(status, text.to_string())
}

const NO_KVM: &str = "{\"error\":\"no kvm runtime on this host\"}";

fn check_or_fail_in_path(o: &Outcome) -> Result<(), String> {
    match o {
        Ok(r) if r.len() == 1 && r[0].error.is_empty() && r[0].response.is_empty() => Ok(()),
        Err((500, errors))
            if errors
                .iter()
                .flat_map(|e| e.lines())
                .all(|l| l.ends_with(" not found in PATH")) =>
        {
            Ok(())
        }
        other => Err(format!(
            "want silence or `<program> not found in PATH` lines, got {other:?}"
        )),
    }
}

fn check_schedules(o: &Outcome) -> Result<(), String> {
    let r = o.as_ref().map_err(|e| format!("{e:?}"))?;
    let t = &r[0];
    let want = strs(&[
        "start", "end", "state", "launched", "failures", "total", "hosts",
    ]);
    if t.header != want || t.tabular.len() != 1 {
        return Err(format!("header {:?}, rows {:?}", t.header, t.tabular));
    }
    // One VM, scheduled here, failed (no KVM runtime), schedule finished.
    if t.tabular[0][2..] != strs(&["completed", "0", "1", "1", "1"]) {
        return Err(format!("row {:?}", t.tabular[0]));
    }
    Ok(())
}

fn check_vm_info(o: &Outcome) -> Result<(), String> {
    let r = o.as_ref().map_err(|e| format!("{e:?}"))?;
    let [t] = r.as_slice() else {
        return Err(format!("want one response, got {r:?}"));
    };
    let col = |name: &str| t.header.iter().position(|h| h == name);
    let expected_header = [
        "id",
        "name",
        "state",
        "uptime",
        "type",
        "uuid",
        "cc_active",
        "vlan",
        "bridge",
        "tap",
        "mac",
        "ip",
        "ip6",
        "qos",
        "memory",
        "vcpus",
        "disk",
        "snapshot",
        "initrd",
        "kernel",
        "cdrom",
        "migrate",
        "append",
        "serial-ports",
        "virtio-ports",
        "vnc_port",
        "pid",
        "filesystem",
        "hostname",
        "init",
        "preinit",
        "fifo",
        "volume",
        "console_port",
        "tags",
    ];
    if t.header != strs(&expected_header) {
        return Err(format!("header {:?}", t.header));
    }
    let [row] = t.tabular.as_slice() else {
        return Err(format!("want one row, got {:?}", t.tabular));
    };
    let cell = |name: &str| col(name).map(|i| row[i].as_str()).unwrap_or("?");
    let got = [
        cell("name"),
        cell("state"),
        cell("type"),
        cell("memory"),
        cell("filesystem"),
        cell("tags"),
    ];
    let want = ["foo", "ERROR", "kvm", "2048", "N/A", NO_KVM];
    if got != want {
        return Err(format!("cells {got:?}, want {want:?}"));
    }
    match &t.data {
        Some(serde_json::Value::Array(vms)) if vms.len() == 1 => Ok(()),
        other => Err(format!("data should list the one VM, got {other:?}")),
    }
}

fn vm_info_columns() -> &'static str {
    "name | state | tags\nfoo1 | ERROR | {\"error\":\"no kvm runtime on this host\"}\n\
     foo2 | ERROR | {\"error\":\"no kvm runtime on this host\"}"
}

/// Every operation's row.
fn cases() -> Vec<Case> {
    let ns_table = "namespace | vlans    | active\nminimega  | 101-4096 | true";
    let mut v = vec![
        // Miscellaneous.
        case(
            "help",
            text("Usage:\n\tvm config memory [value]\n\nmemory in megabytes. Default: 2048"),
        )
        .args(args().l("command", &["vm", "config", "memory"])),
        case("history", text("echo a\necho b")).setup(&["echo a", "echo b"]),
        case("clear_history", Expect::Ok)
            .setup(&["echo a"])
            .after(&[("history", "")]),
        case("write", Expect::Ok)
            .setup(&["echo a", "echo b"])
            .args(args().s("file", "$files/history.txt"))
            .after(&[("shell cat $files/history.txt", "echo a\necho b")]),
        case("echo", text("hello world")).args(args().l("args", &["hello", "world"])),
        case(
            "version",
            Expect::Text(format!("ferromega {}", env!("CARGO_PKG_VERSION"))),
        ),
        case("read", Expect::Texts(strs(&["one", "two"])))
            .files(&[("script.mm", "echo one\n\n# a comment\necho two\n")])
            .args(args().s("file", "@FILES@/script.mm")),
        case("shell", text("hi\n")).args(args().l("command", &["echo", "hi"])),
        case("background", Expect::Ok).args(args().l("command", &["true"])),
        case("check", Expect::Custom(check_or_fail_in_path)),
        case(
            "debug",
            Expect::Shape(strs(&["version", "threads", "rss", "fds"]), 1),
        ),
        case("clear_all", Expect::Ok)
            .setup(&["namespace foo vlans add a 10", "echo x"])
            .after(&[
                ("history", ""),
                ("namespace", ns_table),
                ("namespace foo vlans", ""),
            ]),
        case("quit", Expect::Ok).stops_server(),
        // Namespaces.
        case("namespace", Expect::Ok)
            .args(args().s("name", "foo").subcommand("vm config memory 1024"))
            .after(&[
                ("namespace foo vm config memory", "1024"),
                ("vm config memory", "2048"),
            ]),
        case("ns_hosts", text(TEST_HOST)),
        case("ns_add_hosts", Expect::Ok)
            .setup(&["ns del-hosts all"])
            .args(args().b("add-hosts").s("hosts", "localhost"))
            .after(&[("ns hosts", TEST_HOST)]),
        case("ns_del_hosts", Expect::Ok)
            .args(args().b("del-hosts").s("hosts", "all"))
            .after(&[("ns hosts", "")]),
        case("ns_load", Expect::Ok)
            .args(args().b("load").b("memcommit"))
            .after(&[("ns load", "memcommit")]),
        case(
            "ns_queue",
            contains("Queued launch 0: 1 VMs, type kvm\nNames: a\n"),
        )
        .setup(&["ns queueing true", "vm launch kvm a"]),
        case("ns_flush", Expect::Ok)
            .setup(&["ns queueing true", "vm launch kvm a"])
            .after(&[
                ("ns queue", ""),
                (
                    "vm launch",
                    "E: namespace must contain at least one queued VM to launch VMs",
                ),
            ]),
        case("ns_queueing", Expect::Ok)
            .args(args().b("queueing").b("true"))
            .after(&[("ns queueing", "true")]),
        case("ns_schedules", Expect::Custom(check_schedules)).setup(&["vm launch kvm a"]),
        case("ns_run", text("hi")).args(args().b("run").subcommand("echo hi")),
        case("clear_namespace", Expect::Ok)
            .setup(&["namespace foo vlans add a 10"])
            .args(args().s("name", "foo"))
            .after(&[("namespace", ns_table)]),
        // VMs.
        case("vm_info", Expect::Custom(check_vm_info)).setup(&["vm launch kvm foo"]),
        case("vm_launch", Expect::Ok)
            .args(args().b("kvm").s("name", "foo[1-2]"))
            .after(&[(".columns name,state,tags vm info", vm_info_columns())]),
        case("vm_start", err(404, "vm not found: nope")).args(args().s("vm", "nope")),
        case("vm_stop", err(409, "VM state error: foo"))
            .setup(&["vm launch kvm foo"])
            .args(args().s("vm", "foo")),
        case("vm_kill", err(409, "VM state error: foo"))
            .setup(&["vm launch kvm foo"])
            .args(args().s("vm", "foo")),
        case("vm_flush", Expect::Ok)
            .setup(&["vm launch kvm foo"])
            .after(&[("vm info", "")]),
        case("vm_tag", Expect::Ok)
            .setup(&["vm launch kvm foo"])
            .args(args().s("vm", "foo").s("key", "color").s("value", "red"))
            .after(&[("vm tag foo color", "name | value\nfoo  | red")]),
        case("clear_vm_tag", Expect::Ok)
            .setup(&["vm launch kvm foo", "vm tag foo color red"])
            .args(args().s("vm", "foo"))
            .after(&[("vm tag foo", "")]),
        // vm config.
        case(
            "vm_config",
            contains("VM configuration:\nMemory:           2048\nVCPUs:            1\n"),
        ),
        case("vm_config_save", Expect::Ok)
            .args(args().b("save").s("name", "base"))
            .after(&[("vm config restore", "base")]),
        case("vm_config_restore", Expect::Ok)
            .setup(&[
                "vm config memory 1024",
                "vm config save small",
                "clear vm config",
            ])
            .args(args().b("restore").s("name", "small"))
            .after(&[("vm config memory", "1024")]),
        case("vm_config_clone", Expect::Ok)
            .setup(&[
                "vm config memory 1024",
                "vm launch kvm foo",
                "clear vm config",
            ])
            .args(args().b("clone").s("vm", "foo"))
            .after(&[("vm config memory", "1024")]),
        case("clear_vm_config", Expect::Ok)
            .setup(&["vm config memory 1024", "vm config vcpus 4"])
            .args(args().b("memory"))
            .after(&[("vm config memory", "2048"), ("vm config vcpus", "4")]),
        case("clear_vm_config_tag", Expect::Ok)
            .setup(&["vm config tags a 1", "vm config tags b 2"])
            .args(args().s("key", "a"))
            .after(&[("vm config tags", "b -> 2")]),
        // VLANs.
        case("vlans", table(&["alias", "vlan"], &[&["a", "10"]])).setup(&["vlans add a 10"]),
        case("vlans_range", Expect::Ok)
            .args(args().b("range").s("min", "200").s("max", "300"))
            .after(&[("vlans range", "min  | max | next\n200  | 300 | 200")]),
        case("vlans_add", Expect::Ok)
            .ns("foo")
            .args(args().b("add").s("alias", "a").s("vlan", "10"))
            .after(&[("vlans", "alias | vlan\na     | 10")]),
        case("vlans_blacklist", Expect::Ok)
            .args(args().b("blacklist").s("vlan", "42"))
            .after(&[("vlans blacklist", "vlan\n42")]),
        case("clear_vlans", Expect::Ok)
            .setup(&["vlans add a 10", "vlans add b 11"])
            .after(&[("vlans", "")]),
        // Files.
        case(
            "file_list",
            table(&["dir", "name", "size"], &[&["", "x.txt", "3"]]),
        )
        .files(&[("dir/x.txt", "abc")])
        .args(args().b("list").s("path", "dir")),
        case("file_get", Expect::Ok)
            .files(&[("x.txt", "abc")])
            .args(args().b("get").s("file", "x.txt")),
        case("file_delete", Expect::Ok)
            .files(&[("x.txt", "abc"), ("y.txt", "def")])
            .args(args().b("delete").s("file", "x.txt"))
            .after(&[(".columns name file list", "name\ny.txt")]),
        case(
            "file_status",
            Expect::Shape(strs(&["filename", "tempdir", "completed", "queued"]), 0),
        ),
    ];
    v.extend(fields::field_cases());
    v.extend(kvm::kvm_cases());
    v.extend(vnc::vnc_cases());
    v.extend(net::net_cases());
    v.extend(cc::cc_cases());
    v
}

/// What is wrong with `got` for `expect`, if anything.
fn judge(app: &TestApp, expect: &Expect, got: &Outcome) -> Result<(), String> {
    let one = |got: &Outcome| -> Result<ferromega_api::Response, String> {
        match got {
            Ok(r) if r.len() == 1 => {
                let r = r[0].clone();
                if r.host != TEST_HOST {
                    return Err(format!("host {:?}, want {TEST_HOST:?}", r.host));
                }
                if !r.error.is_empty() {
                    return Err(format!("error field set: {:?}", r.error));
                }
                Ok(r)
            }
            other => Err(format!("want one response, got {other:?}")),
        }
    };
    match expect {
        Expect::Ok => {
            let r = one(got)?;
            if r.response.is_empty() && r.header.is_empty() && r.tabular.is_empty() {
                Ok(())
            } else {
                Err(format!("want an empty response, got {r:?}"))
            }
        }
        Expect::Text(t) => {
            let r = one(got)?;
            let t = app.expand(t);
            (r.response == t)
                .then_some(())
                .ok_or_else(|| format!("text {:?}, want {t:?}", r.response))
        }
        Expect::Contains(t) => {
            let r = one(got)?;
            r.response
                .contains(t.as_str())
                .then_some(())
                .ok_or_else(|| format!("text {:?} lacks {t:?}", r.response))
        }
        Expect::Texts(texts) => match got {
            Ok(r) => {
                if let Some(e) = r.iter().find(|r| !r.error.is_empty()) {
                    return Err(format!("error field set: {:?}", e.error));
                }
                let got: Vec<&str> = r.iter().map(|r| r.response.as_str()).collect();
                (got == texts.iter().map(String::as_str).collect::<Vec<_>>())
                    .then_some(())
                    .ok_or_else(|| format!("texts {got:?}, want {texts:?}"))
            }
            Err(e) => Err(format!("failed: {e:?}")),
        },
        Expect::Table(header, rows) => {
            let r = one(got)?;
            (&r.header == header && &r.tabular == rows)
                .then_some(())
                .ok_or_else(|| {
                    format!(
                        "table {:?} {:?}, want {header:?} {rows:?}",
                        r.header, r.tabular
                    )
                })
        }
        Expect::Shape(header, n) => {
            let r = one(got)?;
            (&r.header == header && r.tabular.len() == *n)
                .then_some(())
                .ok_or_else(|| {
                    format!(
                        "table {:?} with {} rows, want {header:?} with {n}",
                        r.header,
                        r.tabular.len()
                    )
                })
        }
        Expect::Error(status, text) => match got {
            Err((s, errors)) if s == status && errors == &vec![text.clone()] => Ok(()),
            other => Err(format!("want {status} {text:?}, got {other:?}")),
        },
        Expect::Custom(f) => f(got),
    }
}

/// Runs one row against a fresh app; returns what went wrong.
async fn run_case(c: &Case) -> Vec<String> {
    let app = TestApp::builder().plain().files_env().spawn().await;
    let mut problems = Vec::new();
    for (path, content) in &c.files {
        app.write_file(path, content);
    }
    let mut ns = c.ns.to_string();
    for line in &c.setup {
        let reply = app.run_in(&ns, line).await;
        for b in &reply.batches {
            for r in b.resp.iter().filter(|r| !r.error.is_empty()) {
                problems.push(format!("setup `{line}`: {}", r.error));
            }
        }
        ns = reply.namespace;
    }
    let mut body = c.args.clone();
    for v in body.strings.values_mut() {
        *v = app.expand(v);
    }
    for v in body.lists.values_mut().flatten() {
        *v = app.expand(v);
    }
    let got = outcome(c.op, app.client.invoke(c.op, c.ns, &body).await);
    if let Err(e) = judge(&app, &c.expect, &got) {
        problems.push(e);
    }
    if c.stops_server {
        let mut stopped = false;
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(app.addr).await.is_err() {
                stopped = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        if !stopped {
            problems.push("the server still accepts connections after quit".to_string());
        }
        return problems;
    }
    for (line, want) in &c.after {
        let out = app.script_in(c.ns, &[line]).await;
        let want = app.expand(want);
        if out.trim_end_matches('\n') != want {
            problems.push(format!("then `{line}` printed {out:?}, want {want:?}"));
        }
    }
    for (line, want) in &c.after_has {
        let out = app.script_in(c.ns, &[line]).await;
        if !out.contains(want) {
            problems.push(format!("then `{line}` printed {out:?}, lacking {want:?}"));
        }
    }
    problems
}

#[tokio::test]
async fn every_operation_behaves_as_its_contract_says() {
    let mut failures = Vec::new();
    for c in cases() {
        for p in run_case(&c).await {
            failures.push(format!("{}: {p}", c.op));
        }
    }
    assert!(
        failures.is_empty(),
        "{} contract failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn the_table_covers_every_operation_once() {
    let mut seen = BTreeSet::new();
    let mut twice = Vec::new();
    for c in cases() {
        if !seen.insert(c.op.to_string()) {
            twice.push(c.op);
        }
    }
    let all: BTreeSet<String> = operations().map(|(_, h)| h.name.clone()).collect();
    let untested: Vec<&String> = all.difference(&seen).collect();
    let unknown: Vec<&String> = seen.difference(&all).collect();
    assert!(
        untested.is_empty() && unknown.is_empty() && twice.is_empty(),
        "operations without a contract row: {untested:?}\n\
         rows naming no operation: {unknown:?}\nrows given twice: {twice:?}"
    );
}
