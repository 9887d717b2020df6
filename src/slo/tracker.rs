//! Keeps each SLO's per-minute series from probe outcomes, answers its
//! status over every window, and hands out the per-check roll-ups that
//! storage must keep so the windows survive a restart.
//!
//! Time comes in as arguments: a probe counts in the minute it started.

use std::collections::{HashMap, HashSet};

use jiff::Timestamp;
use serde::Serialize;

use super::{ConditionState, MinuteRollup, MinuteSeries, WINDOWS, budget_remaining, burn_rate, evaluate_conditions};
use super::{minute_of, sli};
use crate::config::Slo;

/// Minutes of per-check counts kept in memory for persistence at the least:
/// the current minute and a few behind it, for probes that finish late.
const MIN_RECENT_MINUTES: i64 = 5;

pub struct SloTracker {
    slos: Vec<Tracked>,
    /// A probe counts in the minute it started, and may end a whole timeout
    /// later: its minute's count must still be in memory then.
    recent_minutes: i64,
    by_check: HashMap<String, Vec<usize>>,
    recent: HashMap<(String, i64), (u64, u64)>,
    dirty: HashSet<(String, i64)>,
}

struct Tracked {
    name: String,
    objective: f64,
    window_minutes: i64,
    series: MinuteSeries,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WindowStatus {
    pub window: String,
    pub sli: Option<f64>,
    pub burn_rate: Option<f64>,
    pub good: u64,
    pub total: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloStatus {
    pub name: String,
    pub objective: f64,
    /// The SLO's own window, e.g. `30d`.
    pub window: String,
    /// Over the SLO window.
    pub sli: Option<f64>,
    pub error_budget_remaining: Option<f64>,
    pub windows: Vec<WindowStatus>,
    pub conditions: Vec<ConditionState>,
}

impl SloTracker {
    /// `longest_timeout`: the longest any probe can run.
    pub fn new(slos: &[Slo], longest_timeout: std::time::Duration) -> Self {
        let recent_minutes = (longest_timeout.as_secs() as i64 / 60 + 2).max(MIN_RECENT_MINUTES);
        let mut by_check: HashMap<String, Vec<usize>> = HashMap::new();
        let tracked = slos
            .iter()
            .enumerate()
            .map(|(i, s)| {
                for c in &s.checks {
                    by_check.entry(c.clone()).or_default().push(i);
                }
                let window_minutes = (s.window.as_secs() / 60).max(1) as i64;
                let longest = window_minutes.max(WINDOWS[WINDOWS.len() - 1].1);
                Tracked {
                    name: s.name.clone(),
                    objective: s.objective,
                    window_minutes,
                    series: MinuteSeries::new(longest),
                }
            })
            .collect();
        Self { slos: tracked, recent_minutes, by_check, recent: HashMap::new(), dirty: HashSet::new() }
    }

    /// Own-window error budget remaining of each SLO: what the gate needs,
    /// without computing every window.
    pub fn budgets(&self, now: Timestamp) -> Vec<(&str, Option<f64>)> {
        let now_minute = minute_of(now);
        self.slos
            .iter()
            .map(|s| {
                let (good, total) = s.series.sums(now_minute, s.window_minutes);
                (s.name.as_str(), sli(good, total).map(|v| budget_remaining(v, s.objective)))
            })
            .collect()
    }

    /// Minutes of roll-ups worth keeping: the longest window plus a day.
    pub fn retention_minutes(&self) -> i64 {
        let longest = self.slos.iter().map(|s| s.window_minutes).max().unwrap_or(0);
        longest.max(WINDOWS[WINDOWS.len() - 1].1) + 1_440
    }

    /// Counts one finished probe of `check`, started at `at`.
    pub fn record(&mut self, check: &str, at: Timestamp, good: bool) {
        let minute = minute_of(at);
        let g = u64::from(good);
        for &i in self.by_check.get(check).into_iter().flatten() {
            self.slos[i].series.add(minute, g, 1);
        }
        let key = (check.to_string(), minute);
        let counts = self.recent.entry(key.clone()).or_default();
        counts.0 += g;
        counts.1 += 1;
        self.dirty.insert(key);
    }

    /// Adds stored roll-ups (per minute, or hourly sums stamped with their
    /// hour's first minute) kept from before a restart. Counts recorded since
    /// the start add up with them, so the next save of a minute stays absolute.
    pub fn restore(&mut self, rollups: &[MinuteRollup], now: Timestamp) {
        let now_minute = minute_of(now);
        for r in rollups {
            for &i in self.by_check.get(&r.check).into_iter().flatten() {
                self.slos[i].series.add(r.minute, r.good, r.total);
            }
            if r.minute > now_minute - self.recent_minutes {
                let key = (r.check.clone(), r.minute);
                match self.recent.get_mut(&key) {
                    Some(counts) => {
                        counts.0 += r.good;
                        counts.1 += r.total;
                        self.dirty.insert(key);
                    }
                    None => {
                        self.recent.insert(key, (r.good, r.total));
                    }
                }
            }
        }
    }

    /// Roll-ups changed since the last call (absolute values), and forgets
    /// minutes too old to change again.
    pub fn take_dirty(&mut self, now: Timestamp) -> Vec<MinuteRollup> {
        let rows = self
            .dirty
            .drain()
            .filter_map(|key| {
                let (good, total) = *self.recent.get(&key)?;
                Some(MinuteRollup { check: key.0, minute: key.1, good, total })
            })
            .collect();
        let horizon = minute_of(now) - self.recent_minutes;
        self.recent.retain(|(_, minute), _| *minute > horizon);
        rows
    }

    pub fn status(&self, now: Timestamp) -> Vec<SloStatus> {
        let now_minute = minute_of(now);
        self.slos.iter().map(|s| status(s, now_minute)).collect()
    }
}

fn status(s: &Tracked, now_minute: i64) -> SloStatus {
    let own = window_label(s.window_minutes);
    let mut windows: Vec<(String, i64)> = WINDOWS.iter().map(|(n, m)| (n.to_string(), *m)).collect();
    if !windows.iter().any(|(_, m)| *m == s.window_minutes) {
        windows.push((own.clone(), s.window_minutes));
    }
    let windows: Vec<WindowStatus> = windows
        .into_iter()
        .map(|(window, minutes)| {
            let (good, total) = s.series.sums(now_minute, minutes);
            let sli = sli(good, total);
            WindowStatus { window, sli, burn_rate: sli.map(|v| burn_rate(v, s.objective)), good, total }
        })
        .collect();
    let own_sli = windows.iter().find(|w| w.window == own).and_then(|w| w.sli);
    let conditions = evaluate_conditions(|name| windows.iter().find(|w| w.window == name).and_then(|w| w.burn_rate));
    SloStatus {
        name: s.name.clone(),
        objective: s.objective,
        window: own,
        sli: own_sli,
        error_budget_remaining: own_sli.map(|v| budget_remaining(v, s.objective)),
        windows,
        conditions,
    }
}

/// `43200` minutes reads `30d`; `90` reads `90m`.
fn window_label(minutes: i64) -> String {
    match minutes {
        m if m % 1_440 == 0 => format!("{}d", m / 1_440),
        m if m % 60 == 0 => format!("{}h", m / 60),
        m => format!("{m}m"),
    }
}

#[cfg(test)]
mod tests;
