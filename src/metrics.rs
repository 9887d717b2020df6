//! Owns the Prometheus registry and every metric Guardian exports. Names and
//! labels are fixed by SPEC (dashboards and alert rules read them); the
//! environment is a constant label on every series.

use std::collections::HashMap;

use prometheus::{Encoder, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};

use crate::config::{Check, Config};
use crate::probe::{Board, ProbeEvent, ProbeObserver};

pub struct Metrics {
    registry: Registry,
    probe_duration: HistogramVec,
    probe_ttfb: HistogramVec,
    probes_total: IntCounterVec,
    probes_rate_limited: IntCounterVec,
    check_budget: GaugeVec,
    check_up: GaugeVec,
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
                    .buckets(buckets.clone()),
                &["check"],
            )?,
            probe_ttfb: HistogramVec::new(
                HistogramOpts::new("guardian_probe_first_byte_seconds", "Probe time to the response head")
                    .buckets(buckets),
                &["check"],
            )?,
            probes_total: IntCounterVec::new(
                Opts::new("guardian_probes_total", "Finished probes by outcome"),
                &["check", "outcome"],
            )?,
            probes_rate_limited: IntCounterVec::new(
                Opts::new(
                    "guardian_probes_rate_limited_total",
                    "Probes skipped because their host was over its rate limit",
                ),
                &["check"],
            )?,
            check_budget: GaugeVec::new(
                Opts::new("guardian_check_budget_seconds", "Latency budget of the check"),
                &["check"],
            )?,
            check_up: GaugeVec::new(
                Opts::new("guardian_check_up", "1 when the check is good now, 0 when bad"),
                &["check"],
            )?,
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
        self.registry.register(Box::new(self.probes_rate_limited.clone()))?;
        self.registry.register(Box::new(self.check_budget.clone()))?;
        self.registry.register(Box::new(self.check_up.clone()))
    }

    /// Every series exists from the start, so rate() and absent() behave.
    fn seed(&self, checks: &[Check]) {
        for c in checks {
            self.check_budget.with_label_values(&[&c.name]).set(c.budget.as_secs_f64());
            for o in crate::probe::Outcome::ALL {
                self.probes_total.with_label_values(&[&c.name, o.code()]);
            }
            self.probe_duration.with_label_values(&[&c.name]);
            self.check_up.with_label_values(&[&c.name]).set(0.0);
        }
    }

    /// The text exposition, with state gauges refreshed from the board.
    pub fn render(&self, board: &Board) -> String {
        for s in board.snapshot() {
            self.check_up.with_label_values(&[&s.name]).set(if s.up { 1.0 } else { 0.0 });
        }
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
            }
            ProbeEvent::RateLimited { check } => self.probes_rate_limited.with_label_values(&[check]).inc(),
        }
    }
}

/// A general ladder plus buckets around each budget, so "share of probes
/// within budget" is exact and "how far over" is visible.
pub fn buckets(checks: &[Check]) -> Vec<f64> {
    let mut b = vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];
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
