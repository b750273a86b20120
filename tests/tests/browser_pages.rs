//! Browser tests of the VLANs, files and console pages, and of a user of the auth file
//! limited to one namespace: Debian's headless Chromium (through chromedriver) against a
//! real `ferromega serve`.
//!
//! - VLANs: the `vlans` table of the namespace; the add form posts `vlans add`, and bad
//!   input shows the server's error text.
//! - Files: browse a folder, download a file, upload one into the folder; an upload
//!   outside the files directory is refused with the server's words and writes nothing.
//! - Console: off (404) unless `serve --console`; on, lines run and print like the CLI,
//!   `namespace foo` moves the prompt, errors show as the CLI shows them.
//! - TLS: over https the VM table stays live (its events WebSocket is wss).
//! - Auth: a bad password is refused on the login form; a user of namespace foo logs in,
//!   sees foo's VM live, and gets 403 for namespace bar's page.
//!
//! Screenshots go to `target/browser-artifacts/` (or `$FERROMEGA_ARTIFACTS`).

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "web_host/driver.rs"]
mod driver;
#[path = "web_host/support.rs"]
mod support;

use driver::{click, js, snap, wait_js, wait_state, Driver};
use fantoccini::{Client as Browser, Locator};
use serde_json::Value;
use support::{alice_of_foo, clear_ns, launch_in, ok, Opts, Server};

/// Types `text` into the (cleared) input `css`.
async fn fill(b: &Browser, css: &str, text: &str) {
    let el = b.find(Locator::Css(css)).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

/// Waits until the text of `css` contains `want`.
async fn wait_text(b: &Browser, css: &str, want: &str, secs: u64) {
    let script = format!(
        "const e = document.querySelector({css:?}); \
         return e !== null && e.textContent.includes({want:?});"
    );
    wait_js(b, &script, secs, &format!("{css} shows {want:?}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vlans_page_adds_an_alias_and_shows_the_servers_error() {
    let s = Server::start("fm-vlans-");
    let driver = Driver::start();
    let b = driver.browser().await;
    b.goto(&s.url("/ns/minimega/vlans")).await.unwrap();
    wait_text(&b, "#range", "next", 10).await;

    fill(&b, "#vlan-alias", "dmz").await;
    fill(&b, "#vlan-id", "abc").await;
    click(&b, "#vlan-add-button").await;
    wait_text(&b, "#vlans-error", "expected integer VLAN", 10).await;
    snap(&b, "vlans-error").await;

    fill(&b, "#vlan-alias", "dmz").await;
    fill(&b, "#vlan-id", "101").await;
    click(&b, "#vlan-add-button").await;
    wait_text(&b, r#"tr[data-alias="dmz"] td[data-col="vlan"]"#, "101", 10).await;
    let err = js(
        &b,
        "return document.getElementById('vlans-error').textContent;",
    )
    .await;
    assert_eq!(err, Value::String(String::new()), "the error is cleared");
    // The table is the JSON endpoint's.
    let c = s.client();
    let reply = c.command("minimega", "vlans").await.unwrap();
    let rendered = &reply.batches[0].rendered;
    assert!(
        rendered.contains("dmz") && rendered.contains("101"),
        "{rendered}"
    );
    snap(&b, "vlans").await;
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_page_browses_downloads_and_uploads_inside_the_files_directory() {
    let s = Server::start("fm-files-");
    let files = s.base.join("files");
    std::fs::create_dir_all(files.join("sub")).unwrap();
    std::fs::write(files.join("sub/readme.txt"), "read me\n").unwrap();
    let upload = s.tmp.path().join("notes.txt");
    std::fs::write(&upload, "uploaded from the browser\n").unwrap();

    let driver = Driver::start();
    let b = driver.browser().await;
    b.goto(&s.url("/ns/minimega/files")).await.unwrap();
    wait_js(
        &b,
        r#"return document.querySelector('tr[data-name="sub"] a.dir') !== null;"#,
        10,
        "the folder sub",
    )
    .await;
    click(&b, r#"tr[data-name="sub"] a.dir"#).await;
    wait_js(
        &b,
        r#"return document.querySelector('tr[data-name="readme.txt"] a.file') !== null;"#,
        10,
        "readme.txt in sub",
    )
    .await;
    // The download link gives the file's bytes.
    let got = b
        .execute_async(
            r#"const done = arguments[arguments.length - 1];
               const a = document.querySelector('tr[data-name="readme.txt"] a.file');
               fetch(a.href).then((r) => r.text()).then(done, (e) => done(String(e)));"#,
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(got, Value::String("read me\n".into()));

    // Upload into this folder.
    let input = b.find(Locator::Css("#upload-file")).await.unwrap();
    input
        .send_keys(&upload.display().to_string())
        .await
        .unwrap();
    click(&b, "#upload-button").await;
    wait_js(
        &b,
        r#"return document.querySelector('tr[data-name="notes.txt"]') !== null;"#,
        10,
        "the uploaded file listed",
    )
    .await;
    assert_eq!(
        std::fs::read_to_string(files.join("sub/notes.txt")).unwrap(),
        "uploaded from the browser\n"
    );
    snap(&b, "files").await;

    // An upload outside the files directory: the server's refusal, nothing written.
    let input = b.find(Locator::Css("#upload-file")).await.unwrap();
    input
        .send_keys(&upload.display().to_string())
        .await
        .unwrap();
    fill(&b, "#upload-name", "../../escape.txt").await;
    click(&b, "#upload-button").await;
    wait_text(&b, "#files-error", "path leaves the files directory", 10).await;
    assert!(!s.base.join("escape.txt").exists());
    assert!(!files.join("escape.txt").exists());
    snap(&b, "files-refused").await;
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_page_is_off_by_default_and_runs_commands_when_on() {
    let off = Server::start("fm-console-off-");
    let r = reqwest::get(off.url("/ns/minimega/console")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("id=\"console-off\""));
    drop(off);

    let s = Server::start_opts(
        "fm-console-",
        Opts {
            flags: vec!["--console".into()],
            ..Opts::default()
        },
    );
    let driver = Driver::start();
    let b = driver.browser().await;
    b.goto(&s.url("/ns/minimega/console")).await.unwrap();
    wait_js(
        &b,
        "return document.getElementById('console-line') !== null;",
        10,
        "the console",
    )
    .await;
    let run = |line: &'static str| {
        let b = b.clone();
        async move {
            fill(&b, "#console-line", line).await;
            click(&b, "#console-run").await;
        }
    };
    run("vm config memory 256").await;
    run("vm config memory").await;
    wait_text(&b, "#console-out", "256", 10).await;
    run("vm frobnicate").await;
    wait_text(&b, "#console-out", "Error", 10).await;
    run("namespace foo").await;
    wait_text(&b, "#prompt", "foo$", 10).await;
    run("vm config memory").await;
    // The CLI prints the same for the same line.
    let cli = s
        .client()
        .command("minimega", "vm config memory")
        .await
        .unwrap();
    let rendered = cli.batches[0].rendered.clone();
    assert!(rendered.contains("256"), "{rendered}");
    let out = js(
        &b,
        "return document.getElementById('console-out').textContent;",
    )
    .await;
    let out = out.as_str().unwrap_or_default();
    assert!(
        out.contains(&format!("minimega$ vm config memory\n{rendered}\n")),
        "{out}"
    );
    assert!(out.contains("foo$ vm config memory"), "{out}");
    snap(&b, "console").await;
    b.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_of_one_namespace_logs_in_and_sees_only_it() {
    let s = alice_of_foo("fm-user-").await;
    let admin = s.client();

    let driver = Driver::start();
    let b = driver.browser().await;
    b.goto(&s.url("/ns/foo/vms")).await.unwrap();
    wait_js(
        &b,
        "return document.getElementById('login') !== null;",
        10,
        "the login page",
    )
    .await;
    fill(&b, "#user", "alice").await;
    fill(&b, "#password", "wonder").await;
    click(&b, "#login-submit").await;
    wait_text(&b, "#login-error", "bad user name or password", 10).await;
    snap(&b, "login-refused").await;

    fill(&b, "#user", "alice").await;
    fill(&b, "#password", "wonderland").await;
    click(&b, "#login-submit").await;
    wait_state(&b, "vmfoo", "BUILDING", 20).await;
    let others = js(
        &b,
        r#"return document.querySelectorAll('tr[data-name="vmbar"]').length;"#,
    )
    .await;
    assert_eq!(others, Value::from(0), "bar's VM must not show");
    snap(&b, "user-foo-vms").await;

    b.goto(&s.url("/ns/bar/vms")).await.unwrap();
    wait_text(&b, "#forbidden", "alice may not GET /ns/bar/vms", 10).await;
    snap(&b, "user-bar-forbidden").await;
    b.close().await.unwrap();
    clear_ns(&admin, "foo").await;
    clear_ns(&admin, "bar").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_https_the_vm_table_stays_live() {
    let s = Server::start_opts(
        "fm-https-",
        Opts {
            tls: true,
            ..Opts::default()
        },
    );
    let c = s.client();
    launch_in(&c, "minimega", "vm0").await;
    let driver = Driver::start();
    let b = driver.browser_for_tls().await;
    b.goto(&s.url("/ns/minimega/vms")).await.unwrap();
    assert!(b
        .current_url()
        .await
        .unwrap()
        .as_str()
        .starts_with("https://"));
    wait_state(&b, "vm0", "BUILDING", 20).await;
    wait_text(&b, "#live", "live", 10).await;
    ok(&c, "vm kill vm0").await;
    wait_state(&b, "vm0", "QUIT", 20).await;
    snap(&b, "https-vms").await;
    b.close().await.unwrap();
}
