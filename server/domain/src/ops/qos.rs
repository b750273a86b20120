//! `qos add` and `clear qos`: loss, delay and rate on VM NICs, with minimega's rules and
//! error texts; the host network applies them (traffic towards the VM is shaped).

use ferromega_api::{Args, Response};
use thiserror::Error;

use crate::network::Qos;
use crate::ops::vm_lifecycle::Action;
use crate::vm::registry::Vm;
use crate::{ControlPlane, DomainError, DomainResult};

/// Why a qos argument is refused; the texts are minimega's.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum QosError {
    /// Loss outside [0, 100) or not a number.
    #[error("invalid loss: `{0}`")]
    Loss(String),
    /// Not a Go duration.
    #[error("invalid duration: `{0}`")]
    Duration(String),
    /// A negative delay.
    #[error("delay cannot be negative")]
    NegativeDelay,
    /// Rate not an integer.
    #[error("invalid rate: `{0}`")]
    Rate(String),
    /// A `shape` setting that is not `rate=`, `loss=` or `delay=`.
    #[error(
        "invalid setting: `{0}` (want rate=<n><kbit|mbit|gbit>, loss=<percent>, delay=<duration>)"
    )]
    Setting(String),
}

/// One `qos add` change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QosChange {
    /// Loss percent as typed.
    Loss(String),
    /// Delay as a Go duration.
    Delay(String),
    /// Rate and unit.
    Rate(u64, String),
    /// Beyond 2.4 (`qos add … shape rate=… loss=… delay=…`): the whole shaping at once,
    /// rate together with loss and delay.
    Shape(Qos),
}

/// Parses the settings of `qos add … shape`: `rate=20mbit`, `loss=5`, `delay=10ms`.
pub fn parse_shape(words: &[String]) -> Result<Qos, QosError> {
    let mut q = Qos::default();
    for w in words {
        let (k, v) = w
            .split_once('=')
            .ok_or_else(|| QosError::Setting(w.clone()))?;
        match k {
            "loss" => q.loss = Some(parse_loss(v)?),
            "delay" => q.delay = Some(parse_delay(v)?.0),
            "rate" => {
                let unit = ["kbit", "mbit", "gbit"]
                    .into_iter()
                    .find(|u| v.ends_with(u))
                    .ok_or_else(|| QosError::Rate(v.to_string()))?;
                let n = v[..v.len() - unit.len()]
                    .parse::<u64>()
                    .map_err(|_| QosError::Rate(v.to_string()))?;
                q.rate = Some((n, unit.to_string()));
            }
            _ => return Err(QosError::Setting(w.clone())),
        }
    }
    if words.is_empty() {
        return Err(QosError::Setting(String::new()));
    }
    Ok(q)
}

/// Parses a loss percentage: 0 ≤ p < 100.
pub fn parse_loss(s: &str) -> Result<String, QosError> {
    match s.parse::<f64>() {
        Ok(p) if (0.0..100.0).contains(&p) => Ok(s.to_string()),
        _ => Err(QosError::Loss(s.to_string())),
    }
}

/// Parses a Go duration (`100ms`, `1.5s`, `1m30s`); a bare number is milliseconds.
/// Returns the text to show and the duration in microseconds.
pub fn parse_delay(s: &str) -> Result<(String, u64), QosError> {
    if let Ok(ms) = s.parse::<f64>() {
        if ms < 0.0 {
            return Err(QosError::NegativeDelay);
        }
        return Ok((format!("{s}ms"), (ms * 1000.0) as u64));
    }
    match crate::network::parse_go_duration(s) {
        None => Err(QosError::Duration(s.to_string())),
        Some(us) if us < 0 => Err(QosError::NegativeDelay),
        Some(us) => Ok((s.to_string(), us as u64)),
    }
}

/// The change `qos add` asks for.
pub fn parse_change(args: &Args) -> Result<QosChange, QosError> {
    if args.flag("shape") {
        return parse_shape(args.list("setting")).map(QosChange::Shape);
    }
    if args.flag("loss") {
        return parse_loss(args.string("percent").unwrap_or_default()).map(QosChange::Loss);
    }
    if args.flag("delay") {
        return parse_delay(args.string("duration").unwrap_or_default())
            .map(|(d, _)| QosChange::Delay(d));
    }
    let bw = args.string("bw").unwrap_or_default();
    let n = bw
        .parse::<u64>()
        .map_err(|_| QosError::Rate(bw.to_string()))?;
    let unit = ["kbit", "mbit", "gbit"]
        .into_iter()
        .find(|u| args.flag(u))
        .unwrap_or("mbit");
    Ok(QosChange::Rate(n, unit.to_string()))
}

/// `old` with `change` applied, minimega 2.4's way: rate and loss/delay exclude each other
/// (only `shape` sets them together).
pub fn merge(old: &Qos, change: &QosChange) -> Qos {
    match change {
        QosChange::Shape(q) => q.clone(),
        QosChange::Rate(n, u) => Qos {
            rate: Some((*n, u.clone())),
            ..Qos::default()
        },
        QosChange::Loss(l) => Qos {
            rate: None,
            loss: Some(l.clone()),
            delay: old.delay.clone(),
        },
        QosChange::Delay(d) => Qos {
            rate: None,
            loss: old.loss.clone(),
            delay: Some(d.clone()),
        },
    }
}

impl ControlPlane {
    pub(crate) async fn qos_add(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let iface = args.string("interface").unwrap_or_default().to_string();
        if iface == "all" {
            return Err(DomainError::invalid("wildcard qos not implemented"));
        }
        let change = parse_change(args).map_err(DomainError::invalid)?;
        let target = args.string("vm").unwrap_or_default();
        let ns_owned = ns.to_string();
        self.for_targets(ns, target, async move |cp: &ControlPlane, vm: Vm, _| {
            let i = tap_index(&iface, &vm)?;
            let new = merge(&vm.qos.get(&i).cloned().unwrap_or_default(), &change);
            cp.qos_set(&ns_owned, &vm, i, new).await?;
            Ok(Action::Done)
        })
        .await
    }

    pub(crate) async fn clear_qos(&self, ns: &str, args: &Args) -> DomainResult<Response> {
        let target = args.string("vm").unwrap_or_default();
        let which = args.string("tap").unwrap_or("all").to_string();
        let ns_owned = ns.to_string();
        self.for_targets(ns, target, async move |cp: &ControlPlane, vm: Vm, _| {
            let indices: Vec<usize> = if which == "all" {
                vm.qos.keys().copied().collect()
            } else {
                vec![tap_index(&which, &vm)?]
            };
            for i in indices {
                cp.qos_set(&ns_owned, &vm, i, Qos::default()).await?;
            }
            Ok(Action::Done)
        })
        .await
    }

    /// Applies `qos` to NIC `i` of `vm` (when its port is on the host) and records it.
    async fn qos_set(&self, ns: &str, vm: &Vm, i: usize, qos: Qos) -> Result<(), String> {
        let tap = vm.taps.get(i).cloned().unwrap_or_default();
        if let Some(net) = self.inner.backends.network.clone() {
            if !tap.is_empty() && net.interface_exists(&tap) {
                net.qos_apply(&tap, &qos).await?;
            }
        }
        let stored = self.with_ns(ns, |n| {
            let v = n.vms.get_mut(&vm.id)?;
            if qos.is_empty() {
                v.qos.remove(&i);
            } else {
                v.qos.insert(i, qos);
            }
            Some(v.clone())
        });
        if let Some(v) = stored {
            self.persist(&v);
        }
        Ok(())
    }
}

/// The NIC index of a qos command: `invalid tap index specified: N` when out of range.
fn tap_index(arg: &str, vm: &Vm) -> Result<usize, String> {
    arg.parse::<usize>()
        .ok()
        .filter(|i| *i < vm.config.networks.len())
        .ok_or_else(|| format!("invalid tap index specified: {arg}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_sets_rate_loss_and_delay_together_and_refuses_junk() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let q = parse_shape(&w(&["rate=20mbit", "loss=5", "delay=10ms"])).unwrap();
        assert_eq!(q.rate, Some((20, "mbit".to_string())));
        assert_eq!(q.loss.as_deref(), Some("5"));
        assert_eq!(q.delay.as_deref(), Some("10ms"));
        assert_eq!(merge(&Qos::default(), &QosChange::Shape(q.clone())), q);
        assert!(parse_shape(&w(&["rate=20"])).is_err());
        assert!(parse_shape(&w(&["loss=150"])).is_err());
        assert!(parse_shape(&w(&["jitter=5"])).is_err());
        assert!(parse_shape(&w(&[])).is_err());
    }

    #[test]
    fn loss_must_be_a_percentage_below_100() {
        assert_eq!(parse_loss("0.50"), Ok("0.50".into()));
        assert_eq!(
            parse_loss("150").map_err(|e| e.to_string()),
            Err("invalid loss: `150`".into())
        );
        assert!(parse_loss("x").is_err());
    }

    #[test]
    fn delays_are_go_durations_or_milliseconds() {
        assert_eq!(parse_delay("100ms"), Ok(("100ms".into(), 100_000)));
        assert_eq!(parse_delay("1m30s").map(|d| d.1), Ok(90_000_000));
        assert_eq!(parse_delay("20").map(|d| d.0), Ok("20ms".into()));
        assert_eq!(
            parse_delay("100xbit").map_err(|e| e.to_string()),
            Err("invalid duration: `100xbit`".into())
        );
        assert_eq!(parse_delay("-5ms"), Err(QosError::NegativeDelay));
    }

    #[test]
    fn rate_and_loss_delay_replace_each_other_as_in_2_4() {
        let q = merge(&Qos::default(), &QosChange::Loss("5".into()));
        let q = merge(&q, &QosChange::Delay("100ms".into()));
        assert_eq!(q.to_string(), "loss 5 delay 100ms");
        let q = merge(&q, &QosChange::Rate(1, "mbit".into()));
        assert_eq!(q.to_string(), "rate 1mbit");
        let q = merge(&q, &QosChange::Delay("200ms".into()));
        assert_eq!(q.to_string(), "delay 200ms");
    }
}
