//! ferromega-command: the minimega command language — lexing, patterns, matching, ranges,
//! builtin output flags, help and table rendering.
//!
//! Pure logic: nothing here touches the host or the domain. The handler table
//! (`handlers`) names every operation; a line compiles into a [`Command`] that
//! names its handler and carries the matched [`Args`].

pub mod compile;
pub mod fields;
pub mod handlers;
pub mod help;
pub mod lex;
pub mod pattern;
pub mod ranges;
pub mod render;
pub mod routes;

pub use ferromega_api::{Args, Response};

/// Where a command runs (minimega's CLI wrappers, reference §1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// An output/CLI builtin (`.columns`, `.alias` …), applied by the command layer.
    Builtin,
    /// Runs on this host in the namespace, one response.
    Local,
    /// Runs on every host of the namespace, one response per host.
    Broadcast,
    /// Like broadcast, dropping `vm not found` from hosts without the VM.
    VmTarget,
    /// Handled by the engine itself (`read`, `namespace`, `clear all` …).
    Special,
}

/// One command handler: an operation of the language and of the HTTP API.
#[derive(Debug, Clone)]
pub struct HandlerSpec {
    /// The operation name shared by every layer (`vm_config_memory`).
    pub name: String,
    /// minimega patterns (`vm config memory [value]`).
    pub patterns: Vec<String>,
    /// One-line help.
    pub help_short: String,
    /// Longer help shown by `help <command>`.
    pub help_long: String,
    /// Where it runs.
    pub scope: Scope,
}

/// A compiled command line: the handler it matched and its arguments.
#[derive(Debug, Clone)]
pub struct Command {
    /// Index of the handler in the table it was compiled against.
    pub handler: usize,
    /// The pattern (index within the handler) that matched.
    pub pattern: usize,
    /// Matched arguments; `args.subcommand` holds the nested command's text.
    pub args: Args,
    /// The nested `(command)`, compiled.
    pub sub: Option<Box<Command>>,
    /// The input line as typed (after alias expansion).
    pub original: String,
}
