//! The command engine's gate (`Session::gated`): every operation a line runs is asked —
//! nested `namespace X (…)` and the lines of a `read` included — and a refusal is the
//! operation's error, leaving everything else of the line to run.

use ferromega_domain::{Gate, Session};
use ferromega_tests::TestApp;

/// Lets anything run in namespace `ns` and nothing elsewhere; server-wide builtins never.
fn only(ns: &'static str) -> Option<Gate> {
    Some(Gate::new(move |name, at, _args| {
        if at == ns && !matches!(name, "alias" | "unalias" | "env" | "csv") {
            Ok(())
        } else {
            Err(format!("forbidden: {name} in {at}"))
        }
    }))
}

async fn errors(app: &TestApp, ns: &str, line: &str) -> Vec<String> {
    let mut session = Session::in_namespace(ns).gated(only("foo"));
    app.cp
        .run_line(&mut session, line)
        .await
        .into_iter()
        .flat_map(|b| b.resp)
        .map(|r| r.error)
        .filter(|e| !e.is_empty())
        .collect()
}

#[tokio::test]
async fn a_gated_session_runs_only_what_the_gate_allows() {
    let app = TestApp::spawn().await;
    app.run_in("bar", "vm config memory 512").await;
    assert!(errors(&app, "foo", "vm config memory 256").await.is_empty());
    assert_eq!(
        errors(&app, "foo", "namespace bar vm config memory 1").await,
        vec!["forbidden: namespace in bar".to_string()]
    );
    assert_eq!(
        errors(&app, "bar", "vm config memory 1").await,
        vec!["forbidden: vm_config_memory in bar".to_string()]
    );
    // Wrapping builtins pass and the command inside is asked; server-wide ones are asked.
    assert!(errors(&app, "foo", ".columns memory vm config")
        .await
        .is_empty());
    assert_eq!(
        errors(&app, "foo", ".csv true").await,
        vec!["forbidden: csv in foo".to_string()]
    );
    assert!(errors(&app, "foo", ".csv true vm config memory")
        .await
        .is_empty());
    assert_eq!(
        errors(&app, "foo", ".alias x=vm info").await,
        vec!["forbidden: alias in foo".to_string()]
    );
    // The lines of a `read` are asked one by one.
    app.write_file(
        "script.mm",
        "vm config memory 128\nnamespace bar vm config memory 2\n",
    );
    let read = format!("read {}", app.files_dir.join("script.mm").display());
    let e = errors(&app, "foo", &read).await;
    assert_eq!(e, vec!["forbidden: namespace in bar".to_string()], "{e:?}");
    // Nothing in bar changed.
    let out = app.script_in("bar", &["vm config memory"]).await;
    assert!(out.contains("512"), "{out}");
    let out = app.script_in("foo", &["vm config memory"]).await;
    assert!(out.contains("128"), "{out}");
}

#[tokio::test]
async fn an_operation_invoked_behind_a_gate_is_refused_as_forbidden() {
    let app = TestApp::spawn().await;
    let mut args = ferromega_api::Args::default();
    args.strings.insert("value".into(), "64".into());
    let mut bar = Session::in_namespace("bar").gated(only("foo"));
    let r = app
        .cp
        .invoke(&mut bar, "vm_config_memory", args.clone())
        .await;
    assert_eq!(
        r.map(|_| ()),
        Err(ferromega_domain::DomainError::Forbidden(
            "forbidden: vm_config_memory in bar".into()
        ))
    );
    let mut foo = Session::in_namespace("foo").gated(only("foo"));
    assert!(app
        .cp
        .invoke(&mut foo, "vm_config_memory", args)
        .await
        .is_ok());
}
