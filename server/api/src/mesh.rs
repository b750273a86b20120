//! Wire types of the peer link: what one ferromega host sends another over the mesh.
//!
//! Peers call each other's `/api/v1/mesh/peer/*` endpoints with the shared cluster
//! secret. These endpoints are internal (not operations of the language), so they
//! are not in the public OpenAPI document.

use serde::{Deserialize, Serialize};

use crate::Args;

/// The HTTP path of the handshake (and heartbeat).
pub const PEER_HELLO_PATH: &str = "/api/v1/mesh/peer/hello";
/// The HTTP path of a forwarded command.
pub const PEER_RUN_PATH: &str = "/api/v1/mesh/peer/run";
/// The HTTP path of file queries and file parts (iomeshage).
pub const PEER_FILE_PATH: &str = "/api/v1/mesh/peer/file";

/// The HTTP path a peer follows this host's own VM events at: one JSON event per line
/// (a snapshot first), and an empty line now and then so a silent peer is noticed.
pub const PEER_EVENTS_PATH: &str = "/api/v1/mesh/peer/events";
/// The HTTP path of a VM's console for a peer: `GET` with `?namespace=…&vm=…` and an
/// `Upgrade: ferromega-console` header; after `101` the connection carries the
/// console's bytes both ways.
pub const PEER_CONSOLE_PATH: &str = "/api/v1/mesh/peer/console";
/// The protocol named in the console's `Upgrade` header.
pub const PEER_CONSOLE_PROTOCOL: &str = "ferromega-console";

/// The HTTP path of a peer's graphs (`vm top` history) of one of its VMs or of itself.
pub const PEER_GRAPHS_PATH: &str = "/api/v1/mesh/peer/graphs";

/// Which graphs a peer asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerGraphsQuery {
    /// The namespace.
    pub namespace: String,
    /// The VM; the host's own figures when absent.
    #[serde(default)]
    pub vm: Option<String>,
    /// `10m` or `24h`.
    pub range: String,
}

/// Which console a peer asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConsoleQuery {
    /// The VM's namespace.
    pub namespace: String,
    /// The VM's name or ID.
    pub vm: String,
}

/// A host introducing itself: sent by the dialer, answered by the dialed host.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerHello {
    /// The host's name (its `host` column).
    pub host: String,
    /// Where its HTTP API listens (`10.0.0.2:9001`), so the other side can call back.
    pub addr: String,
    /// Names of the host's own peers (for `mesh list`).
    #[serde(default)]
    pub peers: Vec<String>,
    /// Whether the receiver should add the sender as a peer (a dial, not a heartbeat).
    #[serde(default)]
    pub dial: bool,
    /// Whether the sender is hanging up: the receiver forgets it.
    #[serde(default)]
    pub hangup: bool,
    /// The sender's version.
    #[serde(default)]
    pub version: String,
    /// What the sender knows of the mesh: its own links and the latest it heard from
    /// every other host (minimega's Mesh State Announcements), so hosts learn of hosts
    /// beyond their peers and route to them hop by hop.
    #[serde(default)]
    pub links: Vec<HostLinks>,
}

/// One host's links as it announced them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostLinks {
    /// The host's name.
    pub host: String,
    /// Where its HTTP API listens.
    pub addr: String,
    /// Grows each time the host's links change: the higher wins.
    pub version: u64,
    /// The peers the host reaches (those that answered it last).
    pub peers: Vec<String>,
}

/// A command forwarded to a peer; it runs there with its local behaviour only.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerRequest {
    /// The sending host.
    pub from: String,
    /// The namespace it runs in (created on demand, as minimega does).
    pub namespace: String,
    /// Why it was sent: the namespace name for fan-out, `meshage` for `mesh send`.
    pub source: String,
    /// An operation to run with `args` (fan-out of broadcast and vm-target commands).
    #[serde(default)]
    pub op: Option<String>,
    /// The operation's arguments.
    #[serde(default)]
    pub args: Args,
    /// A command line to run instead (`mesh send`, `ns run`).
    #[serde(default)]
    pub line: Option<String>,
    /// A scheduled launch: VMs placed on this host by the sender's scheduler.
    #[serde(default)]
    pub launch: Option<PeerLaunch>,
    /// The host the request is for when it is not the receiver: a host beyond the
    /// sender's peers, reached hop by hop (each hop forwards it to its next hop).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// How many hosts have forwarded the request (a bound against loops).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hops: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// VMs the scheduler placed on one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerLaunch {
    /// Names, already unique across the namespace's hosts.
    pub names: Vec<String>,
    /// `kvm` or `container`.
    pub vm_type: String,
    /// The `vm config` snapshot the VMs launch with (the domain's config type).
    pub config: serde_json::Value,
    /// Addresses of the namespace's other hosts: the receiver tunnels its bridges'
    /// VLANs to them (VXLAN, VNI = VLAN) so VLANs span the hosts.
    #[serde(default)]
    pub tunnels: Vec<String>,
    /// The sender's files directory: config paths below it name the same file below the
    /// receiver's, fetched from the mesh when missing there.
    #[serde(default)]
    pub files_dir: String,
}

/// A question about the files directory of a peer: which files match a glob (no
/// `offset`), or the bytes of one part of one file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerFileRequest {
    /// A glob relative to the files directory, or (for a part) one file's path.
    pub path: String,
    /// Where the part starts; `None` asks which files match.
    #[serde(default)]
    pub offset: Option<u64>,
    /// The part's length.
    #[serde(default)]
    pub length: u64,
    /// The host asked when it is not the receiver (a host beyond the sender's peers,
    /// reached hop by hop, as [`PeerRequest::to`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// How many hosts have forwarded the question.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub hops: u32,
}

/// One file a peer has: its path relative to the files directory and its size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerFileInfo {
    /// Path relative to the files directory.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
}
