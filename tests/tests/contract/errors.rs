//! Failing calls: the HTTP status chosen for each kind of error and the JSON error body
//! carrying minimega's text and the host.

use ferromega_api::ErrorBody;
use ferromega_tests::{args, TestApp, TEST_HOST};

use crate::outcome;

/// Calls `op` and returns (status, error texts); panics if it succeeded.
async fn fails(
    app: &TestApp,
    op: &str,
    ns: &str,
    a: ferromega_tests::ArgsBuilder,
) -> (u16, Vec<String>) {
    match outcome(op, app.client.invoke(op, ns, &a.build()).await) {
        Err(e) => e,
        Ok(r) => panic!("{op} should fail, got {r:?}"),
    }
}

/// A raw POST with `body`, returning the status and the decoded error body.
async fn post_raw(app: &TestApp, path: &str, body: &str) -> (u16, ErrorBody) {
    let resp = reqwest::Client::new()
        .post(app.url(path))
        .header("content-type", "application/json")
        .body(body.to_string())
        .send()
        .await
        .expect("the server answers");
    let status = resp.status().as_u16();
    let body: ErrorBody = resp.json().await.expect("an error body");
    (status, body)
}

#[tokio::test]
async fn vm_config_memory_foo_is_400_with_go_parse_text() {
    let app = TestApp::spawn().await;
    let got = fails(
        &app,
        "vm_config_memory",
        "minimega",
        args().s("value", "foo"),
    )
    .await;
    assert_eq!(
        got,
        (
            400,
            vec!["strconv.ParseUint: parsing \"foo\": invalid syntax".to_string()]
        )
    );
    let out = app.out("vm config memory").await;
    assert!(out.ends_with("2048\n"), "memory changed: {out:?}");
}

#[tokio::test]
async fn vm_config_coschedule_out_of_range_is_400() {
    let app = TestApp::spawn().await;
    let got = fails(
        &app,
        "vm_config_coschedule",
        "minimega",
        args().s("value", "99999999999999999999"),
    )
    .await;
    assert_eq!(
        got,
        (
            400,
            vec!["strconv.ParseInt: parsing \"99999999999999999999\": value out of range".into()]
        )
    );
}

#[tokio::test]
async fn vm_launch_all_is_400_reserved_word() {
    let app = TestApp::spawn().await;
    let got = fails(
        &app,
        "vm_launch",
        "minimega",
        args().b("kvm").s("name", "all"),
    )
    .await;
    assert_eq!(
        got,
        (
            400,
            vec!["invalid vm name, `all` is a reserved word".into()]
        )
    );
    let got = fails(
        &app,
        "vm_launch",
        "minimega",
        args().b("kvm").s("name", "foo,[0]"),
    )
    .await;
    assert_eq!(
        got,
        (400, vec!["invalid vm name, `0` is an integer".into()])
    );
    let got = fails(
        &app,
        "vm_launch",
        "minimega",
        args().b("kvm").s("name", "a,a"),
    )
    .await;
    assert_eq!(
        got,
        (400, vec!["`a` is specified twice in VMs to launch".into()])
    );
    let got = fails(
        &app,
        "vm_launch",
        "minimega",
        args().b("kvm").s("name", "0"),
    )
    .await;
    assert_eq!(
        got,
        (400, vec!["invalid number of vms (must be > 0)".into()])
    );
    assert_eq!(app.out("vm info").await, "", "nothing was launched");
}

#[tokio::test]
async fn vm_launch_existing_name_is_409() {
    let app = TestApp::spawn().await;
    app.run("vm launch kvm foo").await;
    let got = fails(
        &app,
        "vm_launch",
        "minimega",
        args().b("kvm").s("name", "foo"),
    )
    .await;
    assert_eq!(got, (409, vec!["vm already exists with name `foo`".into()]));
}

#[tokio::test]
async fn vm_launch_queue_when_empty_is_400() {
    let app = TestApp::spawn().await;
    let got = fails(&app, "vm_launch", "minimega", args()).await;
    assert_eq!(
        got,
        (
            400,
            vec!["namespace must contain at least one queued VM to launch VMs".into()]
        )
    );
}

#[tokio::test]
async fn file_list_outside_the_files_dir_is_400() {
    let app = TestApp::spawn().await;
    for path in ["../etc", "/../etc", "a/../../etc"] {
        let (status, errors) = fails(
            &app,
            "file_list",
            "minimega",
            args().b("list").s("path", path),
        )
        .await;
        assert_eq!(status, 400, "{path}: {errors:?}");
        assert!(
            errors.len() == 1 && errors[0].contains("leaves the files directory"),
            "{path}: {errors:?}"
        );
    }
    let (status, _) = fails(
        &app,
        "file_delete",
        "minimega",
        args().b("delete").s("file", "../x"),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn missing_things_are_404() {
    let app = TestApp::spawn().await;
    let got = fails(&app, "vm_kill", "minimega", args().s("vm", "ghost")).await;
    assert_eq!(got, (404, vec!["vm not found: ghost".into()]));
    let got = fails(
        &app,
        "clear_namespace",
        "minimega",
        args().s("name", "nope"),
    )
    .await;
    assert_eq!(got, (404, vec!["unknown namespace: nope".into()]));
    let got = fails(
        &app,
        "vm_config_restore",
        "minimega",
        args().b("restore").s("name", "x"),
    )
    .await;
    assert_eq!(got, (404, vec!["config x does not exist".into()]));
    let got = fails(
        &app,
        "file_get",
        "minimega",
        args().b("get").s("file", "nothing"),
    )
    .await;
    assert_eq!(got, (404, vec!["file not found".into()]));
    let got = fails(
        &app,
        "ns_add_hosts",
        "minimega",
        args().s("hosts", "elsewhere"),
    )
    .await;
    assert_eq!(got, (404, vec!["unknown host: `elsewhere`".into()]));
}

#[tokio::test]
async fn vm_stop_of_a_dead_vm_is_409_state_error() {
    let app = TestApp::spawn().await;
    app.run("vm launch kvm foo").await;
    let got = fails(&app, "vm_stop", "minimega", args().s("vm", "foo")).await;
    assert_eq!(got, (409, vec!["VM state error: foo".into()]));
}

#[tokio::test]
async fn vlans_errors_are_400_with_minimega_texts() {
    let app = TestApp::spawn().await;
    app.run("vlans add a 10").await;
    let got = fails(
        &app,
        "vlans_add",
        "minimega",
        args().s("alias", "a").s("vlan", "11"),
    )
    .await;
    assert_eq!(got, (400, vec!["alias already in use".into()]));
    let got = fails(
        &app,
        "vlans_add",
        "minimega",
        args().s("alias", "b").s("vlan", "10"),
    )
    .await;
    assert_eq!(got, (400, vec!["vlan already in use".into()]));
    let got = fails(
        &app,
        "vlans_add",
        "minimega",
        args().s("alias", "c").s("vlan", "x"),
    )
    .await;
    assert_eq!(got, (400, vec!["expected integer VLAN".into()]));
    let got = fails(
        &app,
        "vlans_range",
        "minimega",
        args().s("min", "300").s("max", "200"),
    )
    .await;
    assert_eq!(got, (400, vec!["expected min > max".into()]));
}

#[tokio::test]
async fn shell_and_background_with_a_missing_program_give_go_text() {
    let app = TestApp::spawn().await;
    let want = "exec: \"definitelynotarealcommand\": executable file not found in $PATH";
    for op in ["shell", "background"] {
        let got = fails(
            &app,
            op,
            "minimega",
            args().l("command", &["definitelynotarealcommand", "x"]),
        )
        .await;
        assert_eq!(got, (500, vec![want.to_string()]), "{op}");
    }
    let out = app.out("shell definitelynotarealcommand").await;
    assert_eq!(out, format!("E: {want}\n"));
}

#[tokio::test]
async fn shell_with_a_failing_program_gives_its_exit_status() {
    let app = TestApp::spawn().await;
    let got = fails(&app, "shell", "minimega", args().l("command", &["false"])).await;
    assert_eq!(got, (500, vec!["exit status 1".into()]));
}

#[tokio::test]
async fn unknown_fields_in_the_args_body_are_400() {
    let app = TestApp::spawn().await;
    let (status, body) = post_raw(
        &app,
        "/api/v1/namespaces/minimega/vm/config/memory",
        r#"{"strings":{"value":"1024"},"surprise":true}"#,
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body.errors.len(), 1);
    assert_eq!(body.errors[0].host, TEST_HOST);
    assert!(
        body.errors[0].error.contains("unknown field `surprise`"),
        "{body:?}"
    );
    assert!(app.out("vm config memory").await.ends_with("2048\n"));
}

#[tokio::test]
async fn malformed_json_bodies_are_400() {
    let app = TestApp::spawn().await;
    for body in ["{", "\"x\"", r#"{"strings":{"value":1}}"#, "nul"] {
        let (status, errs) =
            post_raw(&app, "/api/v1/namespaces/minimega/vm/config/memory", body).await;
        assert_eq!(status, 400, "{body}: {errs:?}");
        assert_eq!(errs.errors[0].host, TEST_HOST);
    }
    let (status, errs) = post_raw(
        &app,
        "/api/v1/namespaces/minimega/command",
        r#"{"command":"echo hi","extra":1}"#,
    )
    .await;
    assert_eq!(status, 400, "{errs:?}");
    let (status, _) = post_raw(&app, "/api/v1/namespaces/minimega/command", "{}").await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn an_empty_body_means_no_arguments() {
    let app = TestApp::spawn().await;
    let resp = reqwest::Client::new()
        .post(app.url("/api/v1/namespaces/minimega/vm/config/memory"))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    assert_eq!(body[0]["response"], "2048");
}

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let resp = http
        .post(app.url("/api/v1/namespaces/minimega/vm/teleport"))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(resp.status().as_u16(), 404);
    let resp = http
        .get(app.url("/api/v1/namespaces/minimega/vm/info"))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(resp.status().as_u16(), 405);
}

#[tokio::test]
async fn special_operations_report_errors_with_an_error_status() {
    let app = TestApp::spawn().await;
    let (status, errors) = fails(&app, "namespace", "minimega", args().s("name", "a b")).await;
    assert_eq!(status, 400, "{errors:?}");
    let (status, errors) = fails(
        &app,
        "read",
        "minimega",
        args().s("file", "/nonexistent/script"),
    )
    .await;
    assert!(status >= 400, "{errors:?}");
    let (status, errors) = fails(&app, "ns_run", "minimega", args().subcommand("read /x")).await;
    assert_eq!(status, 400, "{errors:?}");
}

#[tokio::test]
async fn read_expands_preprocessor_variables_like_every_command() {
    let app = TestApp::builder().plain().files_env().spawn().await;
    app.write_file("s.mm", "echo from the script\n");
    assert_eq!(app.out("read $files/s.mm").await, "from the script\n");
}
