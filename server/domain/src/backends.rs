//! The traits the domain needs from the host; only the daemon names the real implementations.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use crate::network::{
    Attach, BridgeInfo, CaptureSpec, CaptureStats, Counters, DnsmasqSpec, HostTapSpec, NetflowSpec,
    Qos, Snooped, TunnelKind,
};
use crate::vm::registry::Vm;

/// A boxed future, so the traits stay object-safe behind `Arc<dyn …>`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A peer's own VM events, in order: a snapshot, then each change. It ends (or yields an
/// error) when the peer goes away or falls silent.
pub type EventStream =
    Pin<Box<dyn futures::Stream<Item = Result<ferromega_api::events::Event, String>> + Send>>;

/// The bytes of a console (a VNC server's RFB or a terminal), both ways.
pub trait ConsoleIo: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin {}

impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin> ConsoleIo for T {}

/// What a program printed and how it ended.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProgramOutput {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// Exit code (`None` when killed by a signal).
    pub code: Option<i32>,
}

/// Host programs and this process's figures: `shell`, `background`, `check`, `debug`.
pub trait HostSystem: Send + Sync {
    /// Run `argv` (PATH lookup, no shell) and wait. Errors are spawn failures,
    /// with Go's text for a missing program (`exec: "x": executable file not found in $PATH`).
    fn run<'a>(&'a self, argv: &'a [String]) -> BoxFuture<'a, Result<ProgramOutput, String>>;
    /// Start `argv` and return at once; its output goes to the log.
    fn spawn_background(&self, argv: &[String]) -> Result<u32, String>;
    /// Start `argv` with its standard input and output handed to the caller (its
    /// standard error goes to the log): `plumb` stages and pipe `via` programs.
    fn spawn_piped(&self, argv: &[String]) -> Result<PipedProcess, String>;
    /// Whether `program` resolves through PATH (or is a path to a file).
    fn in_path(&self, program: &str) -> bool;
    /// Problems with the host's external programs, empty when all is well.
    fn check(&self) -> BoxFuture<'_, Vec<String>>;
    /// Figures about the server process for `debug` (name, value), in column order.
    fn process_figures(&self) -> Vec<(String, String)>;
    /// A memory report of the server process (`debug memory`).
    fn process_report(&self) -> String;
    /// A listing of the server's threads (`debug goroutine`).
    fn thread_report(&self) -> String;
    /// CPU time used by the server process so far, in clock ticks.
    fn cpu_ticks(&self) -> u64;
    /// This host's CPU, load, memory and uptime figures.
    fn host_stats(&self) -> HostStats;
    /// A sample of the given processes' CPU time and memory (missing PIDs are skipped).
    fn process_sample(&self, pids: &[u32]) -> Vec<ProcSample>;
    /// Clock ticks per second (`CLK_TCK`).
    fn clock_ticks_per_second(&self) -> u64;
}

/// A process whose standard input and output the domain drives. Dropping `kill` (or
/// sending on it) kills the process.
pub struct PipedProcess {
    /// Its PID.
    pub pid: u32,
    /// Its standard input.
    pub stdin: Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
    /// Its standard output.
    pub stdout: Pin<Box<dyn tokio::io::AsyncRead + Send>>,
    /// Resolves when it has exited.
    pub exited: BoxFuture<'static, ()>,
    /// Kills it.
    pub kill: tokio::sync::oneshot::Sender<()>,
}

impl std::fmt::Debug for PipedProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PipedProcess({})", self.pid)
    }
}

/// Figures of this host for `host`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HostStats {
    /// Logical CPUs.
    pub cpus: u64,
    /// The three load averages, space separated.
    pub load: String,
    /// Total memory, MB.
    pub mem_total_mb: u64,
    /// Used memory (total − free − buffers − cached), MB.
    pub mem_used_mb: u64,
    /// Time since boot.
    pub uptime: std::time::Duration,
    /// Busy CPU time of all CPUs since boot, clock ticks (`/proc/stat`: all but idle
    /// and iowait).
    pub cpu_busy_ticks: u64,
    /// All CPU time of all CPUs since boot, clock ticks.
    pub cpu_total_ticks: u64,
}

/// One process's CPU and memory at one moment (`/proc/<pid>/stat` and `statm`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// The PID.
    pub pid: u32,
    /// utime + stime, clock ticks.
    pub cpu_ticks: u64,
    /// guest_time, clock ticks.
    pub guest_ticks: u64,
    /// Virtual size, bytes.
    pub virt_bytes: u64,
    /// Resident size, bytes.
    pub res_bytes: u64,
    /// Shared resident size, bytes.
    pub shr_bytes: u64,
}

/// How a VM's process ended: `Ok` for a clean exit or a kill (QUIT), `Err` with the
/// reason otherwise (ERROR).
pub type ExitStatus = Result<(), String>;

/// A started VM process: its PID and a receiver that fires when it ends.
#[derive(Debug)]
pub struct Launched {
    /// PID of the VM's process.
    pub pid: u32,
    /// Fires once when the process ends.
    pub exited: tokio::sync::oneshot::Receiver<ExitStatus>,
    /// Whether the VM's CPUs are running (false: paused, as after a launch with `-S`).
    pub running: bool,
}

/// Starts and drives VMs of one type (KVM through QEMU, containers).
pub trait VmRuntime: Send + Sync {
    /// Starts the VM's process paused (BUILDING) with its files in `dir`.
    fn launch<'a>(&'a self, vm: &'a Vm, dir: &'a Path) -> BoxFuture<'a, Result<Launched, String>>;
    /// Finds the process a previous server left running for `vm` in `dir` and takes
    /// it over; an error means the VM is gone.
    fn recover<'a>(&'a self, vm: &'a Vm, dir: &'a Path) -> BoxFuture<'a, Result<Launched, String>>;
    /// Resumes a BUILDING or PAUSED VM.
    fn resume<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>>;
    /// Pauses a RUNNING VM.
    fn pause<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>>;
    /// Kills the VM's process and waits until it has exited.
    fn kill<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>>;
    /// Releases what the VM held on the host besides its process (mounts, cgroups,
    /// namespaces) before its instance directory `dir` is removed (`vm flush`).
    fn destroy<'a>(&'a self, vm: &'a Vm, dir: &'a Path) -> BoxFuture<'a, Result<(), String>>;
    /// The PIDs `vm top` samples for the VM: its one process by default; a container's
    /// runtime lists its cgroup (at most 100, as minimega does).
    fn processes(&self, vm: &Vm) -> Vec<u32> {
        vec![vm.pid]
    }
}

/// KVM-only operations on a running QEMU.
pub trait Hypervisor: VmRuntime {
    /// Sends a raw QMP request; returns QEMU's raw JSON reply.
    fn qmp<'a>(&'a self, vm: &'a Vm, request: &'a str) -> BoxFuture<'a, Result<String, String>>;
    /// A PNG of the screen, scaled to fit `max` pixels when given.
    fn screenshot<'a>(
        &'a self,
        vm: &'a Vm,
        max: Option<u32>,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>>;
    /// Inserts the medium at `path` into the CD drive (ejecting what is there).
    fn cdrom_change<'a>(&'a self, vm: &'a Vm, path: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Ejects the CD drive's medium.
    fn cdrom_eject<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>>;
    /// The QEMU command line of `vm` before and after its overrides (id 0, no instance dir).
    fn preview_argv(&self, vm: &Vm) -> (Vec<String>, Vec<String>);
    /// Hot-adds `file` as USB mass storage `hotplug<id>` on a USB 1.1 or 2.0 bus.
    fn hotplug_add<'a>(
        &'a self,
        vm: &'a Vm,
        id: u32,
        file: &'a str,
        usb2: bool,
        serial: Option<&'a str>,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Removes the hotplugged drive `hotplug<id>`.
    fn hotplug_remove<'a>(&'a self, vm: &'a Vm, id: u32) -> BoxFuture<'a, Result<(), String>>;
    /// Starts saving the VM's state to `file` (the VM pauses).
    fn migrate<'a>(&'a self, vm: &'a Vm, file: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Migration status and completion in percent, None when no migration ran.
    fn migrate_status<'a>(
        &'a self,
        vm: &'a Vm,
    ) -> BoxFuture<'a, Result<Option<(String, f64)>, String>>;
    /// `qemu-img create -f <format> <path> <size>`.
    fn disk_create<'a>(
        &'a self,
        format: &'a str,
        path: &'a Path,
        size: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// A qcow2 image at `dst` backed by `src`.
    fn disk_snapshot<'a>(
        &'a self,
        src: &'a Path,
        dst: &'a Path,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// `[format, virtual size, disk size, backing file]` of an image.
    fn disk_info<'a>(&'a self, path: &'a Path) -> BoxFuture<'a, Result<[String; 4], String>>;
}

/// The host's network: bridges (a logical name and a VLAN), taps, veths, trunks, tunnels,
/// qos, captures, address snooping and dnsmasq processes. Errors are texts for users.
pub trait HostNetwork: Send + Sync {
    /// Creates a persistent tap for a KVM NIC (`mega_tapN`, never reused), up and plugged
    /// into `attach` when given; returns its name.
    fn tap_create<'a>(
        &'a self,
        attach: Option<&'a Attach>,
    ) -> BoxFuture<'a, Result<String, String>>;
    /// Creates a veth whose inner end goes into the network namespace of process `pid`
    /// as `inner` with MAC `mac`; the outer end (`mega_tapN`) is plugged into `attach`.
    /// Returns the outer end's name. The pair disappears with the namespace.
    fn veth_attach<'a>(
        &'a self,
        pid: u32,
        inner: &'a str,
        mac: &'a str,
        attach: Option<&'a Attach>,
    ) -> BoxFuture<'a, Result<String, String>>;
    /// Creates a host tap: an interface of this host, up, on a bridge VLAN, with an
    /// address; returns its name. Nothing is left behind when it fails.
    fn host_tap_create<'a>(
        &'a self,
        spec: &'a HostTapSpec,
    ) -> BoxFuture<'a, Result<String, String>>;
    /// Plugs an existing port into `attach`, unplugging it from where it was.
    fn port_connect<'a>(
        &'a self,
        port: &'a str,
        attach: &'a Attach,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Unplugs a port from its bridge (it stays on the host).
    fn port_disconnect<'a>(&'a self, port: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Deletes a port (tap, veth or host tap) with its qos and captures; a port that is
    /// already gone is not an error.
    fn port_destroy<'a>(&'a self, port: &'a str) -> BoxFuture<'a, Result<(), String>>;
    /// Whether an interface of this name exists on the host.
    fn interface_exists(&self, name: &str) -> bool;
    /// The logical bridges this server knows.
    fn bridges(&self) -> BoxFuture<'_, Vec<BridgeInfo>>;
    /// Adds `iface` to `bridge` as a trunk.
    fn trunk_add<'a>(
        &'a self,
        bridge: &'a str,
        iface: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Removes the trunk `iface` from `bridge`.
    fn trunk_remove<'a>(
        &'a self,
        bridge: &'a str,
        iface: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Adds a tunnel to `remote` on `bridge`; returns its name.
    fn tunnel_add<'a>(
        &'a self,
        bridge: &'a str,
        kind: TunnelKind,
        remote: &'a str,
    ) -> BoxFuture<'a, Result<String, String>>;
    /// Removes the tunnel `name` from `bridge`.
    fn tunnel_remove<'a>(
        &'a self,
        bridge: &'a str,
        name: &'a str,
    ) -> BoxFuture<'a, Result<(), String>>;
    /// Shapes the port's egress (traffic towards the VM) as `qos` says, replacing what was
    /// there; an empty `qos` clears it.
    fn qos_apply<'a>(&'a self, port: &'a str, qos: &'a Qos) -> BoxFuture<'a, Result<(), String>>;
    /// Starts a pcap capture; returns its id.
    fn capture_start<'a>(&'a self, spec: &'a CaptureSpec) -> BoxFuture<'a, Result<u64, String>>;
    /// Stops a capture (its file is complete afterwards) and returns its figures.
    fn capture_stop(&self, id: u64) -> BoxFuture<'_, Result<CaptureStats, String>>;
    /// Addresses snooped on the bridges, by lower-case MAC.
    fn snooped(&self) -> std::collections::HashMap<String, Snooped>;
    /// Byte counters of a port, None when it does not exist.
    fn counters(&self, port: &str) -> Option<Counters>;
    /// Starts a dnsmasq; returns its PID once it is up.
    fn dnsmasq_start<'a>(&'a self, spec: &'a DnsmasqSpec) -> BoxFuture<'a, Result<u32, String>>;
    /// Asks a dnsmasq to re-read its host and option files (SIGHUP).
    fn dnsmasq_reload(&self, pid: u32) -> Result<(), String>;
    /// Stops a dnsmasq (SIGTERM) and waits for it.
    fn dnsmasq_kill(&self, pid: u32) -> BoxFuture<'_, Result<(), String>>;
    /// Starts a NetFlow capture of a bridge (its exporter starts with the bridge's first
    /// one); returns its id.
    fn netflow_start<'a>(&'a self, spec: &'a NetflowSpec) -> BoxFuture<'a, Result<u64, String>> {
        let _ = spec;
        Box::pin(async { Err("capture netflow is not implemented on this host".to_string()) })
    }
    /// Stops a NetFlow capture (its file is complete afterwards); the bridge's exporter
    /// stops with its last one.
    fn netflow_stop(&self, id: u64) -> BoxFuture<'_, Result<(), String>> {
        let _ = id;
        Box::pin(async { Ok(()) })
    }
    /// Sets the active flow timeout, in seconds, of every NetFlow exporter.
    fn netflow_timeout(&self, seconds: u32) -> BoxFuture<'_, Result<(), String>> {
        let _ = seconds;
        Box::pin(async { Err("capture netflow is not implemented on this host".to_string()) })
    }
    /// Removes everything this server created on the host network that is still there:
    /// captures, tunnels, trunks, bridges that did not pre-exist, taps.
    fn reset(&self) -> BoxFuture<'_, ()>;
}

/// The link to other ferromega hosts: calls to their peer endpoints, authenticated with
/// the cluster secret. `Err` is a transport or refusal text; it names no host (the
/// caller knows which one it asked).
pub trait PeerLink: Send + Sync {
    /// Handshake or heartbeat: sends this host's hello, returns the peer's.
    fn hello<'a>(
        &'a self,
        addr: &'a str,
        me: &'a ferromega_api::mesh::PeerHello,
    ) -> BoxFuture<'a, Result<ferromega_api::mesh::PeerHello, String>>;
    /// Runs a forwarded command on the peer at `addr`, returning its responses.
    fn run<'a>(
        &'a self,
        addr: &'a str,
        req: &'a ferromega_api::mesh::PeerRequest,
    ) -> BoxFuture<'a, Result<Vec<ferromega_api::Response>, String>>;
    /// Lists the peer's files matching a glob (`req.offset` is `None`).
    fn file_info<'a>(
        &'a self,
        addr: &'a str,
        req: &'a ferromega_api::mesh::PeerFileRequest,
    ) -> BoxFuture<'a, Result<Vec<ferromega_api::mesh::PeerFileInfo>, String>>;
    /// Reads one part of one of the peer's files.
    fn file_part<'a>(
        &'a self,
        addr: &'a str,
        req: &'a ferromega_api::mesh::PeerFileRequest,
    ) -> BoxFuture<'a, Result<Vec<u8>, String>>;
    /// Follows the peer's own VM events (not those it relays from others).
    fn events<'a>(&'a self, addr: &'a str) -> BoxFuture<'a, Result<EventStream, String>>;
    /// The peer's graphs of one of its VMs or of itself (the graphs endpoint's JSON).
    fn graphs<'a>(
        &'a self,
        addr: &'a str,
        q: &'a ferromega_api::mesh::PeerGraphsQuery,
    ) -> BoxFuture<'a, Result<serde_json::Value, String>>;
    /// Opens the console of VM `vm` (name or ID) of namespace `ns` on the peer.
    fn console<'a>(
        &'a self,
        addr: &'a str,
        ns: &'a str,
        vm: &'a str,
    ) -> BoxFuture<'a, Result<Box<dyn ConsoleIo>, String>>;
}
