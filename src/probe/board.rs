//! The check board: each check's latest result, whether a probe is over its
//! budget right now, and whether the latest result is still fresh. It
//! answers `/api/v1/status`, `/readyz`, the `guardian_check_up` gauge and
//! the demo's live view.
//!
//! Rule: a check is up when its newest result is ok, no probe is running
//! past its budget, and that result is fresh (started within interval +
//! timeout + a second). Missing or old data is never a pass: a dead
//! scheduler or a check that is always skipped turns the check bad.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

use super::{Outcome, ProbeEvent, ProbeObserver, ProbeResult};
use crate::clock::Clock;
use crate::config::Check;

/// Scheduling jitter and a busy runtime get this much grace before a result is stale.
const FRESH_SLACK: Duration = Duration::from_secs(1);
/// Finished probes kept per check for the status page's sparkline: enough to
/// show a trend on a phone, small enough to copy on every page load.
pub const RECENT_PROBES: usize = 40;

pub struct Board {
    checks: RwLock<HashMap<String, Entry>>,
    order: Vec<String>,
    clock: Arc<dyn Clock>,
}

#[derive(Debug)]
struct Entry {
    url: String,
    budget: Duration,
    interval: Duration,
    fresh_for: Duration,
    last: Option<ProbeResult>,
    /// Probes in flight whose budget has already elapsed.
    over_budget_in_flight: u32,
    skipped: u64,
    /// Start of the first bad probe since the check was last good.
    bad_since: Option<Timestamp>,
    /// The last [`RECENT_PROBES`] finished probes, oldest first.
    recent: VecDeque<RecentProbe>,
}

/// A check as the gate reads it (see [`Board::gate_states`]).
#[derive(Debug, Clone, PartialEq)]
pub struct GateState<'a> {
    pub name: &'a str,
    /// The newest result is ok.
    pub last_ok: bool,
    pub over_budget_in_flight: bool,
    /// When the newest result's probe started; `None` before the first.
    pub last_result_at: Option<Timestamp>,
    /// Why the newest result is not ok.
    pub reason: Option<String>,
    pub bad_since: Option<Timestamp>,
}

/// A finished probe as the status page's sparkline draws it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecentProbe {
    pub seq: u64,
    pub latency: Duration,
    pub outcome: Outcome,
}

/// One check as people and the API see it.
#[derive(Debug, Clone, Serialize)]
pub struct CheckStatus {
    pub name: String,
    pub url: String,
    pub budget_seconds: f64,
    pub interval_seconds: f64,
    /// Good now: the newest result is ok and fresh, and no probe is over budget in flight.
    pub up: bool,
    /// A probe is running past its budget: bad before it even ends.
    pub over_budget_in_flight: bool,
    /// The newest result is older than interval + timeout (or there is none).
    pub stale: bool,
    pub skipped_total: u64,
    /// Start of the first bad probe since the check was last good.
    pub bad_since: Option<Timestamp>,
    pub last: Option<ProbeResult>,
}

impl Board {
    pub fn new(checks: &[Check], clock: Arc<dyn Clock>) -> Self {
        let entries = checks.iter().map(|c| {
            let entry = Entry {
                url: c.display_url(),
                budget: c.budget,
                interval: c.interval,
                fresh_for: c.interval + c.timeout + FRESH_SLACK,
                last: None,
                over_budget_in_flight: 0,
                skipped: 0,
                bad_since: None,
                recent: VecDeque::with_capacity(RECENT_PROBES),
            };
            (c.name.clone(), entry)
        });
        let order = checks.iter().map(|c| c.name.clone()).collect();
        Self { checks: RwLock::new(entries.collect()), order, clock }
    }

    /// Every check in config order.
    pub fn snapshot(&self) -> Vec<CheckStatus> {
        let now = self.clock.now();
        let map = self.checks.read().unwrap_or_else(|p| p.into_inner());
        self.order.iter().filter_map(|name| map.get(name).map(|e| status(name, e, now))).collect()
    }

    /// Each check's last finished probes, oldest first (launch order).
    pub fn recent(&self) -> HashMap<String, Vec<RecentProbe>> {
        let map = self.checks.read().unwrap_or_else(|p| p.into_inner());
        map.iter().map(|(name, e)| (name.clone(), e.recent.iter().copied().collect())).collect()
    }

    /// Calls `f(name, up)` for every check, without cloning results.
    pub fn each_up(&self, mut f: impl FnMut(&str, bool)) {
        let now = self.clock.now();
        let map = self.checks.read().unwrap_or_else(|p| p.into_inner());
        for name in &self.order {
            if let Some(e) = map.get(name) {
                f(name, is_up(e, now));
            }
        }
    }

    /// What the gate reads of every check, in config order. Unlike
    /// `snapshot`, nothing is cloned but a bad result's reason: the gate is
    /// asked many times a second, and at 10,000 checks copying every result
    /// cost more than the whole decision.
    pub fn gate_states<'a>(&'a self) -> Vec<GateState<'a>> {
        let map = self.checks.read().unwrap_or_else(|p| p.into_inner());
        let state = |name: &'a String| {
            let e = map.get(name)?;
            let last_ok = e.last.as_ref().is_some_and(|r| r.outcome == Outcome::Ok);
            Some(GateState {
                name,
                last_ok,
                over_budget_in_flight: e.over_budget_in_flight > 0,
                last_result_at: e.last.as_ref().map(|r| r.started_at),
                reason: e.last.as_ref().filter(|_| !last_ok).map(|r| r.reason.clone()),
                bad_since: e.bad_since,
            })
        };
        self.order.iter().filter_map(state).collect()
    }

    /// Checks that have no result yet, or only a stale one (readiness waits for them).
    pub fn without_fresh_result(&self) -> Vec<String> {
        let now = self.clock.now();
        let map = self.checks.read().unwrap_or_else(|p| p.into_inner());
        self.order.iter().filter(|n| map.get(*n).is_some_and(|e| !is_fresh(e, now))).cloned().collect()
    }

    /// Applies `f` under the lock and returns whether the check was up before and after.
    fn update(&self, check: &str, f: impl FnOnce(&mut Entry)) -> Option<(bool, bool)> {
        let now = self.clock.now();
        let mut map = self.checks.write().unwrap_or_else(|p| p.into_inner());
        let e = map.get_mut(check)?;
        let before = is_up(e, now);
        f(e);
        Some((before, is_up(e, now)))
    }
}

fn is_fresh(e: &Entry, now: Timestamp) -> bool {
    e.last.as_ref().is_some_and(|r| now.duration_since(r.started_at).unsigned_abs() <= e.fresh_for)
}

fn is_up(e: &Entry, now: Timestamp) -> bool {
    e.last.as_ref().is_some_and(|r| r.outcome == Outcome::Ok) && e.over_budget_in_flight == 0 && is_fresh(e, now)
}

fn status(name: &str, e: &Entry, now: Timestamp) -> CheckStatus {
    CheckStatus {
        name: name.to_string(),
        url: e.url.clone(),
        budget_seconds: e.budget.as_secs_f64(),
        interval_seconds: e.interval.as_secs_f64(),
        up: is_up(e, now),
        over_budget_in_flight: e.over_budget_in_flight > 0,
        stale: !is_fresh(e, now),
        skipped_total: e.skipped,
        bad_since: e.bad_since,
        last: e.last.clone(),
    }
}

impl ProbeObserver for Board {
    fn on_event(&self, event: ProbeEvent<'_>) {
        match event {
            ProbeEvent::OverBudget { check, started_at } => {
                let budget = self.update(check, |e| {
                    e.over_budget_in_flight += 1;
                    e.bad_since = e.bad_since.or(Some(started_at));
                });
                if let Some((true, false)) = budget {
                    tracing::warn!(check, "check turned bad: a probe is still running past its budget");
                }
            }
            ProbeEvent::Finished(r) => {
                let changed = self.update(&r.check, |e| {
                    if r.over_budget_early {
                        e.over_budget_in_flight = e.over_budget_in_flight.saturating_sub(1);
                    }
                    remember(&mut e.recent, RecentProbe { seq: r.seq, latency: r.latency, outcome: r.outcome });
                    // Overlapping probes can finish out of order; keep the newest launched.
                    if e.last.as_ref().is_none_or(|l| l.seq <= r.seq) {
                        e.last = Some(r.clone());
                        e.bad_since = match r.outcome {
                            Outcome::Ok if e.over_budget_in_flight == 0 => None,
                            Outcome::Ok => e.bad_since,
                            _ => e.bad_since.or(Some(r.started_at)),
                        };
                    }
                });
                if let Some((before, after)) = changed {
                    log_transition(r, before, after);
                }
            }
            ProbeEvent::Skipped { check, .. } => {
                self.update(check, |e| e.skipped += 1);
            }
        }
    }
}

/// Keeps the ring in launch order (overlapping probes can finish out of
/// order), within its capacity: it never grows past [`RECENT_PROBES`].
fn remember(recent: &mut VecDeque<RecentProbe>, probe: RecentProbe) {
    let mut at = recent.iter().rposition(|p| p.seq <= probe.seq).map_or(0, |i| i + 1);
    if recent.len() >= RECENT_PROBES {
        if at == 0 {
            return; // older than every probe kept
        }
        recent.pop_front();
        at -= 1;
    }
    recent.insert(at, probe);
}

/// One line when a check changes between good and bad, not one per probe.
/// Logged after the lock is released: a slow log pipe never stalls the board.
fn log_transition(r: &ProbeResult, before: bool, after: bool) {
    let (check, outcome, latency, reason) = (&r.check, r.outcome.code(), r.latency, &r.reason);
    match (before, after) {
        (true, false) => tracing::warn!(check, outcome, ?latency, reason, "check is bad"),
        (false, true) => tracing::info!(check, ?latency, "check is good"),
        _ => tracing::debug!(check, outcome, ?latency, reason, "probe"),
    }
}

#[cfg(test)]
mod tests;
