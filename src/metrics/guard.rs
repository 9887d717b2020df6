//! The guard's metrics: targets rolling out, actions by outcome, how fast
//! an action followed a confirmed breach, the detection bound of each check,
//! whether this replica is the one allowed to act, and whether the
//! Kubernetes API answers the guard (the rule is in `cluster::health`).

use prometheus::{Gauge, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry};

use crate::cluster::{ApiObserver, Call, Failure, TargetRef};
use crate::config::{Config, GuardMode};

pub struct GuardMetrics {
    rollout_in_progress: GaugeVec,
    actions: IntCounterVec,
    breach_to_action: HistogramVec,
    detection_bound: GaugeVec,
    leader: Gauge,
    kubernetes_up: Gauge,
    kubernetes_failures: IntCounterVec,
}

/// From a confirmed breach to the patch answered: milliseconds to a minute of retries.
const ACTION_BUCKETS: [f64; 12] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0];

impl GuardMetrics {
    pub fn register(registry: &Registry, config: &Config) -> Result<Self, prometheus::Error> {
        let m = Self {
            rollout_in_progress: GaugeVec::new(
                Opts::new("guardian_target_rollout_in_progress", "1 while the guarded target is rolling out"),
                &["target"],
            )?,
            actions: IntCounterVec::new(
                Opts::new("guardian_actions_total", "Pauses and rollbacks, by outcome (dry_run: decided, not sent)"),
                &["target", "action", "outcome"],
            )?,
            breach_to_action: HistogramVec::new(
                HistogramOpts::new(
                    "guardian_breach_to_action_seconds",
                    "From a confirmed breach (or missing data) to the action answered by the cluster",
                )
                .buckets(ACTION_BUCKETS.to_vec()),
                &["action"],
            )?,
            detection_bound: GaugeVec::new(
                Opts::new(
                    "guardian_detection_bound_seconds",
                    "The longest a breach of the check can take to be confirmed, from the config",
                ),
                &["check"],
            )?,
            leader: Gauge::with_opts(Opts::new(
                "guardian_leader",
                "1 while this replica holds the leadership and may act on targets",
            ))?,
            kubernetes_up: Gauge::with_opts(Opts::new(
                "guardian_kubernetes_up",
                "1 while the Kubernetes API answers the guard, 0 once calls keep failing (guard.mode kubernetes only)",
            ))?,
            kubernetes_failures: IntCounterVec::new(
                Opts::new(
                    "guardian_kubernetes_api_failures_total",
                    "Calls to the Kubernetes API that failed: 5xx, 429, no answer in time, no connection",
                ),
                &["call", "reason"],
            )?,
        };
        registry.register(Box::new(m.rollout_in_progress.clone()))?;
        registry.register(Box::new(m.actions.clone()))?;
        registry.register(Box::new(m.breach_to_action.clone()))?;
        registry.register(Box::new(m.detection_bound.clone()))?;
        registry.register(Box::new(m.leader.clone()))?;
        // Only where there is a Kubernetes API to follow: elsewhere a 0 would read as an outage.
        if config.guard.mode == GuardMode::Kubernetes {
            registry.register(Box::new(m.kubernetes_up.clone()))?;
            registry.register(Box::new(m.kubernetes_failures.clone()))?;
            for call in Call::ALL {
                for failure in Failure::ALL {
                    m.kubernetes_failures.with_label_values(&[call.code(), failure.code()]);
                }
            }
        }
        m.seed(config);
        Ok(m)
    }

    fn seed(&self, config: &Config) {
        for check in &config.checks {
            let bound = crate::guard::check_detection_bound(config, check);
            self.detection_bound.with_label_values(&[&check.name]).set(bound.as_secs_f64());
        }
        for t in &config.guard.targets {
            let name = TargetRef::of(t).to_string();
            self.rollout_in_progress.with_label_values(&[&name]).set(0.0);
            for action in ["pause", "rollback"] {
                for outcome in ["ok", "failed", "dry_run"] {
                    self.actions.with_label_values(&[&name, action, outcome]);
                }
            }
        }
        for action in ["pause", "rollback"] {
            self.breach_to_action.with_label_values(&[action]);
        }
    }

    pub fn set_rolling_out(&self, target: &TargetRef, rolling_out: bool) {
        let v = if rolling_out { 1.0 } else { 0.0 };
        self.rollout_in_progress.with_label_values(&[&target.to_string()]).set(v);
    }

    pub fn action(&self, target: &TargetRef, action: &str, outcome: &str) {
        self.actions.with_label_values(&[&target.to_string(), action, outcome]).inc();
    }

    pub fn breach_to_action(&self, action: &str, seconds: f64) {
        self.breach_to_action.with_label_values(&[action]).observe(seconds);
    }

    pub fn set_leader(&self, leader: bool) {
        self.leader.set(if leader { 1.0 } else { 0.0 });
    }
}

impl ApiObserver for GuardMetrics {
    fn failed(&self, call: Call, failure: Failure) {
        self.kubernetes_failures.with_label_values(&[call.code(), failure.code()]).inc();
    }

    fn up(&self, up: bool) {
        self.kubernetes_up.set(if up { 1.0 } else { 0.0 });
    }
}
