//! `ovs-vsctl` and `ovs-ofctl`: the argument vectors minimega 2.4 uses (pure functions,
//! unit-tested) and one runner that points them at a database and run directory.

use std::path::PathBuf;
use std::process::Stdio;

use ferromega_domain::network::TunnelKind;
use thiserror::Error;

/// An Open vSwitch command that failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OvsError {
    /// The program could not run.
    #[error("{tool}: {message}")]
    Spawn {
        /// `ovs-vsctl` or `ovs-ofctl`.
        tool: &'static str,
        /// Why.
        message: String,
    },
    /// It ran and failed; `message` is what it printed.
    #[error("{message}")]
    Failed {
        /// Its exit code.
        code: i32,
        /// Its standard error, trimmed.
        message: String,
    },
}

/// Where the Open vSwitch this server drives lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OvsTarget {
    /// ovsdb remote (`unix:PATH`); None: the system default.
    pub db: Option<String>,
    /// Datapath of bridges this server creates: `system` (kernel module) or `netdev`
    /// (userspace).
    pub datapath: String,
}

impl OvsTarget {
    /// The target for database `db`, with the kernel datapath when the openvswitch
    /// module is loaded and the userspace one otherwise.
    pub fn new(db: Option<String>) -> OvsTarget {
        let kernel = std::path::Path::new("/sys/module/openvswitch").exists();
        OvsTarget {
            db,
            datapath: if kernel { "system" } else { "netdev" }.to_string(),
        }
    }

    /// The run directory (where `<bridge>.mgmt` sockets are): the database socket's
    /// folder for `unix:PATH` databases.
    pub fn rundir(&self) -> Option<PathBuf> {
        let path = self.db.as_deref()?.strip_prefix("unix:")?;
        PathBuf::from(path).parent().map(PathBuf::from)
    }

    /// The full `ovs-vsctl` argument vector for `args`.
    pub fn vsctl_argv(&self, args: &[String]) -> Vec<String> {
        let mut a = vec!["--timeout=10".to_string()];
        if let Some(db) = &self.db {
            a.push(format!("--db={db}"));
        }
        a.extend_from_slice(args);
        a
    }

    async fn run(&self, tool: &'static str, argv: Vec<String>) -> Result<String, OvsError> {
        let mut cmd = tokio::process::Command::new(tool);
        cmd.args(&argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(dir) = self.rundir() {
            cmd.env("OVS_RUNDIR", dir);
        }
        let out = cmd.output().await.map_err(|e| OvsError::Spawn {
            tool,
            message: e.to_string(),
        })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).trim().to_string());
        }
        Err(OvsError::Failed {
            code: out.status.code().unwrap_or(-1),
            message: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        })
    }

    /// Runs `ovs-vsctl` with `args`; returns its standard output.
    pub async fn vsctl(&self, args: Vec<String>) -> Result<String, OvsError> {
        let argv = self.vsctl_argv(&args);
        tracing::debug!("ovs-vsctl {}", argv.join(" "));
        self.run("ovs-vsctl", argv).await
    }

    /// Runs `ovs-ofctl` with `args`.
    pub async fn ofctl(&self, args: Vec<String>) -> Result<String, OvsError> {
        self.run("ovs-ofctl", args).await
    }

    /// Whether an ovsdb answers (`ovs-vsctl show` within two seconds).
    pub fn answers(&self) -> bool {
        let mut argv = vec!["--timeout=2".to_string()];
        if let Some(db) = &self.db {
            argv.push(format!("--db={db}"));
        }
        argv.push("show".into());
        std::process::Command::new("ovs-vsctl")
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }
}

fn words(w: &[&str]) -> Vec<String> {
    w.iter().map(|s| s.to_string()).collect()
}

/// `tag=<vlan>` for an access port; nothing for VLAN 0 (untagged).
pub fn tag(vlan: u16) -> Option<String> {
    (vlan != 0).then(|| format!("tag={vlan}"))
}

/// Whether bridge `br` exists (exit 0 yes, 2 no).
pub fn br_exists(br: &str) -> Vec<String> {
    words(&["br-exists", br])
}

/// The `external_ids` key marking what this server made (so a restarted server finds
/// it again).
pub const MARK: &str = "ferromega";

/// Creates bridge `br` on `datapath`, marked as this server's.
pub fn add_br(br: &str, datapath: &str) -> Vec<String> {
    let dp = format!("datapath_type={datapath}");
    let mark = format!("external_ids:{MARK}=bridge");
    words(&["add-br", br, "--", "set", "bridge", br, &dp, &mark])
}

/// Marks port `port` as this server's, of `kind` (`trunk`, `tunnel`, `mirror` …).
pub fn mark_port(port: &str, kind: &str) -> Vec<String> {
    let mark = format!("external_ids:{MARK}={kind}");
    words(&["--", "set", "Port", port, &mark])
}

/// The bridges this server (or a previous one) made, as JSON.
pub fn find_marked_bridges() -> Vec<String> {
    let cond = format!("external_ids:{MARK}=bridge");
    words(&["--format=json", "--columns=name", "find", "Bridge", &cond])
}

/// Every port's name and `external_ids`, as JSON.
pub fn list_ports_json() -> Vec<String> {
    words(&[
        "--format=json",
        "--columns=name,external_ids",
        "list",
        "Port",
    ])
}

/// The names in the first column of `ovs-vsctl --format=json` output.
pub fn json_names(json: &str) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    v["data"]
        .as_array()
        .map(|rows| {
            rows.iter()
                .filter_map(|r| r[0].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Port name → this server's mark, from [`list_ports_json`] output (unmarked ports are
/// left out).
pub fn json_port_marks(json: &str) -> std::collections::HashMap<String, String> {
    let v: serde_json::Value = serde_json::from_str(json).unwrap_or_default();
    let mut out = std::collections::HashMap::new();
    for row in v["data"].as_array().into_iter().flatten() {
        let (Some(name), Some(pairs)) = (row[0].as_str(), row[1][1].as_array()) else {
            continue;
        };
        for pair in pairs {
            if pair[0].as_str() == Some(MARK) {
                if let Some(kind) = pair[1].as_str() {
                    out.insert(name.to_string(), kind.to_string());
                }
            }
        }
    }
    out
}

/// The ports of bridge `br`, one a line.
pub fn list_ports(br: &str) -> Vec<String> {
    words(&["list-ports", br])
}

/// Deletes bridge `br`.
pub fn del_br(br: &str) -> Vec<String> {
    words(&["--if-exists", "del-br", br])
}

/// The flows minimega adds so ARP and neighbour solicitations reach the bridge's own
/// port (where it snoops them) as well as being switched.
pub fn snoop_flows() -> [&'static str; 2] {
    [
        "dl_type=0x0806,actions=local,normal",
        "dl_type=0x86dd,nw_proto=58,icmp_type=135,actions=local,normal",
    ]
}

/// Plugs `port` (a tap or veth of this host) into `br` on `vlan`.
pub fn add_port(br: &str, port: &str, vlan: u16) -> Vec<String> {
    let mut a = words(&["add-port", br, port]);
    a.extend(tag(vlan));
    a
}

/// Creates the internal port `port` (a host tap) on `br`, `vlan`.
pub fn add_internal_port(br: &str, port: &str, vlan: u16) -> Vec<String> {
    let mut a = add_port(br, port, vlan);
    a.extend(words(&["--", "set", "Interface", port, "type=internal"]));
    a
}

/// Moves `port` to `br`, `vlan` in one transaction, wherever it was.
pub fn move_port(br: &str, port: &str, vlan: u16) -> Vec<String> {
    let mut a = words(&["--", "--if-exists", "del-port", port, "--"]);
    a.extend(add_port(br, port, vlan));
    a
}

/// Retags `port` on its bridge.
pub fn retag(port: &str, vlan: u16) -> Vec<String> {
    match tag(vlan) {
        Some(t) => words(&["set", "Port", port, &t]),
        None => words(&["clear", "Port", port, "tag"]),
    }
}

/// Unplugs `port` from its bridge (no error when it is on none).
pub fn del_port(port: &str) -> Vec<String> {
    words(&["--if-exists", "del-port", port])
}

/// Adds tunnel port `name` to `remote` on `br`.
pub fn add_tunnel(br: &str, name: &str, kind: TunnelKind, remote: &str) -> Vec<String> {
    let t = format!("type={}", kind.as_str());
    let r = format!("options:remote_ip={remote}");
    words(&["add-port", br, name, "--", "set", "interface", name, &t, &r])
}

/// Mirrors everything on `br` to its port `port` (a bridge capture).
pub fn mirror_add(br: &str, port: &str) -> Vec<String> {
    let name = format!("name=mirror-{port}");
    words(&[
        "--",
        "--id=@p",
        "get",
        "port",
        port,
        "--",
        "--id=@m",
        "create",
        "mirror",
        &name,
        "select-all=true",
        "output-port=@p",
        "--",
        "add",
        "bridge",
        br,
        "mirrors",
        "@m",
    ])
}

/// Removes the mirror to `port` from `br`.
pub fn mirror_remove(br: &str, port: &str) -> Vec<String> {
    let name = format!("mirror-{port}");
    words(&[
        "--", "--id=@m", "get", "mirror", &name, "--", "remove", "bridge", br, "mirrors", "@m",
    ])
}

/// Exports NetFlow v5 of `br` to `127.0.0.1:<port>` with an active timeout in seconds.
pub fn netflow_set(br: &str, port: u16, timeout: u32) -> Vec<String> {
    let targets = format!("targets=\"127.0.0.1:{port}\"");
    let t = format!("active-timeout={timeout}");
    words(&[
        "--",
        "set",
        "Bridge",
        br,
        "netflow=@nf",
        "--",
        "--id=@nf",
        "create",
        "NetFlow",
        &targets,
        &t,
    ])
}

/// Stops `br`'s NetFlow export.
pub fn netflow_clear(br: &str) -> Vec<String> {
    words(&["clear", "Bridge", br, "netflow"])
}

/// Changes the active timeout of `br`'s NetFlow export.
pub fn netflow_timeout(br: &str, timeout: u32) -> Vec<String> {
    let t = format!("active_timeout={timeout}");
    words(&["set", "NetFlow", br, &t])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(a: Vec<String>) -> String {
        a.join(" ")
    }

    #[test]
    fn access_ports_are_tagged_except_on_vlan_zero() {
        assert_eq!(
            line(add_port("mega_bridge", "mega_tap3", 101)),
            "add-port mega_bridge mega_tap3 tag=101"
        );
        assert_eq!(line(add_port("b", "t", 0)), "add-port b t");
        assert_eq!(
            line(add_internal_port("b", "h0", 5)),
            "add-port b h0 tag=5 -- set Interface h0 type=internal"
        );
        assert_eq!(line(retag("t", 7)), "set Port t tag=7");
        assert_eq!(line(retag("t", 0)), "clear Port t tag");
    }

    #[test]
    fn moving_a_port_is_one_transaction() {
        assert_eq!(
            line(move_port("b2", "mega_tap1", 9)),
            "-- --if-exists del-port mega_tap1 -- add-port b2 mega_tap1 tag=9"
        );
        assert_eq!(line(del_port("x")), "--if-exists del-port x");
    }

    #[test]
    fn bridges_tunnels_and_mirrors_read_as_minimega_writes_them() {
        assert_eq!(
            line(add_br("mega_bridge", "netdev")),
            "add-br mega_bridge -- set bridge mega_bridge datapath_type=netdev \
             external_ids:ferromega=bridge"
        );
        assert_eq!(
            line(add_tunnel("b", "mega_tap9", TunnelKind::Gre, "10.0.0.2")),
            "add-port b mega_tap9 -- set interface mega_tap9 type=gre options:remote_ip=10.0.0.2"
        );
        assert_eq!(
            line(mirror_add("b", "mega_tap2")),
            "-- --id=@p get port mega_tap2 -- --id=@m create mirror name=mirror-mega_tap2 \
             select-all=true output-port=@p -- add bridge b mirrors @m"
        );
        assert_eq!(
            line(mirror_remove("b", "mega_tap2")),
            "-- --id=@m get mirror mirror-mega_tap2 -- remove bridge b mirrors @m"
        );
    }

    #[test]
    fn what_this_server_made_is_marked_and_found_again() {
        assert_eq!(
            line(mark_port("mega_tap4", "trunk")),
            "-- set Port mega_tap4 external_ids:ferromega=trunk"
        );
        let bridges = r#"{"data":[["mega_bridge"],["b2"]],"headings":["name"]}"#;
        assert_eq!(json_names(bridges), ["mega_bridge", "b2"]);
        let ports = r#"{"data":[["mega_tap0",["map",[["ferromega","tap"]]]],
            ["eth9",["map",[]]],["mega_tap3",["map",[["x","y"],["ferromega","tunnel"]]]]],
            "headings":["name","external_ids"]}"#;
        let marks = json_port_marks(ports);
        assert_eq!(marks.len(), 2);
        assert_eq!(marks["mega_tap3"], "tunnel");
        assert!(json_names("not json").is_empty());
    }

    #[test]
    fn netflow_points_at_the_local_collector() {
        assert_eq!(
            line(netflow_set("b", 40000, 10)),
            "-- set Bridge b netflow=@nf -- --id=@nf create NetFlow \
             targets=\"127.0.0.1:40000\" active-timeout=10"
        );
        assert_eq!(line(netflow_clear("b")), "clear Bridge b netflow");
        assert_eq!(
            line(netflow_timeout("b", 3)),
            "set NetFlow b active_timeout=3"
        );
    }

    #[test]
    fn the_database_and_run_directory_come_from_the_target() {
        let t = OvsTarget {
            db: Some("unix:/tmp/o/db.sock".into()),
            datapath: "netdev".into(),
        };
        assert_eq!(t.rundir(), Some(PathBuf::from("/tmp/o")));
        assert_eq!(
            line(t.vsctl_argv(&del_br("b"))),
            "--timeout=10 --db=unix:/tmp/o/db.sock --if-exists del-br b"
        );
        let sys = OvsTarget {
            db: None,
            datapath: "system".into(),
        };
        assert_eq!(sys.rundir(), None);
        assert_eq!(
            line(sys.vsctl_argv(&br_exists("b"))),
            "--timeout=10 br-exists b"
        );
    }
}
