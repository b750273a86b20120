//! Qos on a port's egress (traffic towards the VM): rate through `tc` tbf; loss and
//! delay through netem where the kernel has it; loss through nftables `numgen` where it
//! does not; delay without netem is refused with the missing feature named.

use ferromega_domain::network::{parse_go_duration, Qos};
use thiserror::Error;
use tokio::io::AsyncWriteExt;

use crate::names::fnv1a;

/// Why qos could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QosError {
    /// Delay needs netem.
    #[error("qos delay needs the kernel's netem queueing discipline (sch_netem, CONFIG_NET_SCH_NETEM), which this kernel does not have")]
    NoNetem,
    /// A tool failed.
    #[error("{tool}: {message}")]
    Tool {
        /// `tc` or `nft`.
        tool: &'static str,
        /// What it printed.
        message: String,
    },
    /// A value the kernel tools cannot take.
    #[error("invalid qos value: {0}")]
    Value(String),
}

async fn run(tool: &'static str, args: &[String], stdin: Option<&str>) -> Result<(), QosError> {
    let fail = |message: String| QosError::Tool { tool, message };
    let mut cmd = tokio::process::Command::new(tool);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => fail(format!("not found in PATH ({e})")),
        _ => fail(e.to_string()),
    })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes())
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    let out = child
        .wait_with_output()
        .await
        .map_err(|e| fail(e.to_string()))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(fail(
            String::from_utf8_lossy(&out.stderr).trim().to_string(),
        ))
    }
}

fn args(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Whether a tc failure says the qdisc kind is missing from the kernel.
fn unknown_qdisc(e: &QosError) -> bool {
    matches!(e, QosError::Tool { message, .. } if message.contains("qdisc kind is unknown"))
}

/// The nftables table holding a port's loss rule.
pub fn nft_table(port: &str) -> String {
    format!("fmqos_{:08x}", fnv1a(port))
}

/// The nft script dropping `loss` percent of the frames the bridges forward to `port`.
pub fn nft_loss_script(port: &str, loss: &str) -> Result<String, QosError> {
    let p: f64 = loss
        .parse()
        .map_err(|_| QosError::Value(format!("loss {loss}")))?;
    let per_10000 = (p * 100.0).round() as u32;
    let t = nft_table(port);
    Ok(format!(
        "table bridge {t} {{}}\ndelete table bridge {t}\ntable bridge {t} {{\n  chain forward {{\n    type filter hook forward priority 0; policy accept;\n    oifname \"{port}\" numgen random mod 10000 < {per_10000} counter drop\n  }}\n}}\n"
    ))
}

/// The tc words of a tbf rate limit, burst as minimega computes it (rate / HZ 100),
/// but never below two full frames.
pub fn tbf_args(port: &str, n: u64, unit: &str) -> Result<Vec<String>, QosError> {
    let mult: u64 = match unit {
        "kbit" => 1_000,
        "mbit" => 1_000_000,
        "gbit" => 1_000_000_000,
        other => return Err(QosError::Value(format!("rate unit {other}"))),
    };
    let burst = (n.saturating_mul(mult) / 100 / 8).max(3028);
    Ok(args(&[
        "qdisc",
        "replace",
        "dev",
        port,
        "root",
        "tbf",
        "rate",
        &format!("{n}{unit}"),
        "burst",
        &burst.to_string(),
        "latency",
        "20ms",
    ]))
}

async fn nft_clear(port: &str) -> Result<(), QosError> {
    let t = nft_table(port);
    let script = format!("table bridge {t} {{}}\ndelete table bridge {t}\n");
    run("nft", &args(&["-f", "-"]), Some(&script)).await
}

async fn tc_clear(port: &str) {
    // "Cannot delete qdisc with handle of zero" just means nothing was there.
    let _ = run("tc", &args(&["qdisc", "del", "dev", port, "root"]), None).await;
}

/// Makes `port`'s egress shaping what `q` says. Rate, loss and delay may be combined:
/// with netem, netem at the root (loss, delay) and tbf beneath it (rate); without netem,
/// tbf at the root for the rate and nftables `numgen` for the loss (delay is refused).
pub async fn apply(port: &str, q: &Qos) -> Result<(), QosError> {
    let rate = match &q.rate {
        Some((n, unit)) => Some(tbf_args(port, *n, unit)?),
        None => None,
    };
    if q.delay.is_some() || q.loss.is_some() {
        let mut netem = args(&[
            "qdisc", "replace", "dev", port, "root", "handle", "1:", "netem",
        ]);
        if let Some(d) = &q.delay {
            let us = parse_go_duration(d)
                .or_else(|| {
                    d.strip_suffix("ms")
                        .and_then(|n| n.parse::<f64>().ok())
                        .map(|m| (m * 1000.0) as i64)
                })
                .ok_or_else(|| QosError::Value(format!("delay {d}")))?;
            netem.extend(args(&["delay", &format!("{us}us")]));
        }
        if let Some(l) = &q.loss {
            netem.extend(args(&["loss", &format!("{l}%")]));
        }
        match run("tc", &netem, None).await {
            Ok(()) => {
                if let Some(r) = rate {
                    run("tc", &beneath_netem(r), None).await?;
                }
                return nft_clear(port).await;
            }
            Err(e) if unknown_qdisc(&e) && q.delay.is_some() => return Err(QosError::NoNetem),
            Err(e) if unknown_qdisc(&e) => {}
            Err(e) => return Err(e),
        }
        // No netem: the loss through nftables on the bridges' forward hook, the rate (if
        // any) through tbf as usual.
        let loss = q.loss.as_deref().unwrap_or("0");
        run(
            "nft",
            &args(&["-f", "-"]),
            Some(&nft_loss_script(port, loss)?),
        )
        .await?;
        match rate {
            Some(r) => run("tc", &r, None).await?,
            None => tc_clear(port).await,
        }
        return Ok(());
    }
    if let Some(r) = rate {
        run("tc", &r, None).await?;
        return nft_clear(port).await;
    }
    tc_clear(port).await;
    nft_clear(port).await
}

/// A root tbf's arguments moved beneath a root netem (`parent 1: handle 2:`).
fn beneath_netem(tbf: Vec<String>) -> Vec<String> {
    let mut out = Vec::with_capacity(tbf.len() + 3);
    for a in tbf {
        if a == "root" {
            out.extend(args(&["parent", "1:", "handle", "2:"]));
        } else {
            out.push(a);
        }
    }
    out
}

/// Removes whatever qos `port` had (before it is deleted).
pub async fn clear(port: &str) {
    tc_clear(port).await;
    let _ = nft_clear(port).await;
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_rate_goes_beneath_netem() {
        let tbf = super::tbf_args("t0", 20, "mbit").unwrap();
        let under = super::beneath_netem(tbf);
        assert_eq!(
            under[..9].join(" "),
            "qdisc replace dev t0 parent 1: handle 2: tbf"
        );
        assert!(!under.contains(&"root".to_string()));
    }

    use super::*;

    #[test]
    fn loss_becomes_a_numgen_rule_per_ten_thousand() {
        let s = nft_loss_script("mega_tap3", "0.50").expect("script");
        assert!(s.contains("oifname \"mega_tap3\" numgen random mod 10000 < 50 counter drop"));
        assert!(s.starts_with(&format!("table bridge {} {{}}", nft_table("mega_tap3"))));
    }

    #[test]
    fn tbf_burst_is_at_least_two_frames() {
        let a = tbf_args("t", 1, "mbit").expect("args");
        assert_eq!(a[6..10], ["rate", "1mbit", "burst", "3028"]);
        let a = tbf_args("t", 1, "gbit").expect("args");
        assert_eq!(a[9], "1250000");
    }
}
