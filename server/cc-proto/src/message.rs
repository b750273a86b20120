//! The messages of the cc link: what the agent and the server say to each other.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// What an agent tells about itself when it connects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Hello {
    /// The agent's protocol version.
    pub version: u32,
    /// The VM's UUID (lower case).
    pub uuid: String,
    /// The guest's hostname.
    pub hostname: String,
    /// The guest's architecture (`x86_64`).
    pub arch: String,
    /// The guest's operating system (`linux`).
    pub os: String,
    /// Addresses of the guest's interfaces that have a MAC address.
    pub ips: Vec<String>,
    /// MAC addresses of the guest's interfaces.
    pub macs: Vec<String>,
    /// Tags set inside the guest (`ferromega-agent tag k v`) so far.
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
}

/// A file of the server's files directory that a command sends to the guest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendFile {
    /// Its path relative to the files directory; the agent writes it under its own
    /// files directory (`/tmp/miniccc/files/<name>`), skipping it when present.
    pub name: String,
    /// Its permission bits.
    pub perm: u32,
}

/// One command for the agent to run. Every part is optional; they are carried out in
/// this order: fetch `send`, kill, set the log level, run `argv`, read `recv`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Command {
    /// Its ID; agents run commands in ascending ID order, each once.
    pub id: u64,
    /// Start it and answer at once, without waiting or capturing output.
    pub background: bool,
    /// Program and arguments (empty: nothing to run).
    pub argv: Vec<String>,
    /// Files to fetch from the server first.
    #[serde(default)]
    pub send: Vec<SendFile>,
    /// Guest paths (globs) to send back with the response.
    #[serde(default)]
    pub recv: Vec<String>,
    /// A process to kill by PID; -1 kills every process the agent started.
    #[serde(default)]
    pub kill_pid: Option<i64>,
    /// Kill every process of this name.
    #[serde(default)]
    pub kill_all: Option<String>,
    /// A new log level for the agent.
    #[serde(default)]
    pub level: Option<String>,
    /// Pipe to read the command's standard input from.
    #[serde(default)]
    pub stdin: Option<String>,
    /// Pipe to write the command's standard output to, line by line.
    #[serde(default)]
    pub stdout: Option<String>,
    /// Pipe to write the command's standard error to, line by line.
    #[serde(default)]
    pub stderr: Option<String>,
}

/// What running one command gave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct CommandResponse {
    /// The command's ID.
    pub id: u64,
    /// Its standard output (empty for background commands).
    pub stdout: String,
    /// Its standard error, or why it could not run.
    pub stderr: String,
}

/// A process the agent started in the background and that still runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Process {
    /// Its PID in the guest.
    pub pid: u32,
    /// Its program and arguments.
    pub argv: Vec<String>,
}

/// What a pipe message does (minimega's plumber modes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PipeMode {
    /// The sender reads the pipe from now on: send it the pipe's data.
    NewReader,
    /// The sender writes to the pipe from now on.
    NewWriter,
    /// The sender stopped reading.
    CloseReader,
    /// The sender stopped writing.
    CloseWriter,
    /// Data written to the pipe (agent → server) or read from it (server → agent).
    Data,
}

/// One frame's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Agent → server, first frame; again after a reboot on a link that stayed up.
    Hello(Hello),
    /// Server → agent: accepted.
    Welcome {
        /// The server's protocol version.
        version: u32,
    },
    /// Server → agent: refused; the server closes the link.
    Refused {
        /// Why.
        reason: String,
    },
    /// Server → agent: commands to run.
    Commands {
        /// The commands, by ascending ID.
        commands: Vec<Command>,
    },
    /// Agent → server: one command's result, after its `FileData`.
    Response(CommandResponse),
    /// Agent → server: still alive.
    Heartbeat,
    /// Agent → server: the next part of a file to send, from `offset`.
    FileGet {
        /// The file's name relative to the files directory.
        name: String,
        /// Where to read from.
        offset: u64,
    },
    /// Server → agent: a part of a file (an empty `data` at `offset == size` ends it).
    FileChunk {
        /// The file's name, as asked.
        name: String,
        /// Where `data` starts.
        offset: u64,
        /// The file's whole size.
        size: u64,
        /// Its permission bits.
        perm: u32,
        /// The bytes.
        #[serde(with = "crate::b64")]
        data: Vec<u8>,
        /// Why it cannot be read, if it cannot.
        #[serde(default)]
        error: Option<String>,
    },
    /// Agent → server: a part of a received file for the response of command `id`.
    FileData {
        /// The command's ID.
        id: u64,
        /// The file's absolute path in the guest.
        path: String,
        /// Where `data` starts (0 creates the file).
        offset: u64,
        /// Its permission bits.
        perm: u32,
        /// The bytes.
        #[serde(with = "crate::b64")]
        data: Vec<u8>,
    },
    /// Agent → server: the background processes now running.
    Processes {
        /// Them.
        processes: Vec<Process>,
    },
    /// Agent → server: tags set inside the guest.
    Tags {
        /// Key → value.
        tags: BTreeMap<String, String>,
    },
    /// Either way: open tunnel connection `tid` to `host:port` as seen from the
    /// receiver, and relay it.
    TunnelOpen {
        /// The connection's ID, chosen by the side that accepted it.
        tid: u64,
        /// Where to connect.
        host: String,
        /// Which port.
        port: u16,
    },
    /// Either way: bytes of tunnel connection `tid`.
    TunnelData {
        /// The connection.
        tid: u64,
        /// The bytes.
        #[serde(with = "crate::b64")]
        data: Vec<u8>,
    },
    /// Either way: the sender will write no more to tunnel connection `tid` (its
    /// side hit end of stream, or could not connect: then `error` says why).
    TunnelClose {
        /// The connection.
        tid: u64,
        /// Why the connection failed, if it did.
        #[serde(default)]
        error: Option<String>,
    },
    /// Server → agent: listen on `port` in the guest and open a tunnel back to
    /// `host:dst_port` (as seen from the server) for every connection.
    RtunnelListen {
        /// The guest port.
        port: u16,
        /// The host to reach from the server.
        host: String,
        /// Its port.
        dst_port: u16,
    },
    /// Either way: plumbing traffic for a named pipe.
    Pipe {
        /// The pipe's name.
        name: String,
        /// What this is.
        mode: PipeMode,
        /// The data, for `PipeMode::Data`.
        #[serde(default)]
        data: String,
    },
}
