//! The handler table: every operation of the command language, its patterns and help.
//!
//! A handler's `name` is the operation's name in every layer: the HTTP
//! `operationId`, the `ControlPlane` method, the client method. `vm config <field>`
//! handlers are generated from the field table in `fields.rs`.

use std::sync::LazyLock;

use crate::fields::{FieldKind, FIELDS};
use crate::{HandlerSpec, Scope};

fn h(name: &str, scope: Scope, patterns: &[&str], short: &str, long: &str) -> HandlerSpec {
    HandlerSpec {
        name: name.to_string(),
        patterns: patterns.iter().map(|p| p.to_string()).collect(),
        help_short: short.to_string(),
        help_long: long.to_string(),
        scope,
    }
}

fn flag_builtin(flag: &str, what: &str) -> HandlerSpec {
    h(
        flag,
        Scope::Builtin,
        &[
            &format!(".{flag} [true,false]"),
            &format!(".{flag} <true,false> (command)"),
        ],
        &format!("enable or disable {what}"),
        &format!(
            "Enable or disable {what}. Without a value, print the current setting. With a \
             command, apply the setting to that command only."
        ),
    )
}

fn builtins() -> Vec<HandlerSpec> {
    use Scope::Builtin;
    vec![
        flag_builtin("csv", "CSV output of tables"),
        flag_builtin("json", "JSON output"),
        flag_builtin("headers", "headers on tables"),
        flag_builtin("annotate", "the host column and host prefixes"),
        flag_builtin("sort", "sorting of table rows"),
        flag_builtin("compress", "compression of identical responses"),
        flag_builtin("record", "recording of commands in history"),
        flag_builtin("preprocess", "the preprocessor ($VAR, file:)"),
        h(
            "filter",
            Builtin,
            &[".filter <filter> (command)"],
            "filter table rows",
            "Keep the rows of a table where a column matches: col=val, col!=val, col~val \
             (contains) or col!~val. Column names may be unique prefixes; matching is \
             case-insensitive; the column host filters whole responses.",
        ),
        h(
            "columns",
            Builtin,
            &[".columns <columns as csv> (command)"],
            "choose the columns of a table",
            "Show only the named columns, in the given order. Column names may be unique \
             prefixes.",
        ),
        h(
            "alias",
            Builtin,
            &[".alias", ".alias <alias>..."],
            "create or list aliases",
            "Without arguments, list aliases. Otherwise create one: .alias name=expansion. \
             An input starting with an alias has it replaced by the expansion.",
        ),
        h(
            "unalias",
            Builtin,
            &[".unalias <alias>"],
            "remove an alias",
            "Remove an alias.",
        ),
        h(
            "env",
            Builtin,
            &[".env [name]", ".env <name> <value>"],
            "show or set environment variables",
            "Without arguments, list the environment used by the preprocessor. With a name, \
             print its value; with a value, set it (an empty value unsets it).",
        ),
    ]
}

fn misc() -> Vec<HandlerSpec> {
    use Scope::*;
    vec![
        h(
            "help",
            Local,
            &["help [command]..."],
            "show command help",
            "Without arguments, list every command. With a command (or its first words), \
             show its usage and long help.",
        ),
        h(
            "history",
            Local,
            &["history"],
            "show command history",
            "Show the recorded commands.",
        ),
        h(
            "clear_history",
            Local,
            &["clear history"],
            "clear command history",
            "Forget history.",
        ),
        h(
            "write",
            Local,
            &["write <file>"],
            "write history to a file",
            "Write history to file.",
        ),
        h(
            "echo",
            Local,
            &["echo [args]..."],
            "print text",
            "Print the arguments joined by spaces.",
        ),
        h(
            "version",
            Broadcast,
            &["version"],
            "show the version",
            "Print the ferromega version.",
        ),
        h(
            "read",
            Special,
            &["read <file> [check,]"],
            "run commands from a file",
            "Run the commands of a file line by line, streaming their output. Stops at the \
             first line that does not compile. With check, only compile every line.",
        ),
        h(
            "shell",
            Local,
            &["shell <command>..."],
            "run a program and wait",
            "Run a program (looked up in PATH, no shell) and wait for it. Its standard output \
             is the response; anything on standard error is reported as an error.",
        ),
        h(
            "background",
            Local,
            &["background <command>..."],
            "run a program in the background",
            "Start a program and return at once; its output goes to the log.",
        ),
        h(
            "check",
            Local,
            &["check"],
            "check external dependencies",
            "Check that the programs ferromega uses are installed. Prints nothing on success.",
        ),
        h(
            "debug",
            Local,
            &[
                "debug",
                "debug <memory,> <file>",
                "debug <goroutine,> <file>",
                "debug <cpu,> <start,> <file>",
                "debug <cpu,> <stop,>",
            ],
            "show debugging information",
            "Show runtime figures of the server (threads, memory). memory and goroutine write \
             snapshots of the process (/proc status and task list) to a file; cpu start/stop \
             records CPU time figures between the two commands.",
        ),
        h(
            "clear_all",
            Special,
            &["clear all"],
            "reset state",
            "Destroy all namespaces (killing their VMs), clear VLAN aliases and history.",
        ),
        h(
            "quit",
            Local,
            &["quit [delay]"],
            "stop the server",
            "Stop the server, after delay seconds if given.",
        ),
    ]
}

fn namespaces() -> Vec<HandlerSpec> {
    use Scope::*;
    vec![
        h(
            "namespace",
            Special,
            &[
                "namespace",
                "namespace <name>",
                "namespace <name> (command)",
            ],
            "list, switch or run in namespaces",
            "Without arguments, list namespaces. With a name, make it the active namespace \
             (creating it). With a command, run the command in that namespace only.",
        ),
        h(
            "ns_hosts",
            Local,
            &["ns <hosts,>"],
            "list namespace hosts",
            "Hosts of the namespace.",
        ),
        h(
            "ns_add_hosts",
            Local,
            &["ns <add-hosts,> <hosts>"],
            "add hosts to the namespace",
            "Add hosts (range syntax) to the namespace; localhost is this host.",
        ),
        h(
            "ns_del_hosts",
            Local,
            &["ns <del-hosts,> <hosts>"],
            "remove hosts from the namespace",
            "Remove hosts (range syntax, or all) from the namespace.",
        ),
        h(
            "ns_load",
            Local,
            &["ns <load,>", "ns <load,> <cpucommit,netcommit,memcommit>"],
            "show or set the scheduler's load metric",
            "Show or set how the scheduler measures host load (default cpucommit).",
        ),
        h(
            "ns_queue",
            Local,
            &["ns <queue,>"],
            "show queued launches",
            "Dump the launch queue.",
        ),
        h(
            "ns_flush",
            Local,
            &["ns <flush,>"],
            "empty the launch queue",
            "Empty the launch queue.",
        ),
        h(
            "ns_queueing",
            Local,
            &["ns <queueing,> [true,false]"],
            "show or set queueing of launches",
            "When queueing is on, vm launch only queues VMs; vm launch with no arguments \
             launches the queue.",
        ),
        h(
            "ns_schedules",
            Local,
            &["ns <schedules,>"],
            "show scheduler statistics",
            "Table of launches: start, end, state, launched, failures, total, hosts.",
        ),
        h(
            "ns_run",
            Special,
            &["ns <run,> (command)"],
            "run a command on every namespace host",
            "Run the command on every host of the namespace and merge the responses.",
        ),
        h(
            "clear_namespace",
            Special,
            &["clear namespace [name]"],
            "leave or destroy namespaces",
            "Without a name, return to the minimega namespace. With a name (or all), destroy \
             the namespace: kill and flush its VMs, free its VLAN aliases.",
        ),
    ]
}

fn mesh() -> Vec<HandlerSpec> {
    use Scope::*;
    vec![
        h(
            "mesh_degree",
            Local,
            &["mesh degree [degree]"],
            "show or set the mesh degree",
            "Show or set how many peers UDP discovery looks for (it runs when the server \
             was started with --degree; peers also come from mesh dial and serve --peers).",
        ),
        h(
            "mesh_dial",
            Local,
            &["mesh dial <hostname>"],
            "connect to a peer",
            "Connect to the ferromega at hostname[:port] (default port 9001) with the \
             cluster secret; both hosts become peers.",
        ),
        h(
            "mesh_hangup",
            Local,
            &["mesh hangup <hostname>"],
            "disconnect a peer",
            "Disconnect the peer called hostname; it forgets this host too.",
        ),
        h(
            "mesh_list",
            Local,
            &["mesh list"],
            "show the mesh",
            "Each known host, then a |--peer line for each of its peers.",
        ),
        h(
            "mesh_dot",
            Local,
            &["mesh dot <filename>"],
            "write the mesh as graphviz",
            "Write the mesh as this host knows it (its peers and theirs) to filename as a \
             graphviz graph: this host red, peers that answer green, others grey, each link \
             once. The path is used as given (relative to the server's working directory).",
        ),
        h(
            "mesh_status",
            Local,
            &["mesh status"],
            "show mesh figures",
            "Table size | degree | peers | context | port (size counts this host and the \
             peers that answer).",
        ),
        h(
            "mesh_timeout",
            Local,
            &["mesh timeout [timeout]"],
            "show or set the mesh timeout",
            "Show or set the seconds to wait for a peer's answer (0 = unlimited).",
        ),
        h(
            "mesh_send",
            Special,
            &["mesh send <clients or all> (command)"],
            "run a command on peers",
            "Run the command on the listed peers (range syntax, or all), in their minimega \
             namespace; one response per peer, `timed out` for peers that do not answer in \
             time.",
        ),
    ]
}

fn vms() -> Vec<HandlerSpec> {
    use Scope::*;
    vec![
        h(
            "vm_info",
            Broadcast,
            &["vm info [summary,]"],
            "list VMs",
            "Table of the namespace's VMs: id name state uptime type uuid cc_active vlan \
             bridge tap mac ip ip6 qos memory vcpus disk snapshot initrd kernel cdrom migrate \
             append serial-ports virtio-ports vnc_port pid filesystem hostname init preinit \
             fifo volume console_port tags. summary shows id name state type uuid cc_active \
             vlan.",
        ),
        h(
            "vm_launch",
            Local,
            &["vm launch", "vm launch <kvm,container> <name or count>"],
            "launch VMs",
            "Launch VMs from the current vm config: a count, or names in range syntax \
             (foo[1-5],bar). With queueing on, VMs are queued; vm launch alone launches the \
             queue.",
        ),
        h(
            "vm_start",
            VmTarget,
            &["vm start <vm target>"],
            "start VMs",
            "Start (unpause) VMs. Named QUIT or ERROR VMs are relaunched; all only starts \
             BUILDING and PAUSED VMs.",
        ),
        h(
            "vm_stop",
            VmTarget,
            &["vm stop <vm target>"],
            "pause VMs",
            "Pause RUNNING VMs.",
        ),
        h(
            "vm_kill",
            VmTarget,
            &["vm kill <vm target>"],
            "kill VMs",
            "Kill running VMs.",
        ),
        h(
            "vm_qmp",
            VmTarget,
            &["vm qmp <vm name> <qmp command>"],
            "send a raw QMP command",
            "Send a raw JSON QMP command to a KVM VM and print QEMU's reply.",
        ),
        h(
            "vm_screenshot",
            VmTarget,
            &[
                "vm screenshot <vm name> [maximum dimension]",
                "vm screenshot <vm name> file <filename> [maximum dimension]",
            ],
            "take a screenshot",
            "Take a PNG screenshot of a running KVM VM, scaled to fit the maximum dimension \
             when given, written to the instance directory or the given file.",
        ),
        h(
            "vm_cdrom_eject",
            VmTarget,
            &["vm cdrom <eject,> <vm target>"],
            "eject the CD",
            "Eject the CD-ROM of KVM VMs.",
        ),
        h(
            "vm_cdrom_change",
            VmTarget,
            &["vm cdrom <change,> <vm target> <path>"],
            "change the CD",
            "Insert the ISO at path into the CD-ROM drive of KVM VMs.",
        ),
        h(
            "vm_top",
            Broadcast,
            &["vm top [duration]"],
            "show VM resource use",
            "Sample the VMs' processes over duration seconds (default 1): name virt res shr \
             (MiB) cpu vcpu (percent) time procs rx tx (MB/s).",
        ),
        h(
            "host",
            Broadcast,
            &[
                "host",
                "host <cpucommit,cpus,load,memcommit,memtotal,memused,name,netcommit,rx,tx,uptime,vms,vmlimit>",
            ],
            "show host figures",
            "Table cpus load memused memtotal rx tx vms vmlimit cpucommit memcommit netcommit \
             uptime of the namespace's hosts, or one value.",
        ),
        h(
            "vm_hotplug",
            VmTarget,
            &["vm hotplug"],
            "list hotplugged drives",
            "Table name | id | file | version of USB drives hotplugged into KVM VMs.",
        ),
        h(
            "vm_hotplug_add",
            VmTarget,
            &[
                "vm hotplug <add,> <vm target> <filename> [version]",
                "vm hotplug <add,> <vm target> <filename> serial <serial> [version]",
            ],
            "hotplug a USB drive",
            "Attach a file as a USB mass-storage drive, USB 1.1 (default) or 2.0.",
        ),
        h(
            "vm_hotplug_remove",
            VmTarget,
            &["vm hotplug <remove,> <vm target> <disk id or all>"],
            "remove hotplugged drives",
            "Remove a hotplugged USB drive by id, or all of them.",
        ),
        h(
            "vm_migrate",
            VmTarget,
            &["vm migrate", "vm migrate <vm name> <filename>"],
            "save VM state to a file",
            "Save a KVM VM's state to a file (relative to the files directory); the VM \
             pauses. Without arguments, list migrations and their progress.",
        ),
        h(
            "vm_flush",
            Broadcast,
            &["vm flush"],
            "remove dead VMs",
            "Remove QUIT and ERROR VMs.",
        ),
        h(
            "vm_tag",
            VmTarget,
            &[
                "vm tag <vm target> [key or all]",
                "vm tag <vm target> <key> <value>",
            ],
            "show or set VM tags",
            "Show the tags of the target VMs (one key or all), or set a tag.",
        ),
        h(
            "clear_vm_tag",
            VmTarget,
            &["clear vm tag", "clear vm tag <vm target> [tag]"],
            "remove VM tags",
            "Remove one tag, or all tags, of the target VMs (all VMs when no target).",
        ),
    ]
}

fn field_patterns(name: &str, kind: FieldKind) -> Vec<String> {
    match kind {
        FieldKind::Str | FieldKind::Path | FieldKind::Uint | FieldKind::Int => {
            vec![format!("vm config {name} [value]")]
        }
        FieldKind::Bool => vec![format!("vm config {name} [true,false]")],
        FieldKind::List | FieldKind::PathList => vec![format!("vm config {name} [value]...")],
        FieldKind::Net => vec![format!("vm config {name} [netspec]...")],
        FieldKind::Map => {
            vec![
                format!("vm config {name}"),
                format!("vm config {name} <key> [value]"),
            ]
        }
        FieldKind::Override => vec![
            format!("vm config {name}"),
            format!("vm config {name} <match> <replacement>"),
        ],
    }
}

fn vm_config() -> Vec<HandlerSpec> {
    use Scope::*;
    let mut v = vec![
        h(
            "vm_config",
            Local,
            &["vm config"],
            "show the vm config",
            "Print the namespace's current VM configuration.",
        ),
        h(
            "vm_config_save",
            Local,
            &["vm config <save,> <name>"],
            "save the vm config",
            "Save a copy of the current configuration under a name.",
        ),
        h(
            "vm_config_restore",
            Local,
            &["vm config <restore,> [name]"],
            "restore a saved vm config",
            "Restore a saved configuration; without a name, list saved names.",
        ),
        h(
            "vm_config_clone",
            Local,
            &["vm config <clone,> <vm name>"],
            "copy the config of a VM",
            "Make the current configuration a copy of an existing VM's (UUID cleared).",
        ),
    ];
    for f in FIELDS {
        let pats = field_patterns(f.name, f.kind);
        let pats: Vec<&str> = pats.iter().map(String::as_str).collect();
        let long = format!(
            "{}. Default: {}",
            f.help,
            if f.default.is_empty() {
                "empty"
            } else {
                f.default
            }
        );
        v.push(h(
            &format!("vm_config_{}", f.name.replace('-', "_")),
            Local,
            &pats,
            f.help,
            &long,
        ));
    }
    let keys: Vec<&str> = FIELDS.iter().map(|f| f.clear_key).collect();
    v.push(h(
        "clear_vm_config",
        Local,
        &[
            "clear vm config",
            &format!("clear vm config <{},>", keys.join(",")),
        ],
        "reset the vm config",
        "Reset the whole configuration, or one field, to its default.",
    ));
    v.push(h(
        "clear_vm_config_tag",
        Local,
        &["clear vm config tag <key>"],
        "remove a config tag",
        "Remove one tag from the configuration, or all of them with all.",
    ));
    v
}

fn vlans() -> Vec<HandlerSpec> {
    use Scope::*;
    vec![
        h(
            "vlans",
            Local,
            &["vlans"],
            "list VLAN aliases",
            "Table of the namespace's aliases.",
        ),
        h(
            "vlans_range",
            Local,
            &["vlans <range,>", "vlans <range,> <min> <max>"],
            "show or set the alias range",
            "Show or set the range [min, max) from which aliases of this namespace are \
             allocated.",
        ),
        h(
            "vlans_add",
            Local,
            &["vlans <add,> <alias> <vlan>"],
            "pin an alias to a VLAN",
            "Create an alias for a given VLAN.",
        ),
        h(
            "vlans_blacklist",
            Local,
            &["vlans <blacklist,> [vlan]"],
            "show or add blacklisted VLANs",
            "VLANs on the blacklist are never allocated to aliases.",
        ),
        h(
            "clear_vlans",
            Local,
            &["clear vlans [prefix]"],
            "remove VLAN aliases",
            "Remove the namespace's aliases starting with prefix (all of them without one; \
             all resets the allocator).",
        ),
    ]
}

fn files() -> Vec<HandlerSpec> {
    use Scope::*;
    vec![
        h(
            "file_list",
            Local,
            &["file <list,> [path]"],
            "list files",
            "Table dir | name | size of a folder of the files directory.",
        ),
        h(
            "file_get",
            Local,
            &["file <get,> <file>"],
            "fetch a file",
            "Fetch a file (glob) into the files directory from any host that has it.",
        ),
        h(
            "file_delete",
            Local,
            &["file <delete,> <file>"],
            "delete files",
            "Delete files or folders (glob) of the files directory.",
        ),
        h(
            "file_status",
            Local,
            &["file <status,>"],
            "show transfers",
            "Table of file transfers in progress.",
        ),
    ]
}

fn disks() -> Vec<HandlerSpec> {
    use Scope::*;
    vec![
        h(
            "disk_create",
            Local,
            &["disk <create,> <qcow2,raw> <image name> <size>"],
            "create a disk image",
            "Create a qcow2 or raw image in the files directory with qemu-img.",
        ),
        h(
            "disk_snapshot",
            Local,
            &["disk <snapshot,> <image> [dst image]"],
            "create a backed snapshot image",
            "Create a qcow2 image backed by image; without a destination a new file name is \
             chosen and printed.",
        ),
        h(
            "disk_info",
            Local,
            &["disk <info,> <image>"],
            "show image information",
            "Table image | format | virtualsize | disksize | backingfile.",
        ),
    ]
}

fn networking() -> Vec<HandlerSpec> {
    use Scope::*;
    vec![
        h(
            "vm_net_connect",
            VmTarget,
            &["vm net <connect,> <vm target> <tap position> <vlan> [bridge]"],
            "move a VM NIC to a VLAN",
            "Connect NIC number tap position of the target VMs to a VLAN (number or alias) on \
             a bridge (default: the NIC's current bridge, else mega_bridge). Works on running \
             and stopped VMs.",
        ),
        h(
            "vm_net_disconnect",
            VmTarget,
            &["vm net <disconnect,> <vm target> <tap position>"],
            "disconnect a VM NIC",
            "Unplug NIC number tap position of the target VMs from its bridge; it shows as \
             disconnected.",
        ),
        h(
            "tap",
            Local,
            &["tap"],
            "list host taps",
            "Table bridge | tap | vlan of the host taps of the namespace.",
        ),
        h(
            "tap_create",
            Local,
            &[
                "tap <create,> <vlan>",
                "tap <create,> <vlan> name <tap name>",
                "tap <create,> <vlan> <dhcp,> [tap name]",
                "tap <create,> <vlan> ip <ip> [tap name]",
                "tap <create,> <vlan> bridge <bridge>",
                "tap <create,> <vlan> bridge <bridge> name [tap name]",
                "tap <create,> <vlan> bridge <bridge> <dhcp,> [tap name]",
                "tap <create,> <vlan> bridge <bridge> ip <ip> [tap name]",
            ],
            "create a host tap",
            "Create an interface of this host on a VLAN (alias allowed) of a bridge (default \
             mega_bridge), optionally with a static IP (CIDR) or an address from DHCP. Prints \
             its name (default mega_tapN). The tap belongs to the namespace.",
        ),
        h(
            "tap_delete",
            Local,
            &["tap <delete,> <tap name or all>"],
            "delete host taps",
            "Delete a host tap of the namespace, or all of them.",
        ),
        h(
            "clear_tap",
            Local,
            &["clear tap"],
            "delete all host taps",
            "Delete every host tap of the namespace.",
        ),
        h(
            "bridge",
            Local,
            &["bridge"],
            "list bridges",
            "Table bridge | preexisting | vlans | trunks | tunnels of the bridges this server \
             uses.",
        ),
        h(
            "bridge_trunk",
            Local,
            &["bridge <trunk,> <bridge> <interface>"],
            "add a trunk port",
            "Add a host interface to a bridge as a trunk (untagged traffic; this kernel has no \
             802.1q).",
        ),
        h(
            "bridge_notrunk",
            Local,
            &["bridge <notrunk,> <bridge> <interface>"],
            "remove a trunk port",
            "Remove a trunk interface from a bridge (the interface stays).",
        ),
        h(
            "bridge_tunnel",
            Local,
            &["bridge <tunnel,> <vxlan,gre> <bridge> <remote ip>"],
            "tunnel a bridge to another host",
            "Connect the bridge to the same bridge on another host: every VLAN travels in its \
             own VXLAN VNI (or GRE key) equal to the VLAN. Prints the tunnel's name.",
        ),
        h(
            "bridge_notunnel",
            Local,
            &["bridge <notunnel,> <bridge> <interface>"],
            "remove a tunnel",
            "Remove a tunnel (by the name bridge tunnel printed) from a bridge.",
        ),
        h(
            "qos_add",
            VmTarget,
            &[
                "qos <add,> <vm target> <interface> <loss,> <percent>",
                "qos <add,> <vm target> <interface> <delay,> <duration>",
                "qos <add,> <vm target> <interface> <rate,> <bw> <kbit,mbit,gbit>",
                "qos <add,> <vm target> <interface> <shape,> <setting>...",
            ],
            "shape traffic to a VM NIC",
            "Add packet loss (percent), delay (Go duration, bare number = ms) or a rate limit \
             to traffic towards a NIC of the target VMs. Rate replaces loss and delay and vice \
             versa, as in minimega; beyond it, shape sets them together (settings \
             rate=<n><kbit|mbit|gbit>, loss=<percent>, delay=<duration>). Delay needs the \
             kernel's netem qdisc.",
        ),
        h(
            "clear_qos",
            VmTarget,
            &["clear qos <vm target> [tap index]"],
            "remove qos",
            "Remove the qos of one NIC (or all) of the target VMs.",
        ),
        h(
            "capture",
            Broadcast,
            &["capture"],
            "list captures",
            "Table bridge | type | interface | mode | compress | path of the namespace's \
             captures.",
        ),
        h(
            "capture_pcap_snaplen",
            Broadcast,
            &["capture <pcap,> <snaplen,> [size]"],
            "show or set the pcap snaplen",
            "Bytes kept of each frame by new pcap captures (default 1600; 0 = default).",
        ),
        h(
            "capture_pcap_filter",
            Broadcast,
            &["capture <pcap,> <filter,> [bpf]"],
            "show or set the pcap filter",
            "BPF expression (tcpdump syntax) for new pcap captures; checked when a capture \
             starts.",
        ),
        h(
            "capture_netflow_mode",
            Broadcast,
            &["capture <netflow,> <mode,> [raw,ascii]"],
            "show or set the netflow mode",
            "Output format of new netflow captures.",
        ),
        h(
            "capture_netflow_gzip",
            Broadcast,
            &["capture <netflow,> <gzip,> [true,false]"],
            "show or set netflow compression",
            "Whether new netflow capture files are gzipped.",
        ),
        h(
            "capture_pcap_vm",
            VmTarget,
            &["capture <pcap,> vm <vm name> <interface index> <filename>"],
            "capture a VM NIC",
            "Write the traffic of a VM's NIC to a pcap file (relative paths are in the files \
             directory), with the namespace's snaplen and filter.",
        ),
        h(
            "capture_pcap_delete_vm",
            VmTarget,
            &["capture <pcap,> <delete,> vm <vm name>"],
            "stop VM captures",
            "Stop the pcap captures of a VM, or of all VMs.",
        ),
        h(
            "capture_pcap_bridge",
            Local,
            &["capture <pcap,> bridge <bridge> <filename>"],
            "capture a bridge",
            "Write every frame entering a bridge (all its VLANs) to a pcap file.",
        ),
        h(
            "capture_pcap_delete_bridge",
            Local,
            &["capture <pcap,> <delete,> bridge <bridge>"],
            "stop bridge captures",
            "Stop the pcap captures of a bridge, or of all bridges.",
        ),
        h(
            "capture_netflow_bridge",
            Local,
            &[
                "capture <netflow,> <bridge,> <bridge> <filename>",
                "capture <netflow,> <bridge,> <bridge> <tcp,udp> <hostname:port>",
            ],
            "capture netflow of a bridge",
            "Collect NetFlow v5 records of a bridge (exported by Open vSwitch, or by softflowd \
             on Linux bridges) into a file (relative paths are in the files directory) or a \
             socket, raw or ascii as `capture netflow mode` says.",
        ),
        h(
            "capture_netflow_delete_bridge",
            Local,
            &["capture <netflow,> <delete,> bridge <name>"],
            "stop netflow captures",
            "Stop the netflow captures of a bridge.",
        ),
        h(
            "capture_netflow_timeout",
            Local,
            &["capture <netflow,> <timeout,> [timeout in seconds]"],
            "show or set the netflow timeout",
            "Active flow timeout of netflow exporters, in seconds.",
        ),
        h(
            "clear_capture",
            Broadcast,
            &["clear capture [netflow,pcap]"],
            "stop captures",
            "Stop the namespace's captures.",
        ),
        h(
            "vnc",
            Broadcast,
            &["vnc"],
            "list vnc recordings and playbacks",
            "Table name | type | time | filename of the namespace's kb and fb recordings \
             (time since they started) and kb playbacks (time remaining, or PAUSED).",
        ),
        h(
            "vnc_record",
            Local,
            &["vnc <record,> <kb,fb> <vm name> <filename>"],
            "record a KVM VM's keyboard/mouse or framebuffer",
            "kb: write every key and pointer event sent to the VM over VNC (dashboard \
             consoles, playback, injection) as text, one <delta ns>:<event> a line. fb: \
             record the VM's screen (raw RFB updates, about 10 a second) as gzipped chunks. \
             Relative file names are in the files directory.",
        ),
        h(
            "vnc_stop",
            Broadcast,
            &["vnc <stop,> <kb,fb> <vm name>", "vnc <stop,> <vm name>"],
            "stop a recording or playback",
            "With kb or fb, stop that recording of the VM; otherwise stop its kb playback.",
        ),
        h(
            "vnc_play",
            Broadcast,
            &["vnc <play,> <vm name> <filename>"],
            "play a kb recording into a VM",
            "Send the events of a kb file to the VM with the recorded delays. Lines starting \
             with # are comments; LoadFile,<file> plays another file (relative to this \
             one's folder) in place.",
        ),
        h(
            "vnc_pause",
            Broadcast,
            &["vnc <pause,> <vm name>"],
            "pause a playback",
            "Pause the VM's kb playback.",
        ),
        h(
            "vnc_continue",
            Broadcast,
            &["vnc <continue,> <vm name>"],
            "resume a playback",
            "Resume the VM's paused kb playback.",
        ),
        h(
            "vnc_step",
            Broadcast,
            &["vnc <step,> <vm name>"],
            "send a playback's next event now",
            "Skip the wait before the next event of the VM's kb playback.",
        ),
        h(
            "vnc_getstep",
            Broadcast,
            &["vnc <getstep,> <vm name>"],
            "show a playback's next event",
            "Print the line of the kb playback the VM is waiting on.",
        ),
        h(
            "vnc_inject",
            Broadcast,
            &["vnc <inject,> <vm name> <cmd>"],
            "send one event to a VM",
            "Send one event in the kb file syntax without the delay (KeyEvent,true,a; \
             PointerEvent,1,10,20; LoadFile,<file>). During a playback it goes through it \
             (a LoadFile plays before the rest); otherwise a key or pointer event is sent at \
             once and a LoadFile starts a playback.",
        ),
        h(
            "clear_vnc",
            Broadcast,
            &["clear vnc"],
            "stop every recording and playback",
            "Stop the namespace's kb and fb recordings and kb playbacks.",
        ),
        h(
            "dnsmasq",
            Local,
            &["dnsmasq"],
            "list dnsmasq servers",
            "Table id | address | min | max | path | pid of running dnsmasq servers.",
        ),
        h(
            "dnsmasq_start",
            Local,
            &[
                "dnsmasq start <listen address> <low dhcp range> <high dhcp range> [config]",
                "dnsmasq start <config>",
            ],
            "start a dnsmasq server",
            "Start dnsmasq listening on an address of this host (a host tap's), handing out \
             leases between low and high, optionally with a configuration file.",
        ),
        h(
            "dnsmasq_kill",
            Local,
            &["dnsmasq kill <id or all>"],
            "stop dnsmasq servers",
            "Stop a dnsmasq server, or all of them.",
        ),
        h(
            "dnsmasq_configure",
            Local,
            &[
                "dnsmasq configure <ID> <ip,>",
                "dnsmasq configure <ID> <ip,> <mac address> <ip>",
                "dnsmasq configure <ID> <dns,>",
                "dnsmasq configure <ID> <dns,> <ip> <hostname>",
                "dnsmasq configure <ID> <options,>",
                "dnsmasq configure <ID> <options,> <optionstring>",
            ],
            "configure dnsmasq servers",
            "List or add static leases (mac ip), DNS entries (ip hostname) and DHCP options of \
             a dnsmasq server (or all).",
        ),
    ]
}

fn cc() -> Vec<HandlerSpec> {
    use Scope::*;
    vec![
        h(
            "cc",
            Broadcast,
            &["cc"],
            "command and control summary",
            "Table clients: how many agents of the namespace are connected to this host.",
        ),
        h(
            "cc_clients",
            Broadcast,
            &["cc <clients,>"],
            "list cc clients",
            "Table uuid | hostname | arch | os | ip | mac of the connected agents.",
        ),
        h(
            "cc_exec",
            Broadcast,
            &["cc <exec,> <command>..."],
            "run a command on the clients",
            "Queue a command for every client that matches the current filter; each runs \
             it in the foreground and its stdout and stderr become its response.",
        ),
        h(
            "cc_background",
            Broadcast,
            &["cc <background,> <command>..."],
            "start a command on the clients",
            "Queue a command that the clients start in the background, answering at once \
             with an empty response.",
        ),
        h(
            "cc_commands",
            Broadcast,
            &["cc <commands,>"],
            "list cc commands",
            "Table id | prefix | command | responses | background | sent | received | \
             level | filter of the queued commands.",
        ),
        h(
            "cc_responses",
            Broadcast,
            &["cc <responses,> <id or prefix or all> [raw,]"],
            "show command responses",
            "Print the responses of a command (by ID or prefix, or all): each file under \
             miniccc_responses as its path and content, or only the content with raw.",
        ),
        h(
            "cc_filter",
            Broadcast,
            &["cc <filter,> [filter]..."],
            "set or show the client filter",
            "Without arguments, show the filter. Otherwise set it: key=value pairs of \
             uuid, hostname, arch, os, ip (address or CIDR), mac; other keys (or tag=k=v) \
             are tags. Later commands go only to matching clients.",
        ),
        h(
            "cc_prefix",
            Broadcast,
            &["cc <prefix,> [prefix]"],
            "set or show the command prefix",
            "Without arguments, show the prefix. Otherwise set it: later commands carry it.",
        ),
        h(
            "cc_delete",
            Broadcast,
            &["cc <delete,> <command,response> <id or prefix or all>"],
            "delete commands or responses",
            "Delete commands, or the responses on disk, by ID, prefix or all.",
        ),
        h(
            "cc_send",
            Broadcast,
            &["cc <send,> <file>..."],
            "send files to the clients",
            "Queue files of the files directory (relative names are looked for in the \
             namespace's folder first; globs allowed) for the clients to fetch into \
             /tmp/miniccc/files/.",
        ),
        h(
            "cc_recv",
            Broadcast,
            &["cc <recv,> <file>..."],
            "receive files from the clients",
            "Queue guest paths (globs allowed) for the clients to send back; they land in \
             the command's response directory under their guest path.",
        ),
        h(
            "cc_process_list",
            Broadcast,
            &["cc <process,> <list,> <vm name or uuid or all>"],
            "list the clients' background processes",
            "Table name | uuid | pid | command of the processes the clients started in the \
             background and that still run.",
        ),
        h(
            "cc_process_kill",
            Broadcast,
            &["cc <process,> <kill,> <pid or all>"],
            "kill a background process",
            "Queue a command that kills a process by PID, or (all) every process the \
             clients started.",
        ),
        h(
            "cc_process_killall",
            Broadcast,
            &["cc <process,> <killall,> <name>"],
            "kill processes by name",
            "Queue a command that kills every process of that name on the clients.",
        ),
        h(
            "cc_log_level",
            Broadcast,
            &["cc <log,> <level,> <debug,info,warn,error,fatal>"],
            "set the clients' log level",
            "Queue a command that changes the agents' log level.",
        ),
        h(
            "cc_listen",
            Broadcast,
            &["cc <listen,> <port>"],
            "accept agents over TCP",
            "Listen on a TCP port (all interfaces) for agents started with \
             --path tcp:<host>:<port>.",
        ),
        h(
            "cc_tunnel",
            Broadcast,
            &["cc <tunnel,> <uuid> <src port> <host> <dst port>"],
            "forward a host port through a client",
            "Like ssh -L: connections to 127.0.0.1:<src port> on this host are carried \
             through the client to <host>:<dst port> as the guest sees it.",
        ),
        h(
            "cc_rtunnel",
            Broadcast,
            &["cc <rtunnel,> <src port> <host> <dst port>"],
            "forward a guest port to the host",
            "Like ssh -R: every client matching the filter listens on <src port> and \
             carries its connections to <host>:<dst port> as this host sees it.",
        ),
        h(
            "clear_cc",
            Broadcast,
            &["clear cc [commands,filter,prefix,responses]"],
            "reset command and control",
            "Clear commands (and reset IDs), the filter, the prefix or the responses; all \
             of them when none is named.",
        ),
    ]
}

fn plumbing() -> Vec<HandlerSpec> {
    use Scope::*;
    vec![
        h(
            "plumb",
            Local,
            &["plumb", "plumb <src> <dst>..."],
            "plumb pipelines of processes and pipes",
            "Without arguments, list the pipelines. Otherwise start one: each word is a \
             program (when its first word is in PATH; quote it with its arguments) or a \
             pipe name, and each stage reads what the one before it writes, line by line.",
        ),
        h(
            "clear_plumb",
            Broadcast,
            &["clear plumb [pipeline]..."],
            "stop pipelines",
            "Stop the named pipelines (as plumb lists them), or all, killing their processes.",
        ),
        h(
            "pipe",
            Local,
            &[
                "pipe",
                "pipe <pipe> <mode,> <all,round-robin,random>",
                "pipe <pipe> <log,> <true,false>",
                "pipe <pipe> <via,> <command>...",
                "pipe <pipe> <data>",
            ],
            "named pipes",
            "Without arguments, table name | mode | readers | writers | via | last message. \
             Otherwise write a message into a pipe, or set how it delivers (to all readers, \
             in turn, or one at random), whether it logs, or a program each message passes \
             through on its way to each reader.",
        ),
        h(
            "clear_pipe",
            Broadcast,
            &["clear pipe [pipe]", "clear pipe <pipe> <mode,log,via>"],
            "delete pipes or reset their settings",
            "Delete a pipe (or all), or reset its mode, log or via.",
        ),
    ]
}

/// Every handler of the language, builtins first.
pub static HANDLERS: LazyLock<Vec<HandlerSpec>> = LazyLock::new(|| {
    let mut v = builtins();
    v.extend(misc());
    v.extend(namespaces());
    v.extend(mesh());
    v.extend(vms());
    v.extend(vm_config());
    v.extend(vlans());
    v.extend(files());
    v.extend(disks());
    v.extend(networking());
    v.extend(cc());
    v.extend(plumbing());
    v
});

/// The handler called `name`, with its index in [`HANDLERS`].
pub fn by_name(name: &str) -> Option<(usize, &'static HandlerSpec)> {
    HANDLERS.iter().enumerate().find(|(_, h)| h.name == name)
}

/// The operations: every handler that is an endpoint (all but the builtins).
pub fn operations() -> impl Iterator<Item = (usize, &'static HandlerSpec)> {
    HANDLERS
        .iter()
        .enumerate()
        .filter(|(_, h)| h.scope != Scope::Builtin)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handler_names_are_unique() {
        let mut names: Vec<&str> = HANDLERS.iter().map(|h| h.name.as_str()).collect();
        names.sort();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }

    #[test]
    fn every_field_has_a_vm_config_handler() {
        for f in FIELDS {
            let name = format!("vm_config_{}", f.name.replace('-', "_"));
            assert!(by_name(&name).is_some(), "{name}");
        }
    }
}
