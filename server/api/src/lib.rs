//! ferromega-api: the wire types every layer shares — responses, invocation arguments, error bodies.
//!
//! These are what travels over HTTP and the minimega socket. They carry no behaviour
//! beyond conversion; the domain and the command language build on them.

pub mod events;
pub mod mesh;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One host's answer to one command, as minimega's `minicli.Response`.
///
/// A response always records the host that produced it. `tabular` rows have
/// `header.len()` cells; `response` is ignored when there is a header.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Response {
    /// Host that produced this response.
    pub host: String,
    /// Simple text result.
    #[serde(default)]
    pub response: String,
    /// Column names of a tabular result.
    #[serde(default)]
    pub header: Vec<String>,
    /// Rows of a tabular result.
    #[serde(default)]
    pub tabular: Vec<Vec<String>>,
    /// Error text; empty on success.
    #[serde(default)]
    pub error: String,
    /// Machine-readable payload (VM objects, host stats …), null when absent.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub data: Option<serde_json::Value>,
}

impl Response {
    /// An empty successful response from `host`.
    pub fn new(host: &str) -> Self {
        Response {
            host: host.to_string(),
            ..Default::default()
        }
    }

    /// A simple text response.
    pub fn text(host: &str, text: impl Into<String>) -> Self {
        Response {
            host: host.to_string(),
            response: text.into(),
            ..Default::default()
        }
    }

    /// An error response.
    pub fn error(host: &str, error: impl Into<String>) -> Self {
        Response {
            host: host.to_string(),
            error: error.into(),
            ..Default::default()
        }
    }

    /// A tabular response.
    pub fn table(host: &str, header: Vec<String>, tabular: Vec<Vec<String>>) -> Self {
        Response {
            host: host.to_string(),
            header,
            tabular,
            ..Default::default()
        }
    }
}

/// The arguments a command pattern matched, as minicli stores them.
///
/// `strings` holds `<key>`/`[key]` values, `bools` the chosen alternative of
/// `<a,b>` choices, `lists` the values of `<key>...`, `subcommand` the text of a
/// nested `(command)`. Over HTTP this is the request body of every operation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// String arguments by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub strings: BTreeMap<String, String>,
    /// Chosen keywords of choices.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub bools: BTreeMap<String, bool>,
    /// List arguments by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub lists: BTreeMap<String, Vec<String>>,
    /// A nested command line, for operations such as `namespace <name> (command)`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcommand: Option<String>,
}

impl Args {
    /// The string argument `key`, if given.
    pub fn string(&self, key: &str) -> Option<&str> {
        self.strings.get(key).map(String::as_str)
    }

    /// Whether the keyword `key` was chosen.
    pub fn flag(&self, key: &str) -> bool {
        self.bools.get(key).copied().unwrap_or(false)
    }

    /// The list argument `key`, empty when absent.
    pub fn list(&self, key: &str) -> &[String] {
        self.lists.get(key).map(Vec::as_slice).unwrap_or(&[])
    }
}

/// A command line, for `POST /api/v1/namespaces/{ns}/command`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRequest {
    /// The command line, in the minimega command language.
    pub command: String,
}

/// One batch of a command's output: the per-host responses and their rendering.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Batch {
    /// Per-host responses.
    pub resp: Vec<Response>,
    /// The text the CLI prints (minimega's `Rendered`).
    pub rendered: String,
}

/// The reply to a command line: its batches and the namespace active afterwards.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct CommandReply {
    /// Output batches in order (`read` produces one per line).
    pub batches: Vec<Batch>,
    /// The namespace the session is in after the command (`namespace foo` changes it).
    pub namespace: String,
}

/// Completions for a partial command line.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SuggestReply {
    /// Whole candidate lines.
    pub suggestions: Vec<String>,
}

/// The error body of every failing request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Per-host errors; the text is minimega's where scripts depend on it.
    pub errors: Vec<HostError>,
}

/// One host's error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostError {
    /// The error text.
    pub error: String,
    /// The host that reported it.
    pub host: String,
}
