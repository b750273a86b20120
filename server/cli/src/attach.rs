//! `ferromega attach`: an interactive shell with history and tab completion from the server.

use std::borrow::Cow;

use ferromega_client::Client;
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};

/// Completion through the server's suggest endpoint.
#[derive(Helper, Highlighter, Hinter, Validator)]
struct Suggest {
    client: Client,
    runtime: tokio::runtime::Handle,
}

impl Completer for Suggest {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        let client = self.client.clone();
        let text = head.to_string();
        let found = tokio::task::block_in_place(|| {
            self.runtime
                .block_on(async move { client.suggest(&text).await })
        })
        .unwrap_or_default();
        let pairs = found
            .into_iter()
            .map(|s| Pair {
                display: s.clone(),
                replacement: s,
            })
            .collect();
        Ok((0, pairs))
    }
}

fn prompt(ns: &str) -> Cow<'static, str> {
    Cow::Owned(format!("ferromega[{ns}]$ "))
}

/// Runs the interactive shell until `disconnect` or end of input. The namespace is
/// this shell's own state; `namespace foo` changes it for later lines.
pub async fn attach(client: Client) -> anyhow::Result<()> {
    let helper = Suggest {
        client: client.clone(),
        runtime: tokio::runtime::Handle::current(),
    };
    let mut editor: Editor<Suggest, rustyline::history::DefaultHistory> = Editor::new()?;
    editor.set_helper(Some(helper));
    let mut ns = "minimega".to_string();
    let mut quit_armed = false;
    loop {
        let line = match tokio::task::block_in_place(|| editor.readline(&prompt(&ns))) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(e.into()),
        };
        let trimmed = line.trim();
        if trimmed.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(trimmed);
        if trimmed == "disconnect" {
            break;
        }
        // As in minimega's attach, `quit` must be typed twice to stop the server.
        if trimmed == "quit" && !quit_armed {
            println!("type quit again to stop the server, or disconnect to leave");
            quit_armed = true;
            continue;
        }
        quit_armed = false;
        match client.command(&ns, trimmed).await {
            Ok(reply) => {
                print!("{}", crate::format_batches(&reply.batches));
                ns = reply.namespace;
            }
            Err(e) => eprintln!("{e}"),
        }
    }
    Ok(())
}
