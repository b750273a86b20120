//! What the HTTP layer adds over the domain: `Accept: text/plain` rendering, the
//! `columns`/`filter` query parameters, namespaces in the URL, the command endpoint's
//! batches and namespace, and suggestions.

use ferromega_tests::{args, TestApp, TEST_HOST};

const NO_KVM_TAG: &str = "{\"error\":\"no kvm runtime on this host\"}";

async fn post_text(app: &TestApp, path: &str, body: &str) -> (u16, String, String) {
    let resp = reqwest::Client::new()
        .post(app.url(path))
        .header("accept", "text/plain")
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    (status, ctype, resp.text().await.expect("a body"))
}

#[tokio::test]
async fn accept_text_plain_returns_the_rendered_table() {
    let app = TestApp::spawn().await;
    app.run("vlans add b 11").await;
    app.run("vlans add a 10").await;
    let (status, ctype, text) = post_text(&app, "/api/v1/namespaces/minimega/vlans", "").await;
    assert_eq!(status, 200);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    // Annotated (the default) with the host column, sorted, aligned as minimega does.
    assert_eq!(
        text,
        "host     | alias | vlan\ntesthost | a     | 10\ntesthost | b     | 11"
    );
    // The same text the command endpoint renders.
    let reply = app.run("vlans").await;
    assert_eq!(reply.batches[0].rendered, text);
}

#[tokio::test]
async fn accept_text_plain_follows_the_server_output_flags() {
    let app = TestApp::builder().plain().spawn().await;
    app.run("vlans add a 10").await;
    let (_, _, text) = post_text(&app, "/api/v1/namespaces/minimega/vlans", "").await;
    assert_eq!(text, "alias | vlan\na     | 10");
    app.run(".csv true").await;
    let (_, _, text) = post_text(&app, "/api/v1/namespaces/minimega/vlans", "").await;
    assert_eq!(text, "alias,vlan\na,10");
    let (_, _, text) = post_text(
        &app,
        "/api/v1/echo",
        r#"{"lists":{"args":["hello","world"]}}"#,
    )
    .await;
    assert_eq!(text, "hello world");
}

#[tokio::test]
async fn columns_and_filter_query_parameters_shape_the_table() {
    let app = TestApp::spawn().await;
    app.run("vm launch kvm foo[1-3]").await;
    let http = reqwest::Client::new();
    let resp =
        http.post(app.url(
            "/api/v1/namespaces/minimega/vm/info?columns=name,state,tags&filter=name!%3Dfoo2",
        ))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(resp.status().as_u16(), 200);
    let body: Vec<ferromega_api::Response> = resp.json().await.expect("responses");
    assert_eq!(body.len(), 1);
    assert_eq!(body[0].header, ["name", "state", "tags"]);
    let mut rows = body[0].tabular.clone();
    rows.sort();
    assert_eq!(
        rows,
        vec![
            vec!["foo1".to_string(), "ERROR".into(), NO_KVM_TAG.into()],
            vec!["foo3".to_string(), "ERROR".into(), NO_KVM_TAG.into()],
        ]
    );
    // Prefixes work as in .columns/.filter, and text/plain renders the projection.
    let (status, _, text) = post_text(
        &app,
        "/api/v1/namespaces/minimega/vm/info?columns=na,st&filter=name~3",
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(text, "host     | name | state\ntesthost | foo3 | ERROR");
}

#[tokio::test]
async fn bad_columns_and_filters_in_the_query_are_400() {
    let app = TestApp::spawn().await;
    app.run("vm launch kvm foo").await;
    let http = reqwest::Client::new();
    for (query, want) in [
        ("columns=nosuch", "no such column `nosuch`"),
        ("columns=i", "ambiguous column `i`"),
        ("filter=name", "invalid filter, see help"),
        ("filter=zz%3D1", "no such column `zz`"),
    ] {
        let resp = http
            .post(app.url(&format!("/api/v1/namespaces/minimega/vm/info?{query}")))
            .send()
            .await
            .expect("the server answers");
        assert_eq!(resp.status().as_u16(), 400, "{query}");
        let body: ferromega_api::ErrorBody = resp.json().await.expect("error body");
        assert_eq!(body.errors[0].error, want, "{query}");
    }
}

#[tokio::test]
async fn namespaces_in_the_url_are_isolated() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    c.invoke("vm_config_memory", "a", &args().s("value", "1024").build())
        .await
        .expect("set memory in a");
    for (ns, want) in [("a", "1024"), ("b", "2048"), ("minimega", "2048")] {
        let got = c
            .invoke("vm_config_memory", ns, &args().build())
            .await
            .expect("read memory");
        assert_eq!(got[0].response, want, "memory in {ns}");
    }
    // VMs and aliases too.
    c.invoke("vm_launch", "a", &args().b("kvm").s("name", "va").build())
        .await
        .expect("launch in a");
    c.invoke(
        "vlans_add",
        "a",
        &args().s("alias", "x").s("vlan", "7").build(),
    )
    .await
    .expect("alias in a");
    let info_b = c
        .invoke("vm_info", "b", &args().build())
        .await
        .expect("vm info in b");
    assert!(info_b[0].tabular.is_empty(), "{info_b:?}");
    let vlans_b = c
        .invoke("vlans", "b", &args().build())
        .await
        .expect("vlans in b");
    assert!(vlans_b[0].tabular.is_empty(), "{vlans_b:?}");
    let info_a = c
        .invoke("vm_info", "a", &args().build())
        .await
        .expect("vm info in a");
    assert_eq!(info_a[0].tabular.len(), 1);
    // Global operations ignore namespaces: the namespace list sees both.
    let list = app.out(".annotate false namespace").await;
    assert!(list.contains("\na ") && list.contains("\nb "), "{list}");
}

#[tokio::test]
async fn the_command_endpoint_returns_batches_and_the_active_namespace() {
    let app = TestApp::builder().plain().spawn().await;
    let reply = app.run("echo hi").await;
    assert_eq!(reply.namespace, "minimega");
    assert_eq!(reply.batches.len(), 1);
    assert_eq!(reply.batches[0].rendered, "hi");
    assert_eq!(reply.batches[0].resp[0].host, TEST_HOST);
    assert_eq!(reply.batches[0].resp[0].response, "hi");

    let reply = app.run("namespace foo").await;
    assert_eq!(reply.namespace, "foo");
    assert!(reply.batches.is_empty(), "{reply:?}");
    let reply = app.run_in("foo", "vlans add a 10").await;
    assert_eq!(reply.namespace, "foo");
    assert_eq!(
        app.run_in("foo", "vlans").await.batches[0].rendered,
        "alias | vlan\na     | 10"
    );
    assert_eq!(app.run("vlans").await.batches[0].rendered, "");
    let reply = app.run_in("foo", "clear namespace").await;
    assert_eq!(reply.namespace, "minimega");

    // A blank line or a comment gives no batch; a bad line one batch with the error.
    assert!(app.run("   ").await.batches.is_empty());
    assert!(app.run("# nothing").await.batches.is_empty());
    let reply = app.run("vm bogus").await;
    assert_eq!(reply.batches.len(), 1);
    assert_eq!(
        reply.batches[0].resp[0].error,
        "invalid command: `vm bogus`"
    );
}

#[tokio::test]
async fn the_command_endpoint_streams_one_batch_per_line_of_read() {
    let app = TestApp::builder().plain().spawn().await;
    let path = app.write_file("s.mm", "echo one\nvlans add a 10\necho two\n");
    let reply = app.run(&format!("read {}", path.display())).await;
    let rendered: Vec<&str> = reply.batches.iter().map(|b| b.rendered.as_str()).collect();
    assert_eq!(rendered, ["one", "", "two"]);
}

#[tokio::test]
async fn suggest_completes_words_as_whole_lines() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    assert_eq!(c.suggest("vm con").await.expect("suggest"), ["vm config "]);
    assert_eq!(
        c.suggest("vm st").await.expect("suggest"),
        ["vm start ", "vm stop "]
    );
    let s = c.suggest("vm config mem").await.expect("suggest");
    assert_eq!(s, ["vm config memory "]);
    assert!(c.suggest("zzz").await.expect("suggest").is_empty());
    app.run("namespace alpha echo x").await;
    let s = c.suggest("namespace al").await.expect("suggest");
    assert_eq!(s, ["namespace alpha "]);
}

#[tokio::test]
async fn vm_launch_without_a_kvm_runtime_leaves_the_vm_in_error() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let launched = c
        .invoke(
            "vm_launch",
            "minimega",
            &args().b("kvm").s("name", "foo").build(),
        )
        .await
        .expect("launch errors are not an error, as in minimega");
    assert_eq!(launched.len(), 1);
    assert!(launched[0].error.is_empty());
    // Beyond minimega, the failures come back in the response's data.
    assert_eq!(
        launched[0].data,
        Some(serde_json::json!({"launched": 0, "failed": 1, "total": 1,
            "errors": ["foo: no kvm runtime on this host"]}))
    );
    let info = c
        .invoke("vm_info", "minimega", &args().build())
        .await
        .expect("vm info");
    let t = &info[0];
    let col = |name: &str| t.header.iter().position(|h| h == name).expect(name);
    assert_eq!(t.tabular.len(), 1);
    let row = &t.tabular[0];
    assert_eq!(row[col("name")], "foo");
    assert_eq!(row[col("state")], "ERROR");
    assert_eq!(row[col("tags")], NO_KVM_TAG);
    // Starting it by name relaunches it, which fails the same way.
    let err = c
        .invoke("vm_start", "minimega", &args().s("vm", "foo").build())
        .await
        .expect_err("no runtime to start it");
    assert!(
        err.to_string().contains("no kvm runtime on this host"),
        "{err}"
    );
}
