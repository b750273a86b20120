//! Browser test: Debian's headless Chromium (through chromedriver) against a real server
//! with real TCG guests — the VM table lists a VM and follows its state without a reload
//! (pushed by the events WebSocket) when its buttons are clicked and when the API changes
//! it; the launch form launches; the VM page's noVNC console shows the booted guest (a
//! non-blank canvas) and comes back after the VM restarts; the other pages draw. Saves a
//! screenshot of each page in `target/browser-artifacts/` (or `$FERROMEGA_ARTIFACTS`).
//! Needs chromium, chromium-driver, QEMU, the guest image and the web assets (`npm ci`
//! in web/); fails loudly when any is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "web_host/driver.rs"]
mod driver;
#[path = "web_host/support.rs"]
mod support;

use std::time::Duration;

use driver::{
    click, js, snap, wait_for_log, wait_js, wait_state, Driver, CONNECTED, TERMINAL_TEXT,
};
use fantoccini::Locator;
use serde_json::json;
use support::{container_image, ok, Server};

/// Whether the noVNC canvas holds more than one colour.
const CANVAS_NOT_BLANK: &str = r#"
    const c = document.querySelector('#screen canvas');
    if (!c || !c.width || !c.height || c.clientWidth < 100 || c.clientHeight < 100) return false;
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 4; i < d.length; i += 4)
        if (d[i] !== d[0] || d[i + 1] !== d[1] || d[i + 2] !== d[2]) return true;
    return false;"#;

/// A checksum of the noVNC canvas's pixels.
const CANVAS_SUM: &str = r#"
    const c = document.querySelector('#screen canvas');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let h = 0;
    for (let i = 0; i < d.length; i += 4) h = (h * 31 + d[i] + d[i + 1] * 7 + d[i + 2] * 13) | 0;
    return h;"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboard_in_headless_chromium_follows_vms_live_and_shows_the_vnc_console() {
    let s = Server::start("fm-browser-");
    s.configure_guest().await;
    let c = s.client();
    let rfb = reqwest::get(s.url("/static/novnc/core/rfb.js"))
        .await
        .unwrap();
    assert_eq!(
        rfb.status(),
        200,
        "noVNC is not embedded in the server: run `npm ci` in web/, then rebuild"
    );
    ok(&c, "vm launch kvm vm0").await;

    let driver = Driver::start();
    let b = driver.browser().await;

    // The VM table lists vm0 and follows it without a reload.
    b.goto(&s.url("/ns/minimega/vms")).await.unwrap();
    wait_state(&b, "vm0", "BUILDING", 20).await;
    js(&b, "window.noReload = 42; return true;").await;
    click(&b, r#"tr[data-name="vm0"] button[data-act="start"]"#).await;
    wait_state(&b, "vm0", "RUNNING", 20).await;
    click(&b, r#"tr[data-name="vm0"] button[data-act="stop"]"#).await;
    wait_state(&b, "vm0", "PAUSED", 20).await;
    // A change made through the API (another user, a script) is pushed too.
    ok(&c, "vm start vm0").await;
    wait_state(&b, "vm0", "RUNNING", 20).await;
    assert_eq!(
        js(&b, "return window.noReload;").await,
        json!(42),
        "the page reloaded"
    );
    snap(&b, "vms").await;

    // The launch form launches (and starts) a VM; it appears live.
    let name = b
        .find(Locator::Css("#launch-form input[name=name]"))
        .await
        .unwrap();
    name.send_keys("vm1").await.unwrap();
    click(&b, "#launch-button").await;
    wait_state(&b, "vm1", "RUNNING", 60).await;
    assert_eq!(
        js(&b, "return window.noReload;").await,
        json!(42),
        "the page reloaded"
    );
    // Sorting and filtering happen in the page.
    js(&b, "const f = document.getElementById('filter'); f.value = 'name=vm1'; f.dispatchEvent(new Event('input')); return true;").await;
    wait_js(
        &b,
        "return document.querySelectorAll('#vms tbody tr').length === 1;",
        5,
        "filter keeps only vm1",
    )
    .await;
    js(&b, "const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input')); return true;").await;
    click(&b, r#"#vms th[data-col="name"]"#).await;
    click(&b, r#"#vms th[data-col="name"]"#).await;
    wait_js(
        &b,
        "const r = document.querySelectorAll('#vms tbody tr'); return r.length === 2 && r[0].dataset.name === 'vm1';",
        5,
        "sorted by name, descending",
    )
    .await;
    click(&b, "#view-top").await;
    wait_js(
        &b,
        "return document.querySelector('#vms thead th[data-col=\"cpu\"]') !== null && document.querySelectorAll('#vms tbody tr').length === 2;",
        20,
        "the vm top view lists both VMs",
    )
    .await;
    snap(&b, "vms-top").await;

    // The VM page: noVNC connects through a ticket and shows the booted guest's screen;
    // keys typed into it reach the guest's shell on tty1, whose echo comes back.
    wait_for_log(&s.base.join("0/qemu.log"), "ferromega-guest: ready", 120);
    b.goto(&s.url("/ns/minimega/vms/vm0")).await.unwrap();
    wait_js(&b, CONNECTED, 30, "noVNC connected").await;
    wait_js(&b, CANVAS_NOT_BLANK, 90, "the noVNC canvas shows the guest").await;
    js(
        &b,
        &format!("window.before = (() => {{ {CANVAS_SUM} }})(); return true;"),
    )
    .await;
    js(
        &b,
        r#"for (const ch of 'echo typed-through-novnc') window.ferromegaRfb.sendKey(ch.charCodeAt(0));
           window.ferromegaRfb.sendKey(0xff0d); return true;"#,
    )
    .await;
    wait_js(
        &b,
        &format!("return (() => {{ {CANVAS_SUM} }})() !== window.before;"),
        30,
        "the typed command shows on the canvas",
    )
    .await;
    wait_js(
        &b,
        "const i = document.getElementById('shot'); return i.src.startsWith('data:image/png') && i.naturalWidth > 0;",
        30,
        "the screenshot is shown",
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await; // let the echo reach the canvas
    snap(&b, "vm").await;

    // The VM restarts: the console drops and noVNC comes back by itself.
    ok(&c, "vm kill vm0").await;
    wait_js(
        &b,
        "return document.getElementById('vm').dataset.console !== 'connected';",
        20,
        "the console noticed the VM's death",
    )
    .await;
    ok(&c, "vm start vm0").await;
    wait_js(&b, CONNECTED, 30, "noVNC reconnected after the restart").await;
    wait_js(
        &b,
        CANVAS_NOT_BLANK,
        90,
        "the canvas shows the restarted guest",
    )
    .await;

    // A container's page: xterm.js over the console WebSocket shows init's output (the
    // scrollback replayed to a new viewer), and what is typed reaches its shell.
    ok(
        &c,
        &format!("vm config filesystem {}", container_image().display()),
    )
    .await;
    ok(&c, "vm launch container ct0").await;
    ok(&c, "vm start ct0").await;
    b.goto(&s.url("/ns/minimega/vms/ct0")).await.unwrap();
    wait_js(&b, CONNECTED, 30, "the terminal connected").await;
    wait_js(
        &b,
        &format!("return {TERMINAL_TEXT}.includes('ferromega-container: ready');"),
        30,
        "the terminal shows init's output",
    )
    .await;
    js(
        &b,
        "window.ferromegaTerm.paste('echo typed-in-$((6*7))\\r'); return true;",
    )
    .await;
    wait_js(
        &b,
        &format!("return {TERMINAL_TEXT}.includes('typed-in-42');"),
        30,
        "the shell ran what was typed",
    )
    .await;
    snap(&b, "terminal").await;

    // The other pages draw.
    b.goto(&s.url("/ns/minimega/screenshots")).await.unwrap();
    wait_js(
        &b,
        r#"const i = document.querySelector('img[data-shot="vm1"]'); return i !== null && i.src.startsWith('data:image/png');"#,
        30,
        "the screenshots grid shows vm1",
    )
    .await;
    snap(&b, "screenshots").await;
    b.goto(&s.url("/ns/minimega/hosts")).await.unwrap();
    wait_js(
        &b,
        "return document.querySelectorAll('#hosts tbody tr').length === 1;",
        20,
        "the hosts table has this host",
    )
    .await;
    snap(&b, "hosts").await;
    b.goto(&s.url("/namespaces")).await.unwrap();
    wait_js(
        &b,
        r#"const r = document.querySelector('#namespaces tr[data-ns="minimega"]'); return r !== null && r.cells[1].textContent === '3';"#,
        20,
        "the namespaces table counts minimega's three VMs",
    )
    .await;
    snap(&b, "namespaces").await;
    b.goto(&s.url("/api")).await.unwrap();
    wait_js(
        &b,
        "return document.querySelectorAll('#operations details').length > 100;",
        20,
        "the API page lists the operations",
    )
    .await;
    snap(&b, "api").await;

    b.close().await.unwrap();
    drop(driver);
}
