//! Shared by the browser tests: Debian's Chromium driven through chromedriver (WebDriver,
//! the `fantoccini` crate), with the flags this machine needs, and helpers that poll the
//! page with small scripts. Fails loudly when Chromium or its driver is missing.

#![allow(dead_code, reason = "each test binary uses part of the support module")]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client as Browser, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::support::{free_port, workspace};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// chromedriver on a loopback port; killed on drop, with any Chromium it started.
pub struct Driver {
    child: Child,
    port: u16,
    profile: tempfile::TempDir,
}

impl Driver {
    pub fn start() -> Driver {
        for p in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(p).is_file(),
                "{p} missing: apt-get install chromium chromium-driver (misc/setup does)"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let profile = tempfile::Builder::new()
            .prefix("fm-chromium-")
            .tempdir()
            .unwrap();
        Driver {
            child,
            port,
            profile,
        }
    }

    pub async fn browser(&self) -> Browser {
        self.browser_with(false).await
    }

    /// A browser that accepts a self-signed certificate (a test server with TLS).
    pub async fn browser_for_tls(&self) -> Browser {
        self.browser_with(true).await
    }

    async fn browser_with(&self, insecure_certs: bool) -> Browser {
        // The flags this machine needs: no sandbox as root, and no background
        // connections (the network is closed; they would fail many at a time).
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            &format!("--user-data-dir={}", self.profile.path().display()),
        ];
        let caps = json!({
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            "acceptInsecureCerts": insecure_certs,
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // Chromium outlives a killed chromedriver: end the processes of our profile.
        let marker = format!("--user-data-dir={}", self.profile.path().display());
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(&marker) {
                let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            }
        }
    }
}

pub fn wait_for_log(path: &Path, marker: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.contains(marker) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no `{marker}` in {} after {secs}s",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

pub fn artifacts() -> PathBuf {
    let dir = std::env::var_os("FERROMEGA_ARTIFACTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/browser-artifacts"));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Everything the xterm.js terminal of a VM page holds, as text (a JS expression).
pub const TERMINAL_TEXT: &str = "(() => { const t = window.ferromegaTerm; if (!t) return ''; \
    const b = t.buffer.active; let s = ''; \
    for (let i = 0; i < b.length; i++) s += b.getLine(i).translateToString(true) + '\\n'; \
    return s; })()";

/// Whether the console of a VM page is connected (a script returning a boolean).
pub const CONNECTED: &str = "return document.getElementById('vm').dataset.console === 'connected';";

pub async fn js(b: &Browser, script: &str) -> Value {
    b.execute(script, vec![]).await.expect("script")
}

/// Polls `script` until it returns `true`; panics with `what` and the last value.
pub async fn wait_js(b: &Browser, script: &str, secs: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let v = js(b, script).await;
        if v == Value::Bool(true) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not after {secs}s (last: {v})"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub async fn wait_state(b: &Browser, vm: &str, state: &str, secs: u64) {
    let script = format!(
        r#"const c = document.querySelector('tr[data-name="{vm}"] td[data-col="state"]');
           return c !== null && c.textContent === "{state}";"#
    );
    wait_js(b, &script, secs, &format!("{vm} shown as {state}")).await;
}

/// Clicks the element `css` like a user; a live table may redraw between finding the
/// element and clicking it, so a stale element is looked up again.
pub async fn click(b: &Browser, css: &str) {
    let mut last = String::new();
    for _ in 0..20 {
        match b.find(Locator::Css(css)).await {
            Ok(el) => match el.click().await {
                Ok(()) => return,
                Err(e) => last = e.to_string(),
            },
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("cannot click {css}: {last}");
}

pub async fn snap(b: &Browser, name: &str) {
    let png = b.screenshot().await.unwrap();
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}
