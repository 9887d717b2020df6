//! The check board: each check's latest result and whether a probe is over
//! its budget right now. It answers `/api/v1/status`, `/readyz`, the
//! `guardian_check_up` gauge and the demo's live view.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

use serde::Serialize;

use super::{Outcome, ProbeEvent, ProbeObserver, ProbeResult};
use crate::config::Check;

#[derive(Debug, Default)]
pub struct Board {
    checks: RwLock<HashMap<String, Entry>>,
    order: Vec<String>,
}

#[derive(Debug)]
struct Entry {
    url: String,
    budget: Duration,
    interval: Duration,
    last: Option<ProbeResult>,
    /// Probes in flight whose budget has already elapsed.
    over_budget_in_flight: u32,
    rate_limited: u64,
}

/// One check as people and the API see it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckStatus {
    pub name: String,
    pub url: String,
    pub budget_seconds: f64,
    pub interval_seconds: f64,
    /// Good now: the last probe was ok and none is over budget in flight.
    pub up: bool,
    /// A probe is running past its budget: bad before it even ends.
    pub over_budget_in_flight: bool,
    pub rate_limited_total: u64,
    pub last: Option<ProbeResult>,
}

impl Board {
    pub fn new(checks: &[Check]) -> Self {
        let entries = checks.iter().map(|c| {
            let entry = Entry {
                url: c.display_url(),
                budget: c.budget,
                interval: c.interval,
                last: None,
                over_budget_in_flight: 0,
                rate_limited: 0,
            };
            (c.name.clone(), entry)
        });
        Self { checks: RwLock::new(entries.collect()), order: checks.iter().map(|c| c.name.clone()).collect() }
    }

    /// Every check in config order.
    pub fn snapshot(&self) -> Vec<CheckStatus> {
        let map = self.checks.read().unwrap_or_else(|p| p.into_inner());
        self.order.iter().filter_map(|name| map.get(name).map(|e| status(name, e))).collect()
    }

    /// Checks that have no result yet (readiness waits for them).
    pub fn without_result(&self) -> Vec<String> {
        let map = self.checks.read().unwrap_or_else(|p| p.into_inner());
        self.order.iter().filter(|n| map.get(*n).is_some_and(|e| e.last.is_none())).cloned().collect()
    }

    fn update(&self, check: &str, f: impl FnOnce(&mut Entry)) {
        let mut map = self.checks.write().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = map.get_mut(check) {
            f(e);
        }
    }
}

fn status(name: &str, e: &Entry) -> CheckStatus {
    CheckStatus {
        name: name.to_string(),
        url: e.url.clone(),
        budget_seconds: e.budget.as_secs_f64(),
        interval_seconds: e.interval.as_secs_f64(),
        up: is_up(e),
        over_budget_in_flight: e.over_budget_in_flight > 0,
        rate_limited_total: e.rate_limited,
        last: e.last.clone(),
    }
}

impl ProbeObserver for Board {
    fn on_event(&self, event: ProbeEvent<'_>) {
        match event {
            ProbeEvent::OverBudget { check, .. } => self.update(check, |e| {
                if is_up(e) {
                    tracing::warn!(check, budget = ?e.budget, "check turned bad: probe still running past its budget");
                }
                e.over_budget_in_flight += 1;
            }),
            ProbeEvent::Finished(r) => self.update(&r.check, |e| {
                let before = e.last.as_ref().map(|l| l.outcome);
                if r.over_budget_early {
                    e.over_budget_in_flight = e.over_budget_in_flight.saturating_sub(1);
                }
                // Overlapping probes can finish out of order; keep the newest.
                if e.last.as_ref().is_none_or(|l| l.started_at <= r.started_at) {
                    e.last = Some(r.clone());
                }
                log_transition(r, before);
            }),
            ProbeEvent::RateLimited { check } => self.update(check, |e| e.rate_limited += 1),
        }
    }
}

fn is_up(e: &Entry) -> bool {
    e.last.as_ref().is_some_and(|r| r.outcome == Outcome::Ok) && e.over_budget_in_flight == 0
}

/// One line when a check's outcome changes between good and bad, not one per probe.
fn log_transition(r: &ProbeResult, before: Option<Outcome>) {
    let latency = crate::units::format_duration(r.latency);
    match (before.map(Outcome::is_good), r.outcome.is_good()) {
        (Some(true) | None, false) => {
            tracing::warn!(check = %r.check, outcome = r.outcome.code(), %latency, reason = %r.reason, "check is bad")
        }
        (Some(false), true) => tracing::info!(check = %r.check, %latency, "check is good again"),
        _ => tracing::debug!(check = %r.check, outcome = r.outcome.code(), %latency, reason = %r.reason, "probe"),
    }
}
