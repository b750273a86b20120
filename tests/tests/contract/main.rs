//! Contract tests of the HTTP API: every operation driven through the typed client
//! against a real server ([`TestApp`](ferromega_tests::TestApp)).
//!
//! `table` calls each operation once with a meaningful body and checks the result and
//! its effect; `errors` checks statuses and error bodies; `http` checks what the
//! endpoints add over the domain (text rendering, query parameters, namespaces in the
//! URL, the command and suggest endpoints); `fuzz` checks that bad input never takes
//! the server down.

mod errors;
mod fuzz;
mod http;
mod table;

use ferromega_api::Response;
use ferromega_client::ClientError;

/// What an operation call gave: per-host responses, or the status and error texts.
pub(crate) type Outcome = Result<Vec<Response>, (u16, Vec<String>)>;

/// Turns a client result into an [`Outcome`], panicking on transport failures (the
/// server must always answer).
pub(crate) fn outcome(op: &str, r: Result<Vec<Response>, ClientError>) -> Outcome {
    match r {
        Ok(resps) => Ok(resps),
        Err(ClientError::Api { status, body }) => {
            Err((status, body.errors.into_iter().map(|e| e.error).collect()))
        }
        Err(e) => panic!("{op}: the server did not answer: {e}"),
    }
}
