//! DHCP for host taps: busybox `udhcpc` asks for a lease and reports it through a
//! script we write; the address is then added over netlink like a static one.

use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

/// The script udhcpc runs: on a lease, it writes `ip/mask` next to itself.
const SCRIPT: &str =
    "#!/bin/sh\ncase \"$1\" in bound|renew) echo \"$ip/$mask\" > \"$0.lease\";; esac\n";

/// Asks a DHCP server on `iface` for a lease; returns the address and prefix.
pub async fn lease(iface: &str) -> Result<(IpAddr, u8), String> {
    let dir = std::env::temp_dir().join(format!("ferromega-dhcp-{}-{iface}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let script = dir.join("script");
    let result = async {
        std::fs::write(&script, SCRIPT).map_err(|e| e.to_string())?;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| e.to_string())?;
        let run = tokio::process::Command::new("busybox")
            .args([
                "udhcpc", "-f", "-q", "-n", "-t", "4", "-T", "2", "-i", iface, "-s",
            ])
            .arg(&script)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .status();
        match tokio::time::timeout(Duration::from_secs(15), run).await {
            Err(_) => return Err(format!("no DHCP lease on {iface}: timed out")),
            Ok(Err(e)) => return Err(format!("cannot run busybox udhcpc: {e}")),
            Ok(Ok(s)) if !s.success() => return Err(format!("no DHCP lease on {iface}")),
            Ok(Ok(_)) => {}
        }
        let text = std::fs::read_to_string(script.with_extension("lease"))
            .map_err(|_| format!("no DHCP lease on {iface}"))?;
        crate::common::parse_cidr(text.trim())
    }
    .await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}
