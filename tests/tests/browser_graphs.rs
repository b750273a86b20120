//! Browser tests of the graphs page and of auth: Debian's headless Chromium (through
//! chromedriver) against a real `ferromega serve` with a real TCG guest.
//!
//! - The graphs page draws the VM's series with uPlot (charts with points, non-blank
//!   canvases), from `GET /api/v1/namespaces/{ns}/graphs`.
//! - With `serve --auth`, a page and an API call without a token are refused (401, the
//!   browser sees the login page, not the VM table); with the token they succeed, and a
//!   page opened once with `?token=` sets the cookie that lets the browser in.
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

use std::time::Duration;

use driver::{js, snap, wait_js, wait_state, Driver};
use serde_json::{json, Value};
use support::{ok, Server};

/// Whether every uPlot canvas of the graphs page has painted pixels.
const CHARTS_DRAWN: &str = r#"
    const box = document.getElementById('graphs');
    const cs = document.querySelectorAll('#graphs canvas');
    if (!box || Number(box.dataset.points) < 3 || Number(box.dataset.series) < 4) return false;
    if (cs.length < 3) return false;
    for (const c of cs) {
        if (!c.width || !c.height) return false;
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let painted = 0;
        for (let i = 3; i < d.length; i += 4) if (d[i] !== 0) painted++;
        if (painted < 50) return false;
    }
    return true;"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn graphs_page_draws_a_running_vms_series() {
    let s = Server::start("fm-graphs-");
    s.configure_guest().await;
    let c = s.client();
    ok(&c, "vm launch kvm vm0").await;
    ok(&c, "vm start vm0").await;
    tokio::time::sleep(Duration::from_secs(4)).await;

    // The endpoint: one point a second for the VM and the host, a minute's average.
    let g: Value = reqwest::get(s.url("/api/v1/namespaces/minimega/graphs?vm=vm0"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(g["vm"], json!("vm0"));
    assert_eq!(g["step"], json!(1));
    let n = g["series"]["time"].as_array().unwrap().len();
    assert!(n >= 2, "too few points: {g}");
    assert_eq!(g["series"]["cpu"].as_array().unwrap().len(), n);
    let mem_max = g["series"]["mem"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_f64)
        .fold(0.0, f64::max);
    assert!(mem_max > 1.0, "QEMU's resident memory is missing: {g}");
    let day: Value = reqwest::get(s.url("/api/v1/namespaces/minimega/graphs?range=24h"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(day["step"], json!(60));
    assert!(!day["series"]["time"].as_array().unwrap().is_empty());
    let bad = reqwest::get(s.url("/api/v1/namespaces/minimega/graphs?range=1y"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let gone = reqwest::get(s.url("/api/v1/namespaces/minimega/graphs?vm=nope"))
        .await
        .unwrap();
    assert_eq!(gone.status(), 400);

    let driver = Driver::start();
    let b = driver.browser().await;
    b.goto(&s.url("/ns/minimega/graphs?vm=vm0")).await.unwrap();
    wait_js(&b, CHARTS_DRAWN, 20, "the VM's charts are drawn").await;
    assert_eq!(
        js(&b, "return document.getElementById('graphs').dataset.vm;").await,
        json!("vm0")
    );
    snap(&b, "graphs").await;
    // The host's figures, picked in the page.
    js(
        &b,
        "const v = document.getElementById('graph-vm'); v.value = ''; \
         v.dispatchEvent(new Event('change')); return true;",
    )
    .await;
    wait_js(
        &b,
        "return document.getElementById('graphs').dataset.vm === '';",
        10,
        "the host's charts",
    )
    .await;
    wait_js(&b, CHARTS_DRAWN, 20, "the host's charts are drawn").await;
    snap(&b, "graphs-host").await;
    b.close().await.unwrap();
    drop(driver);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_a_page_without_a_token_is_refused() {
    let s = Server::start_with("fm-auth-", true);
    let token = s.token.clone().unwrap();
    s.configure_guest().await;
    let c = s.client();
    ok(&c, "vm launch kvm vm0").await;

    // Over HTTP: a page and an API call, without and with the token.
    let http = reqwest::Client::new();
    for path in ["/ns/minimega/vms", "/api/v1/namespaces/minimega/graphs"] {
        let r = http.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a token");
        let r = http
            .get(s.url(path))
            .bearer_auth("not-the-token")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with a wrong token");
        let r = http
            .get(s.url(path))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path} with the token");
    }
    let r = http
        .post(s.url("/api/v1/namespaces/minimega/vm/info"))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // The CLI's client without the token is refused too.
    let anon = ferromega_client::Client::new(&s.addr);
    assert!(anon.command("minimega", "vm info").await.is_err());

    let driver = Driver::start();
    let b = driver.browser().await;
    b.goto(&s.url("/ns/minimega/vms")).await.unwrap();
    wait_js(
        &b,
        "return document.getElementById('login') !== null \
         && document.getElementById('vms') === null;",
        10,
        "the login page instead of the VM table",
    )
    .await;
    snap(&b, "auth-refused").await;
    // The token once in the URL: the cookie is set and the page shows the live table.
    b.goto(&s.url(&format!("/ns/minimega/vms?token={token}")))
        .await
        .unwrap();
    wait_state(&b, "vm0", "BUILDING", 20).await;
    let url = b.current_url().await.unwrap();
    assert!(
        !url.as_str().contains("token="),
        "token left in the URL: {url}"
    );
    b.goto(&s.url("/ns/minimega/graphs")).await.unwrap();
    wait_js(
        &b,
        "return document.getElementById('graphs') !== null;",
        10,
        "the graphs page with the cookie",
    )
    .await;
    b.goto(&s.url("/ns/minimega/vms")).await.unwrap();
    wait_state(&b, "vm0", "BUILDING", 20).await;
    snap(&b, "auth-vms").await;
    b.close().await.unwrap();
    drop(driver);
}
