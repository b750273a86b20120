//! The gate of a session: who may run what, asked by the engine before each operation
//! (the HTTP layer builds it from the caller's auth rules).

use ferromega_api::Args;
use ferromega_command::{Command, Scope};

use crate::engine::{bool_choice, Session, FLAG_BUILTINS};

/// Says whether a caller may run operation `name` in namespace `ns` with `args`
/// (`Err` holds the refusal). The HTTP layer builds one from the caller's auth rules, so
/// a command line may do no more than the caller's requests to each operation's own
/// endpoint. Builtins are asked only when they change server-wide state (`alias`,
/// `unalias`, `env`, an output flag set without a command); `namespace` is asked with
/// the namespace it enters.
#[derive(Clone)]
pub struct Gate(std::sync::Arc<GateFn>);

/// The check inside a [`Gate`].
pub type GateFn = dyn Fn(&str, &str, &Args) -> Result<(), String> + Send + Sync;

impl Gate {
    /// A gate asking `f`.
    pub fn new(
        f: impl Fn(&str, &str, &Args) -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Gate(std::sync::Arc::new(f))
    }

    /// Whether `name` may run in `ns` with `args`.
    pub fn check(&self, name: &str, ns: &str, args: &Args) -> Result<(), String> {
        (self.0)(name, ns, args)
    }
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Gate")
    }
}

/// Whether builtin `name` as called in `cmd` changes server-wide state.
fn changes_server_state(name: &str, cmd: &Command) -> bool {
    match name {
        "alias" | "unalias" | "env" => true,
        _ if FLAG_BUILTINS.contains(&name) => cmd.sub.is_none() && bool_choice(&cmd.args).is_some(),
        _ => false,
    }
}

/// Asks the session's gate, if any, about `cmd` (see [`Gate`]).
pub(crate) fn gate_check(
    session: &Session,
    scope: Scope,
    name: &str,
    cmd: &Command,
) -> Result<(), String> {
    let Some(gate) = &session.gate else {
        return Ok(());
    };
    if scope == Scope::Builtin && !changes_server_state(name, cmd) {
        return Ok(());
    }
    let ns = match (name, cmd.args.string("name")) {
        ("namespace", Some(entered)) => entered,
        _ => session.namespace.as_str(),
    };
    gate.check(name, ns, &cmd.args)
}
