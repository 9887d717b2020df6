//! Turns probe observations into incidents: opens one when a check's breach
//! rule confirms, keeps its latency figures and revenue at risk up to date,
//! closes it on recovery. Pure: time comes in with each call.
//!
//! The onset is the start of the oldest bad probe in the window that
//! confirmed the breach, and the end is the start of the first good probe of
//! the recovering streak: the incident spans the impact, not the detection.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use jiff::Timestamp;

use super::{BreachRule, BreachState, Incident, Transition};

/// Closed incidents kept in memory (storage keeps them all).
const KEEP_CLOSED: usize = 100;
/// Latency samples kept per open incident for its p95.
const MAX_SAMPLES: usize = 4_096;
const MINUTES_PER_YEAR: f64 = 365.0 * 24.0 * 60.0;

/// What one probe told.
#[derive(Debug, Clone, Copy)]
pub enum Observation<'a> {
    /// `latency` is `None` for an early verdict: the probe is still running.
    Bad {
        check: &'a str,
        at: Timestamp,
        latency: Option<Duration>,
        reason: &'a str,
    },
    Good {
        check: &'a str,
        at: Timestamp,
        latency: Duration,
    },
    /// The final latency of a probe already counted bad by its early verdict.
    Latency {
        check: &'a str,
        latency: Duration,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum IncidentChange {
    Opened(Incident),
    Updated(Incident),
    Closed(Incident),
}

pub struct IncidentTracker {
    rule: BreachRule,
    arr_eur: f64,
    shares: HashMap<String, f64>,
    checks: HashMap<String, Track>,
    closed: VecDeque<Incident>,
}

#[derive(Default)]
struct Track {
    state: BreachState,
    /// Start times of the probes in the breach window, oldest first, with badness.
    window: VecDeque<(Timestamp, bool)>,
    open: Option<Open>,
}

struct Open {
    incident: Incident,
    latencies: VecDeque<Duration>,
    streak_from: Option<Timestamp>,
    /// The p95 stored before a restart: the samples behind it are gone.
    p95_floor: Duration,
}

impl IncidentTracker {
    /// `shares`: each check's share of revenue at risk while it is breached.
    pub fn new(rule: BreachRule, arr_eur: f64, shares: HashMap<String, f64>) -> Self {
        Self { rule, arr_eur, shares, checks: HashMap::new(), closed: VecDeque::new() }
    }

    pub fn observe(&mut self, obs: Observation<'_>, now: Timestamp) -> Option<IncidentChange> {
        let (check, at, bad, latency, reason) = match obs {
            Observation::Bad { check, at, latency, reason } => (check, at, true, latency, reason),
            Observation::Good { check, at, latency } => (check, at, false, Some(latency), ""),
            Observation::Latency { check, latency } => return self.latency_only(check, latency, now),
        };
        let rate = self.rate(check);
        let (rule, track) = (self.rule, self.checks.entry(check.to_string()).or_default());
        track.window.push_back((at, bad));
        while track.window.len() > rule.window as usize {
            track.window.pop_front();
        }
        let transition = track.state.observe(bad, rule);
        match (transition, track.open.as_mut()) {
            (Transition::Breached, _) => {
                let onset = track.window.iter().find(|(_, b)| *b).map_or(at, |(t, _)| *t);
                let mut open = Open::new(check, onset, reason, bad_count(&track.window), track.window.len());
                open.sample(latency);
                open.refresh(now, rate);
                let incident = open.incident.clone();
                track.open = Some(open);
                Some(IncidentChange::Opened(incident))
            }
            (Transition::Recovered, Some(open)) => {
                open.count(bad, latency);
                // Never before the onset: the wall clock may have been stepped back meanwhile.
                let end = open.streak_from.unwrap_or(at).max(open.incident.started_at);
                open.refresh(end, rate);
                open.incident.ended_at = Some(end);
                let incident = open.incident.clone();
                track.open = None;
                self.closed.push_front(incident.clone());
                self.closed.truncate(KEEP_CLOSED);
                Some(IncidentChange::Closed(incident))
            }
            (_, Some(open)) => {
                open.count(bad, latency);
                open.streak_from = if bad { None } else { open.streak_from.or(Some(at)) };
                open.refresh(now, rate);
                Some(IncidentChange::Updated(open.incident.clone()))
            }
            _ => None,
        }
    }

    fn latency_only(&mut self, check: &str, latency: Duration, now: Timestamp) -> Option<IncidentChange> {
        let rate = self.rate(check);
        let open = self.checks.get_mut(check)?.open.as_mut()?;
        open.sample(Some(latency));
        open.refresh(now, rate);
        Some(IncidentChange::Updated(open.incident.clone()))
    }

    /// Euros per minute at risk while `check` is breached.
    fn rate(&self, check: &str) -> f64 {
        self.arr_eur / MINUTES_PER_YEAR * self.shares.get(check).copied().unwrap_or(0.0)
    }

    /// Open incidents, with revenue at risk as of `now`.
    pub fn open(&self, now: Timestamp) -> Vec<Incident> {
        let mut out: Vec<Incident> = self
            .checks
            .iter()
            .filter_map(|(check, t)| {
                let open = t.open.as_ref()?;
                let mut i = open.incident.clone();
                i.revenue_at_risk_eur = revenue(i.started_at, now, self.rate(check));
                Some(i)
            })
            .collect();
        out.sort_by_key(|i| std::cmp::Reverse(i.started_at));
        out
    }

    /// Open ones first, then recently closed, newest first.
    pub fn recent(&self, now: Timestamp) -> Vec<Incident> {
        let mut out = self.open(now);
        out.extend(self.closed.iter().cloned());
        out
    }

    /// Sum over open incidents, never more than all of the ARR over the
    /// longest of them: checks of one stream failing together count once.
    pub fn revenue_at_risk(&self, now: Timestamp) -> f64 {
        let open = self.open(now);
        let sum: f64 = open.iter().map(|i| i.revenue_at_risk_eur).sum();
        let longest = open
            .iter()
            .map(|i| i.started_at)
            .min()
            .map_or(0.0, |from| revenue(from, now, self.arr_eur / MINUTES_PER_YEAR));
        sum.min(longest)
    }

    pub fn is_breached(&self, check: &str) -> bool {
        self.checks.get(check).is_some_and(|t| t.state.is_breached())
    }

    /// After a restart: incidents storage still has open carry on and close
    /// when their check recovers. Returns the ones it closed instead: a check
    /// no longer configured (it can never recover), or one that already has a
    /// newer incident open (the newer one carries on).
    pub fn restore(&mut self, open: Vec<Incident>, now: Timestamp) -> Vec<Incident> {
        let mut closed = Vec::new();
        for mut incident in open.into_iter().filter(Incident::is_open) {
            if !self.shares.contains_key(&incident.check) {
                incident.ended_at = Some(now);
                closed.push(incident);
                continue;
            }
            let track = self.checks.entry(incident.check.clone()).or_default();
            if let Some(newer) = track.open.as_ref().filter(|o| o.incident.id != incident.id) {
                incident.ended_at = Some(newer.incident.started_at.max(incident.started_at));
                closed.push(incident);
                continue;
            }
            track.state.restore_breached();
            let p95_floor = incident.p95_latency;
            track.open = Some(Open { incident, latencies: VecDeque::new(), streak_from: None, p95_floor });
        }
        closed
    }
}

impl Open {
    fn new(check: &str, onset: Timestamp, reason: &str, bad: u64, total: usize) -> Self {
        let incident = Incident {
            id: format!("inc-{check}-{}", onset.as_millisecond()),
            check: check.to_string(),
            started_at: onset,
            ended_at: None,
            worst_latency: Duration::ZERO,
            p95_latency: Duration::ZERO,
            probes_total: total as u64,
            probes_bad: bad,
            revenue_at_risk_eur: 0.0,
            reason: reason.to_string(),
        };
        Self { incident, latencies: VecDeque::new(), streak_from: None, p95_floor: Duration::ZERO }
    }

    fn count(&mut self, bad: bool, latency: Option<Duration>) {
        self.incident.probes_total += 1;
        self.incident.probes_bad += u64::from(bad);
        self.sample(latency);
    }

    fn sample(&mut self, latency: Option<Duration>) {
        let Some(latency) = latency else { return };
        if self.latencies.len() == MAX_SAMPLES {
            self.latencies.pop_front();
        }
        self.latencies.push_back(latency);
        self.incident.worst_latency = self.incident.worst_latency.max(latency);
    }

    fn refresh(&mut self, now: Timestamp, rate: f64) {
        self.incident.p95_latency = p95(&self.latencies).max(self.p95_floor);
        self.incident.revenue_at_risk_eur = revenue(self.incident.started_at, now, rate);
    }
}

fn bad_count(window: &VecDeque<(Timestamp, bool)>) -> u64 {
    window.iter().filter(|(_, b)| *b).count() as u64
}

fn revenue(from: Timestamp, to: Timestamp, per_minute: f64) -> f64 {
    let minutes = (to.as_millisecond() - from.as_millisecond()).max(0) as f64 / 60_000.0;
    minutes * per_minute
}

/// Nearest-rank 95th percentile.
fn p95(samples: &VecDeque<Duration>) -> Duration {
    let mut sorted: Vec<Duration> = samples.iter().copied().collect();
    sorted.sort();
    let rank = ((sorted.len() as f64) * 0.95).ceil() as usize;
    sorted.get(rank.saturating_sub(1)).copied().unwrap_or_default()
}

#[cfg(test)]
mod tests;
