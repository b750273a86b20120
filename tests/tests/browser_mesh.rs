//! Browser test of the dashboard across the mesh: two ferromega hosts in their own network
//! namespaces (the `mesh_host.rs` cluster), Debian's headless Chromium in the test's own
//! namespace on h1's dashboard. A container that h1 scheduled on h2 shows in h1's VM table
//! with its host, follows its state live (events relayed from h2), its page opens its
//! terminal through the peer link and runs what is typed, and the hosts page lists it
//! under h2, and the graphs of the container and of h2 come from h2. Needs root, iproute2, busybox, cgroups, overlayfs, the container image,
//! Chromium and chromedriver; fails loudly when one is missing.

#![expect(
    clippy::unwrap_used,
    reason = "a test: a failed unwrap is a failed test"
)]

#[path = "mesh_host/cluster.rs"]
#[allow(dead_code, reason = "shared with mesh_host.rs, which uses all of it")]
mod cluster;
#[path = "web_host/driver.rs"]
mod driver;
#[path = "web_host/support.rs"]
mod support;

use cluster::{block, in_private_netns, launch_on, ok, Cluster};
use driver::{js, snap, wait_js, wait_state, Driver, CONNECTED, TERMINAL_TEXT};

#[test]
fn the_dashboard_of_h1_shows_follows_and_opens_a_container_on_h2() {
    if !in_private_netns("the_dashboard_of_h1_shows_follows_and_opens_a_container_on_h2") {
        return;
    }
    let cl = Cluster::start(2);
    let h1 = cl.hosts[0].addr.clone();
    let url = |path: &str| format!("http://{h1}{path}");
    let c = cl.hosts[0].client();
    block(async {
        launch_on(&c, "dash", &[("far", "h2")]).await;
        ok(&c, "dash", "vm start far").await;

        let driver = Driver::start();
        let b = driver.browser().await;
        b.goto(&url("/ns/dash/vms")).await.unwrap();
        wait_state(&b, "far", "RUNNING", 30).await;
        wait_js(
            &b,
            r#"const r = document.querySelector('tr[data-name="far"]');
               return r !== null && r.cells[0].textContent === 'h2';"#,
            10,
            "far's row names h2 as its host",
        )
        .await;
        // Paused and resumed on h2: h1's table follows without a reload.
        ok(&c, "dash", "vm stop far").await;
        wait_state(&b, "far", "PAUSED", 30).await;
        ok(&c, "dash", "vm start far").await;
        wait_state(&b, "far", "RUNNING", 30).await;
        snap(&b, "mesh-vms").await;

        // Its page: the terminal of a container on h2, opened through h1.
        b.goto(&url("/ns/dash/vms/far")).await.unwrap();
        wait_js(&b, CONNECTED, 30, "the terminal connected through h1").await;
        js(
            &b,
            "window.ferromegaTerm.paste('echo from-h1-$((6*7)) on $(hostname)\\r'); return true;",
        )
        .await;
        wait_js(
            &b,
            &format!("return {TERMINAL_TEXT}.includes('from-h1-42 on far');"),
            30,
            "the shell on h2 ran what was typed on h1's page",
        )
        .await;
        snap(&b, "mesh-terminal").await;

        // The hosts page lists far under h2.
        b.goto(&url("/ns/dash/hosts")).await.unwrap();
        wait_js(
            &b,
            r#"const r = document.querySelector('tr[data-host="h2"] td.vms');
               return r !== null && r.textContent.includes('far');"#,
            20,
            "the hosts page lists far under h2",
        )
        .await;
        snap(&b, "mesh-hosts").await;

        // Graphs of far and of h2 itself, drawn on h1 from h2's figures.
        for (query, vm) in [("vm=far", "far"), ("host=h2", "")] {
            b.goto(&url(&format!("/ns/dash/graphs?{query}")))
                .await
                .unwrap();
            let drawn = format!(
                "const g = document.getElementById('graphs'); \
                 return g.dataset.host === 'h2' && g.dataset.vm === '{vm}' \
                 && Number(g.dataset.series) === 4;"
            );
            wait_js(&b, &drawn, 20, &format!("the graphs of {query} from h2")).await;
        }
        snap(&b, "mesh-graphs").await;
        ok(&c, "dash", "clear namespace dash").await;
    });
}
