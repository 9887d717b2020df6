//! The gate's decision: may `environment` deploy now? Pure: the caller
//! gathers checks, SLOs, incidents, rollouts and the latest backup, and
//! passes `now`; the answer is a value, so every rule is tested without a
//! server, a store or a clock.
//!
//! Rule: go only when no reason below applies. Each reason is listed in
//! this order, then by the name of what it is about, so two answers over the
//! same state read the same:
//! 1. `check_failing` — a check with a fresh result that is not up.
//! 2. `slo_budget_low` — an SLO with less error budget left than
//!    `gate.min_error_budget_remaining` (an SLO with no data yet is skipped:
//!    its checks' freshness is judged by `data_stale`).
//! 3. `incident_open` — each open incident.
//! 4. `outside_window` — every deploy window of the environment is closed.
//! 5. `backup_stale` — `gate.require_backup_within` is set and the latest
//!    backup of the environment is missing, failed, older than that, or
//!    dated more than a minute in the future (a wrong clock is no evidence).
//! 6. `data_stale` — a check with no result, or none newer than
//!    `gate.stale_after`. Missing data is never a pass, and it is its own
//!    reason: such a check is not also reported as failing, because an old
//!    "down" says as little about now as an old "up".
//! 7. `rollout_in_progress` — each rollout still going.
//!
//! Why fail on so much: the gate stands between a deploy script and a
//! platform carrying €2.3M ARR; a wrong go costs far more than a late one.
//! First start: no results yet means `data_stale` until every check has
//! been probed. Recovery is automatic: the next evaluation over fresh data
//! drops the reasons that no longer hold.

#[cfg(test)]
mod tests;

use jiff::{SignedDuration, Timestamp};

use super::slot::{self, WindowState};
use super::{Backup, GateDecision, Reason, ReasonCode, wording};
use crate::config::{Environment, Gate};

/// A backup dated this far in the future is still believed (clock skew).
const BACKUP_CLOCK_SKEW: SignedDuration = SignedDuration::from_secs(60);

/// A gated check as the gate sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CheckView<'a> {
    pub name: &'a str,
    /// The last result was good.
    pub up: bool,
    /// When the last result came in; `None` before the first.
    pub last_result_at: Option<Timestamp>,
    /// Why the last result was bad, e.g. `HTTP 503` or `slow: 3.52s > 3s`.
    pub reason: Option<&'a str>,
    /// Since when the check has been bad, if it is.
    pub bad_since: Option<Timestamp>,
}

/// An SLO's remaining error budget: 1.0 untouched, 0.0 spent, below 0
/// overspent; `None` while there is no data yet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SloView<'a> {
    pub name: &'a str,
    pub error_budget_remaining: Option<f64>,
}

/// An open incident.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IncidentView<'a> {
    pub id: &'a str,
    pub check: &'a str,
    pub started_at: Timestamp,
}

/// Everything the gate decides on.
#[derive(Debug, Clone, Copy)]
pub struct GateInput<'a> {
    pub environment: Environment,
    pub now: Timestamp,
    pub config: &'a Gate,
    pub checks: &'a [CheckView<'a>],
    pub slos: &'a [SloView<'a>],
    pub open_incidents: &'a [IncidentView<'a>],
    /// Targets (e.g. `blueocean-nextgen-prod/Deployment/nextgen-dashboard`) rolling out now.
    pub rollouts_in_progress: &'a [&'a str],
    /// The newest backup reported for the environment, ok or not.
    pub latest_backup: Option<&'a Backup>,
}

/// The gate's answer for `input.environment` at `input.now`.
pub fn decide(input: &GateInput) -> GateDecision {
    let mut reasons = failing_checks(input);
    reasons.extend(low_budgets(input));
    reasons.extend(open_incidents(input));
    reasons.extend(outside_window(input));
    reasons.extend(stale_backup(input));
    reasons.extend(stale_data(input));
    reasons.extend(rollouts(input));
    GateDecision { environment: input.environment, go: reasons.is_empty(), reasons, evaluated_at: input.now }
}

fn is_stale(check: &CheckView, input: &GateInput) -> bool {
    let limit = SignedDuration::try_from(input.config.stale_after).unwrap_or(SignedDuration::MAX);
    check.last_result_at.is_none_or(|at| input.now.duration_since(at) > limit)
}

/// Items sorted by name, each turned into a reason.
fn by_name<T>(mut items: Vec<T>, name: impl Fn(&T) -> &str, reason: impl Fn(&T) -> Reason) -> Vec<Reason> {
    items.sort_by(|a, b| name(a).cmp(name(b)));
    items.iter().map(reason).collect()
}

fn failing_checks(input: &GateInput) -> Vec<Reason> {
    let failing = input.checks.iter().filter(|c| !c.up && !is_stale(c, input)).collect();
    by_name(
        failing,
        |c| c.name,
        |c| {
            let why = c.reason.unwrap_or("no reason recorded");
            let since = c.bad_since.map_or(String::new(), |t| format!(" since {}", ago(t, input.now)));
            let message = format!(
                "Check {} is failing{since}: {why}. Fix it, or wait until it passes again, before deploying.",
                c.name
            );
            Reason::new(ReasonCode::CheckFailing, message)
        },
    )
}

fn low_budgets(input: &GateInput) -> Vec<Reason> {
    let min = input.config.min_error_budget_remaining;
    let low = input.slos.iter().filter(|s| s.error_budget_remaining.is_some_and(|r| r < min || r.is_nan())).collect();
    by_name(
        low,
        |s| s.name,
        |s| {
            let left = s.error_budget_remaining.map_or("an unknown share".into(), wording::percent);
            let message = format!(
                "SLO {} has {left} of its error budget left, below the {} minimum. Wait until it recovers, or fix what \
                 burns it, before deploying.",
                s.name,
                wording::percent(min)
            );
            Reason::new(ReasonCode::SloBudgetLow, message)
        },
    )
}

fn open_incidents(input: &GateInput) -> Vec<Reason> {
    let mut open: Vec<_> = input.open_incidents.iter().collect();
    open.sort_by(|a, b| (a.check, a.id).cmp(&(b.check, b.id)));
    let reason = |i: &&IncidentView| {
        let message = format!(
            "Incident {} is open on check {} since {}. Resolve it before deploying, so a new change does not hide \
             its cause.",
            i.id,
            i.check,
            ago(i.started_at, input.now)
        );
        Reason::new(ReasonCode::IncidentOpen, message)
    };
    open.iter().map(reason).collect()
}

fn outside_window(input: &GateInput) -> Option<Reason> {
    let WindowState::Closed { windows, next } = slot::open_window(&input.config.windows, input.environment, input.now)
    else {
        return None;
    };
    let slots: Vec<String> = windows.iter().map(|w| slot::describe_window(w)).collect();
    let mut clocks: Vec<String> = Vec::new();
    for clock in windows.iter().map(|w| format!("{} in {}", slot::local_time(w, input.now), slot::zone_name(w))) {
        if !clocks.contains(&clock) {
            clocks.push(clock);
        }
    }
    let next = match next {
        Some(o) if windows.len() > 1 => {
            format!("Next opening: {}, {}.", o.window.name, slot::describe_opening(&o, input.now))
        }
        Some(o) => format!("Next opening: {}.", slot::describe_opening(&o, input.now)),
        None => "No window opens in the coming week.".into(),
    };
    let message = format!(
        "{} may deploy only in {}; it is now {}. {next}",
        input.environment,
        slots.join(" or "),
        clocks.join(", ")
    );
    Some(Reason::new(ReasonCode::OutsideWindow, message))
}

fn stale_backup(input: &GateInput) -> Option<Reason> {
    let limit = input.config.require_backup_within?;
    let env = input.environment;
    let latest = input.latest_backup.filter(|b| b.environment == env);
    let problem = match latest {
        None => format!("no backup of {env} has been reported"),
        Some(b) if !b.ok => {
            format!("the latest backup of {env} ({}, {}) failed", b.id, wording::instant(b.completed_at))
        }
        Some(b) if b.completed_at.duration_since(input.now) > BACKUP_CLOCK_SKEW => format!(
            "the latest backup of {env} ({}) is dated {}, in the future; check the clock of what reported it",
            b.id,
            wording::instant(b.completed_at)
        ),
        Some(b) => {
            let age = input.now.duration_since(b.completed_at);
            if age <= SignedDuration::try_from(limit).unwrap_or(SignedDuration::MAX) {
                return None;
            }
            format!("the latest backup of {env} ({}) is {} old", b.id, wording::duration(age))
        }
    };
    let message = format!(
        "{}, and the gate requires one within {}. {}",
        capitalized(&problem),
        wording::std_duration(limit),
        backup_advice(env)
    );
    Some(Reason::new(ReasonCode::BackupStale, message))
}

fn backup_advice(env: Environment) -> String {
    match env {
        Environment::Prod => "Run deploy/scripts/backup-nextgen-prod.sh and make sure it is reported with POST \
                              /api/v1/backups."
            .into(),
        other => format!("Take a backup of {other} and report it with POST /api/v1/backups."),
    }
}

fn stale_data(input: &GateInput) -> Vec<Reason> {
    let limit = wording::std_duration(input.config.stale_after);
    let stale = input.checks.iter().filter(|c| is_stale(c, input)).collect();
    by_name(
        stale,
        |c| c.name,
        |c| {
            let message = match c.last_result_at {
                None => format!(
                    "Check {} has no probe result yet, and the gate needs one newer than {limit}. Make sure the guardian \
                 probes it (see /readyz).",
                    c.name
                ),
                Some(at) => format!(
                    "Check {}'s last probe result is {} old ({}), older than the {limit} limit. The guardian may be stuck \
                 or unable to reach it; see /readyz.",
                    c.name,
                    wording::duration(input.now.duration_since(at)),
                    wording::instant(at)
                ),
            };
            Reason::new(ReasonCode::DataStale, message)
        },
    )
}

fn rollouts(input: &GateInput) -> Vec<Reason> {
    by_name(
        input.rollouts_in_progress.to_vec(),
        |t| *t,
        |t| {
            let message =
                format!("A rollout of {t} is in progress. Wait until it finishes before starting another deploy.");
            Reason::new(ReasonCode::RolloutInProgress, message)
        },
    )
}

/// `2026-03-30T10:02:00Z (3m20s ago)`.
fn ago(t: Timestamp, now: Timestamp) -> String {
    format!("{} ({} ago)", wording::instant(t), wording::duration(now.duration_since(t)))
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    chars.next().map_or(String::new(), |first| first.to_uppercase().chain(chars).collect())
}
