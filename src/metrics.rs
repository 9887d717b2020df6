//! Owns the Prometheus registry and every metric Guardian exports. Names and
//! labels are fixed by SPEC (dashboards and alert rules read them); the
//! environment is a constant label on every series.

mod guard;
mod notify;
mod state;

use std::collections::HashMap;

use prometheus::{Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::config::{Check, Config};
use crate::probe::{ProbeEvent, ProbeObserver};

pub use guard::GuardMetrics;
pub use notify::{NotifyMetrics, format_label};
pub use state::Sources;
use state::StateGauges;

pub struct Metrics {
    registry: Registry,
    probe_duration: HistogramVec,
    probe_ttfb: HistogramVec,
    probes_total: IntCounterVec,
    probes_skipped: IntCounterVec,
    check_budget: GaugeVec,
    check_interval: GaugeVec,
    last_probe: GaugeVec,
    check_up: GaugeVec,
    state: StateGauges,
    pub guard: GuardMetrics,
    pub notify: NotifyMetrics,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot register metric: {0}")]
pub struct MetricsError(#[from] prometheus::Error);

impl Metrics {
    pub fn new(config: &Config) -> Result<Self, MetricsError> {
        let labels = HashMap::from([("environment".to_string(), config.environment.as_str().to_string())]);
        let registry = Registry::new_custom(None, Some(labels))?;
        let buckets = buckets(&config.checks);
        let m = Self {
            probe_duration: HistogramVec::new(
                HistogramOpts::new("guardian_probe_duration_seconds", "Probe latency, request start to last body byte")
                    .buckets(buckets),
                &["check"],
            )?,
            // The general ladder only: budget buckets belong to the latency that is judged.
            probe_ttfb: HistogramVec::new(
                HistogramOpts::new("guardian_probe_first_byte_seconds", "Probe time to the response head")
                    .buckets(LADDER.to_vec()),
                &["check"],
            )?,
            probes_total: IntCounterVec::new(
                Opts::new("guardian_probes_total", "Finished probes by outcome"),
                &["check", "outcome"],
            )?,
            probes_skipped: IntCounterVec::new(
                Opts::new(
                    "guardian_probes_skipped_total",
                    "Probes not sent: host over its rate limit, or too many in flight",
                ),
                &["check", "reason"],
            )?,
            check_budget: GaugeVec::new(
                Opts::new("guardian_check_budget_seconds", "Latency budget of the check"),
                &["check"],
            )?,
            check_interval: GaugeVec::new(
                Opts::new("guardian_check_interval_seconds", "How often the check is probed"),
                &["check"],
            )?,
            last_probe: GaugeVec::new(
                Opts::new(
                    "guardian_check_last_probe_timestamp_seconds",
                    "When the check's last probe finished (unix seconds); 0 before the first",
                ),
                &["check"],
            )?,
            check_up: GaugeVec::new(
                Opts::new("guardian_check_up", "1 when the check is good now, 0 when bad"),
                &["check"],
            )?,
            state: StateGauges::register(&registry)?,
            guard: GuardMetrics::register(&registry, config)?,
            notify: NotifyMetrics::register(&registry, config)?,
            registry,
        };
        m.register_all()?;
        m.seed(&config.checks);
        Ok(m)
    }

    fn register_all(&self) -> Result<(), prometheus::Error> {
        self.registry.register(Box::new(self.probe_duration.clone()))?;
        self.registry.register(Box::new(self.probe_ttfb.clone()))?;
        self.registry.register(Box::new(self.probes_total.clone()))?;
        self.registry.register(Box::new(self.probes_skipped.clone()))?;
        self.registry.register(Box::new(self.check_budget.clone()))?;
        self.registry.register(Box::new(self.check_interval.clone()))?;
        self.registry.register(Box::new(self.last_probe.clone()))?;
        self.registry.register(Box::new(self.check_up.clone()))
    }

    /// Every series exists from the start, so rate() and absent() behave.
    fn seed(&self, checks: &[Check]) {
        for c in checks {
            self.check_budget.with_label_values(&[&c.name]).set(c.budget.as_secs_f64());
            self.check_interval.with_label_values(&[&c.name]).set(c.interval.as_secs_f64());
            self.last_probe.with_label_values(&[&c.name]).set(0.0);
            for o in crate::probe::Outcome::ALL {
                self.probes_total.with_label_values(&[&c.name, o.code()]);
            }
            self.probe_duration.with_label_values(&[&c.name]);
            self.check_up.with_label_values(&[&c.name]).set(0.0);
        }
    }

    /// The text exposition, with state gauges refreshed from the board.
    pub fn render(&self, sources: &Sources<'_>) -> String {
        sources.board.each_up(|name, up| self.check_up.with_label_values(&[name]).set(if up { 1.0 } else { 0.0 }));
        self.state.refresh(sources);
        let mut out = Vec::with_capacity(16 * 1024);
        let families = self.registry.gather();
        if let Err(e) = TextEncoder::new().encode(&families, &mut out) {
            tracing::error!(error = %e, "cannot encode metrics");
        }
        String::from_utf8(out).unwrap_or_default()
    }
}

impl ProbeObserver for Metrics {
    fn on_event(&self, event: ProbeEvent<'_>) {
        match event {
            // guardian_check_up is read from the board at render time.
            ProbeEvent::OverBudget { .. } => {}
            ProbeEvent::Finished(r) => {
                self.probe_duration.with_label_values(&[&r.check]).observe(r.latency.as_secs_f64());
                if let Some(t) = r.ttfb {
                    self.probe_ttfb.with_label_values(&[&r.check]).observe(t.as_secs_f64());
                }
                self.probes_total.with_label_values(&[&r.check, r.outcome.code()]).inc();
                let finished = r.started_at.as_millisecond() as f64 / 1e3 + r.latency.as_secs_f64();
                self.last_probe.with_label_values(&[&r.check]).set(finished);
            }
            ProbeEvent::Skipped { check, reason } => {
                self.probes_skipped.with_label_values(&[check, reason.code()]).inc()
            }
        }
    }
}

/// The Kubernetes API's health, kept by the guard's metrics.
impl crate::cluster::ApiObserver for Metrics {
    fn failed(&self, call: crate::cluster::Call, failure: crate::cluster::Failure) {
        self.guard.failed(call, failure);
    }

    fn up(&self, up: bool) {
        self.guard.up(up);
    }
}

/// Latency buckets for any endpoint, in seconds.
const LADDER: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// A general ladder plus buckets around each budget, so "share of probes
/// within budget" is exact and "how far over" is visible.
pub fn buckets(checks: &[Check]) -> Vec<f64> {
    let mut b = LADDER.to_vec();
    for c in checks {
        let budget = c.budget.as_secs_f64();
        b.extend([0.5, 0.8, 1.0, 1.2, 1.5, 2.0].map(|f| budget * f));
        b.push(c.timeout.as_secs_f64());
    }
    let mut b: Vec<f64> = b.into_iter().map(|x| (x * 1e6).round() / 1e6).filter(|x| *x > 0.0).collect();
    b.sort_by(f64::total_cmp);
    b.dedup();
    b
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_straddle_every_budget_and_stay_sorted_without_duplicates() {
        let yaml = "environment: dev\nchecks:\n  - { name: a, url: 'http://h/', budget: 500ms }\n  - { name: b, url: 'http://h/', budget: 3s }\n";
        let config = crate::config::parse(yaml, "t.yaml", &crate::config::MapEnv::default()).unwrap();
        let b = buckets(&config.checks);
        for want in [0.4, 0.5, 0.6, 2.4, 3.0, 3.6, 6.0] {
            assert!(b.contains(&want), "{want} missing from {b:?}");
        }
        assert!(b.windows(2).all(|w| w[0] < w[1]), "{b:?}");
    }
}
