//! ferromega-cli: the command shell — `-e`, `attach`, and `test`, the minitest-compatible
//! runner — all speaking to the server's command endpoint.

mod attach;
pub mod minitest;
mod pipe;

use ferromega_api::Batch;
use ferromega_client::Client;

pub use attach::attach;
pub use pipe::pipe;

/// The text minimega's CLI prints for batches: each error as `Error (<host>): <msg>`,
/// then the rendered text.
pub fn format_batches(batches: &[Batch]) -> String {
    let mut out = String::new();
    for b in batches {
        for r in b.resp.iter().filter(|r| !r.error.is_empty()) {
            out.push_str(&format!("Error ({}): {}\n", r.host, r.error));
        }
        if !b.rendered.is_empty() {
            out.push_str(&b.rendered);
            out.push('\n');
        }
    }
    out
}

/// `ferromega -e <command>`: runs one line in `ns`, prints its output, and returns
/// whether every response succeeded.
pub async fn execute(client: &Client, ns: &str, line: &str) -> anyhow::Result<bool> {
    let reply = client.command(ns, line).await?;
    print!("{}", format_batches(&reply.batches));
    Ok(reply
        .batches
        .iter()
        .all(|b| b.resp.iter().all(|r| r.error.is_empty())))
}
