//! Browser test at scale: the VM table in headless Chromium with 1000 VMs — it shows
//! them, follows a launch and a `vm start all` of all 1000 live (events, batched DOM
//! updates), filters them, and empties on `vm flush`. The VMs run on a fake container
//! runtime (a real one would need 1000 guests), behind the real control plane, HTTP API
//! and dashboard. Prints the figures (`1000 VMs: …`) and saves `vms-1000.png`.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "web_host/driver.rs"]
mod driver;
#[path = "web_host/support.rs"]
mod support;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use driver::{js, snap, wait_js, Driver};
use ferromega_client::Client;
use ferromega_domain::backends::{BoxFuture, ExitStatus, Launched};
use ferromega_domain::vm::registry::Vm;
use ferromega_domain::{Backends, ControlPlane, Settings, VmRuntime};
use ferromega_host_system::LinuxSystem;
use serde_json::json;
use tokio::sync::oneshot;

/// A runtime whose VMs are bookkeeping only: launch, pause, resume and kill succeed at
/// once; a VM's "process" ends when it is killed.
#[derive(Default)]
struct FakeRuntime {
    exits: Mutex<Vec<(u64, oneshot::Sender<ExitStatus>)>>,
}

impl VmRuntime for FakeRuntime {
    fn launch<'a>(&'a self, vm: &'a Vm, _dir: &'a Path) -> BoxFuture<'a, Result<Launched, String>> {
        Box::pin(async move {
            let (tx, rx) = oneshot::channel();
            self.exits.lock().unwrap().push((vm.id, tx));
            Ok(Launched {
                pid: std::process::id(),
                exited: rx,
                running: false,
            })
        })
    }

    fn recover<'a>(
        &'a self,
        _vm: &'a Vm,
        _dir: &'a Path,
    ) -> BoxFuture<'a, Result<Launched, String>> {
        Box::pin(async { Err("a fake VM does not survive its server".to_string()) })
    }

    fn resume<'a>(&'a self, _vm: &'a Vm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn pause<'a>(&'a self, _vm: &'a Vm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }

    fn kill<'a>(&'a self, vm: &'a Vm) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            let mut exits = self.exits.lock().unwrap();
            if let Some(i) = exits.iter().position(|(id, _)| *id == vm.id) {
                let (_, tx) = exits.swap_remove(i);
                let _ = tx.send(Ok(()));
            }
            Ok(())
        })
    }

    fn destroy<'a>(&'a self, _vm: &'a Vm, _dir: &'a Path) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async { Ok(()) })
    }
}

/// The control plane with the fake runtime, the API and the dashboard on a loopback port.
async fn serve(base: &Path) -> String {
    let settings = Settings {
        host: "scalehost".into(),
        base: base.to_path_buf(),
        files_dir: base.join("files"),
    };
    let backends = Backends {
        system: Arc::new(LinuxSystem),
        kvm: None,
        container: Some(Arc::new(FakeRuntime::default())),
        network: None,
    };
    let cp = ControlPlane::new(settings, backends);
    let app = ferromega_http::router(cp).merge(ferromega_web::router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

async fn ok(c: &Client, line: &str) {
    let reply = c.command("minimega", line).await.expect("command");
    for r in reply.batches.iter().flat_map(|b| &b.resp) {
        assert!(r.error.is_empty(), "`{line}` failed: {}", r.error);
    }
}

fn rows_are(n: usize) -> String {
    format!("return document.querySelectorAll('#vms tbody tr').length === {n};")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vm_table_stays_live_with_1000_vms() {
    let tmp = tempfile::Builder::new()
        .prefix("fm-scale-")
        .tempdir()
        .unwrap();
    let addr = serve(tmp.path()).await;
    let c = Client::new(&addr);
    let url = format!("http://{addr}/ns/minimega/vms");
    let driver = Driver::start();
    let b = driver.browser().await;
    b.goto(&url).await.unwrap();
    wait_js(
        &b,
        "return document.getElementById('live').textContent === 'live';",
        20,
        "events connected",
    )
    .await;
    js(&b, "window.noReload = 7; return true;").await;

    let t = Instant::now();
    ok(&c, "vm config filesystem /nonexistent-fake-fs").await;
    ok(&c, "vm launch container 1000").await;
    let launched = t.elapsed();
    wait_js(&b, &rows_are(1000), 60, "the table shows 1000 launched VMs").await;
    let shown = t.elapsed();

    let t = Instant::now();
    ok(&c, "vm start all").await;
    let started = t.elapsed();
    wait_js(
        &b,
        "return document.querySelectorAll('#vms td.s-running').length === 1000;",
        60,
        "all 1000 VMs shown RUNNING",
    )
    .await;
    let running = t.elapsed();
    assert_eq!(
        js(&b, "return window.noReload;").await,
        json!(7),
        "the page reloaded"
    );

    let t = Instant::now();
    js(&b, "const f = document.getElementById('filter'); f.value = 'name=vm-99'; f.dispatchEvent(new Event('input')); return true;").await;
    wait_js(
        &b,
        &rows_are(11),
        10,
        "the filter keeps vm-99 and vm-990…999",
    )
    .await;
    let filtered = t.elapsed();
    js(&b, "const f = document.getElementById('filter'); f.value = ''; f.dispatchEvent(new Event('input')); return true;").await;
    wait_js(&b, &rows_are(1000), 10, "all rows back").await;
    snap(&b, "vms-1000").await;

    let t = Instant::now();
    b.goto(&url).await.unwrap();
    wait_js(&b, &rows_are(1000), 60, "a fresh page shows 1000 VMs").await;
    let page = t.elapsed();

    let t = Instant::now();
    ok(&c, "vm kill all").await;
    ok(&c, "vm flush").await;
    wait_js(&b, &rows_are(0), 60, "the table empties after vm flush").await;
    let flushed = t.elapsed();
    eprintln!(
        "1000 VMs: launch {launched:.1?} (table full {shown:.1?} after the launch began); \
         vm start all {started:.1?} (all RUNNING in the table after {running:.1?}); \
         filter {filtered:.1?}; page load to 1000 rows {page:.1?}; kill+flush to empty {flushed:.1?}"
    );
    b.close().await.unwrap();
    drop(driver);
}
