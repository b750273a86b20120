//! NIC bandwidth: tap byte counters turned into MB/s — over `vm top`'s window, and every
//! 5 s in the background for `host`'s rx/tx (host rx is the VM's tx and vice versa).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::network::Counters;
use crate::vm::registry::Vm;
use crate::{lock, ControlPlane};

/// How often the background sampler reads the counters.
const PERIOD: Duration = Duration::from_secs(5);

/// Bytes per MB in minimega's figures (MiB).
const MB: f64 = 1024.0 * 1024.0;

/// The latest bandwidth figures of every VM NIC, as the sampler last measured them.
#[derive(Debug, Default)]
pub(crate) struct Bandwidth {
    /// Whether the sampler runs.
    started: bool,
    /// VM receive and transmit rates, MB/s, by tap.
    rates: HashMap<String, (f64, f64)>,
}

impl ControlPlane {
    /// Counters of the live NICs of `vms`, by tap.
    pub(crate) fn nic_counters(&self, vms: &[Vm]) -> HashMap<String, Counters> {
        let Some(net) = self.inner.backends.network.clone() else {
            return HashMap::new();
        };
        vms.iter()
            .flat_map(|v| v.taps.iter())
            .filter(|t| !t.is_empty())
            .filter_map(|t| net.counters(t).map(|c| (t.clone(), c)))
            .collect()
    }

    /// A VM's receive (`rx`) or transmit rate over `secs` between two samples, `%.2f` MB/s.
    pub(crate) fn nic_rate(
        &self,
        vm: &Vm,
        before: &HashMap<String, Counters>,
        after: &HashMap<String, Counters>,
        secs: f64,
        rx: bool,
    ) -> String {
        let bytes: u64 = vm
            .taps
            .iter()
            .filter_map(|t| Some((before.get(t)?, after.get(t)?)))
            .map(|(b, a)| match rx {
                // What the host sends on the tap, the VM receives.
                true => a.tx_bytes.saturating_sub(b.tx_bytes),
                false => a.rx_bytes.saturating_sub(b.rx_bytes),
            })
            .sum();
        format!("{:.2}", bytes as f64 / MB / secs.max(1e-9))
    }

    /// Starts the background sampler once (on the first launch with a network).
    pub(crate) fn bandwidth_sampler_start(&self) {
        if self.inner.backends.network.is_none() {
            return;
        }
        {
            let mut st = lock(&self.inner.net);
            if st.bandwidth.started {
                return;
            }
            st.bandwidth.started = true;
        }
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            let mut last: HashMap<String, Counters> = HashMap::new();
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let cp = ControlPlane { inner };
                let now = cp.nic_counters(&cp.all_vms_snapshot());
                let secs = PERIOD.as_secs_f64();
                let rates = now
                    .iter()
                    .filter_map(|(t, a)| {
                        let b = last.get(t)?;
                        let rx = a.tx_bytes.saturating_sub(b.tx_bytes) as f64 / MB / secs;
                        let tx = a.rx_bytes.saturating_sub(b.rx_bytes) as f64 / MB / secs;
                        Some((t.clone(), (rx, tx)))
                    })
                    .collect();
                lock(&cp.inner.net).bandwidth.rates = rates;
                last = now;
                drop(cp);
                tokio::time::sleep(PERIOD).await;
            }
        });
    }

    /// The host's rx and tx: the sums of every VM NIC's latest rates, MB/s.
    pub(crate) fn host_bandwidth(&self) -> (f64, f64) {
        let st = lock(&self.inner.net);
        st.bandwidth
            .rates
            .values()
            .fold((0.0, 0.0), |(r, t), (a, b)| (r + a, t + b))
    }

    /// Every VM on this host, across namespaces.
    fn all_vms_snapshot(&self) -> Vec<Vm> {
        let all: Vec<_> = lock(&self.inner.namespaces).values().cloned().collect();
        all.iter()
            .flat_map(|n| lock(n).vms.values().cloned().collect::<Vec<_>>())
            .collect()
    }
}
