//! Bad input never takes the server down: malformed command lines and odd argument
//! bodies for every operation all get an answer, and the server answers afterwards.
//!
//! Inputs that do take it down today are in `serve.rs` as ignored tests against the
//! real binary (a crash there cannot abort this test process).

use ferromega_api::Args;
use ferromega_command::handlers::operations;
use ferromega_command::pattern::{self, Item};
use ferromega_tests::TestApp;

/// Lines a user can type by mistake or malice.
const BAD_LINES: &[&str] = &[
    "echo \"unterminated",
    "echo 'single",
    "echo bad\\qescape",
    "echo trailing\\",
    "\\",
    "\"",
    "''",
    "#",
    "vm launch kvm foo[1-3",
    "vm launch kvm foo]",
    "vm launch kvm foo[[1]]",
    "vm launch kvm foo[a-b]",
    "vm launch kvm foo[3-1]",
    "vm launch kvm foo[-]",
    "vm launch kvm foo[]",
    "vm launch kvm foo[1-2-3]",
    "vm launch kvm ,,,",
    "vm launch kvm foo[1-2]x",
    "vm launch kvm foo[1-99999999999]",
    "vm launch kvm foo[99999999999]",
    "vm launch kvm foo[-1]",
    "vm launch kvm 0",
    "vm launch kvm -5",
    "vm launch container \"\"",
    "vm launch kvm a/b",
    "vm launch kvm ü[1-2]",
    "vm start foo[1-2147483647",
    "vm start \"\"",
    "vm kill ,",
    "vm stop [",
    "vm tag all \"\" \"\"",
    "vm tag all all x",
    "clear vm tag ] x",
    ".columns \"\" vm info",
    ".columns ,,, vm info",
    ".filter = vm info",
    ".filter \"\" vm info",
    ".filter name~ vm info",
    ".filter !~ vm info",
    ".filter a=b=c vm info",
    ".filter name=foo",
    ".columns name",
    ".columns name .filter nope vm info",
    ".csv maybe",
    ".json true .csv true .headers false vm info",
    ".unalias \"\"",
    ".unalias nosuch",
    "help \"\"",
    "help \" \"",
    "help vm config memory extra words here",
    "vm config memory 99999999999999999999999",
    "vm config memory -1",
    "vm config memory \"\"",
    "vm config coschedule -99999999999999999999",
    "vm config net a,b,c,d,e",
    "vm config net ,,,",
    "vm config net 99999",
    "vm config net \"\"",
    "vm config net 1,zz:zz:zz:zz:zz:zz",
    "vm config net 1,nosuchdriver,e1000",
    "vm config tags \"\"",
    "vm config clone nobody",
    "vm config restore nothing",
    "vlans range 99999999999999999999 1",
    "vlans range -1 -2",
    "vlans range 0 99999",
    "vlans add \"\" \"\"",
    "vlans add x 4096",
    "vlans blacklist 99999999999999999999",
    "ns add-hosts foo[1-3",
    "ns del-hosts ]",
    "ns load nonsense",
    "ns queueing maybe",
    "namespace \"\"",
    "namespace \"a b\"",
    "namespace ../etc",
    "namespace foo[1-2]",
    "clear namespace \"\"",
    "clear namespace \"no such\"",
    "file list ../../etc",
    "file list /../",
    "file get ../x",
    "file delete ../x",
    "file delete [",
    "file delete \"\"",
    "file list \"[[\"",
    "read /nonexistent",
    "read \"\"",
    "read /",
    "write \"\"",
    "write /nonexistent/dir/file",
    "debug memory \"\"",
    "debug cpu stop",
    "quit notanumber",
    "quit -1",
    "echo ${unterminated",
    "echo $",
    "echo ${}",
    "echo file:",
    "vm config cdrom file:nope",
    "ns run read /x",
    "ns run ns run echo x",
    "ns run vm launch kvm x",
    "namespace x namespace y namespace z echo deep",
    "ünïcödé",
    "echo ünïcödé \u{0}",
    ".columns é echo x",
    "\t\t vm \t info \t",
    ".c t .c t .c t .c t .c t .c t echo x",
];

#[tokio::test]
async fn malformed_lines_get_answers_and_the_server_survives() {
    let app = TestApp::builder().plain().spawn().await;
    let mut nested = ".columns name ".repeat(30);
    nested.push_str("vm info");
    let mut filters = ".filter name~a ".repeat(30);
    filters.push_str("vm info");
    let mut lines: Vec<String> = BAD_LINES.iter().map(|s| s.to_string()).collect();
    lines.push(nested);
    lines.push(filters);
    lines.push("echo ".to_string() + &"x ".repeat(10_000));
    lines.push("[".repeat(1000));
    lines.push("vm launch kvm ".to_string() + &"a,".repeat(500) + "a");
    let mut dead = Vec::new();
    for line in &lines {
        if let Err(e) = app.client.command("minimega", line).await {
            dead.push(format!("{line:?}: {e}"));
        }
    }
    assert!(dead.is_empty(), "no answer for:\n{}", dead.join("\n"));
    assert_eq!(app.out("echo still here").await, "still here\n");
}

#[tokio::test]
async fn huge_ranges_are_refused_quickly() {
    let app = TestApp::builder().plain().spawn().await;
    let started = std::time::Instant::now();
    let out = app.out("vm launch kvm foo[1-99999999999]").await;
    assert!(out.starts_with("E: value of out range: "), "{out}");
    assert!(
        started.elapsed().as_secs() < 5,
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(app.out("vm info").await, "");
}

/// Arguments for every key a handler's patterns name, all set to `value`.
fn odd_args(patterns: &[String], value: &str) -> Args {
    let mut a = Args::default();
    for p in patterns.iter().filter_map(|p| pattern::parse(p).ok()) {
        for item in p.items {
            match item {
                Item::Str { key, .. } => {
                    a.strings.insert(key, value.to_string());
                }
                Item::List { key, .. } => {
                    a.lists.insert(key, vec![value.to_string()]);
                }
                Item::Choice { options, .. } => {
                    if let Some(o) = options.first() {
                        a.bools.insert(o.clone(), true);
                    }
                }
                Item::Sub { .. } => a.subcommand = Some(value.to_string()),
                Item::Literal(_) => {}
            }
        }
    }
    a
}

#[tokio::test]
async fn every_operation_answers_odd_arguments() {
    let app = TestApp::builder().plain().spawn().await;
    let values = ["", " ", "[", "../..", "\"", "-1", "all", "\u{0}"];
    let mut dead = Vec::new();
    for (_, h) in operations() {
        // quit would stop the server, which is its job.
        if h.name == "quit" {
            continue;
        }
        let mut bodies = vec![Args::default()];
        bodies.extend(values.iter().map(|v| odd_args(&h.patterns, v)));
        for body in &bodies {
            match app.client.invoke(&h.name, "fuzz", body).await {
                Ok(_) | Err(ferromega_client::ClientError::Api { .. }) => {}
                Err(e) => dead.push(format!("{} {body:?}: {e}", h.name)),
            }
        }
    }
    assert!(dead.is_empty(), "no answer for:\n{}", dead.join("\n"));
    assert_eq!(app.out("echo still here").await, "still here\n");
}
