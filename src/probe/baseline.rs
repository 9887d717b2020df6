//! Owns the `no_drop` baselines: per check and JSON Pointer, the value seen
//! when the check's target was armed.
//!
//! Rule: arming a check makes the next passing value of each of its `no_drop`
//! paths the baseline; while armed, a lower value fails the probe; disarming
//! forgets the baselines. Why: a change (rollout or migration) must not lose
//! data, and "lost" only means something against what was there when the
//! change began. First start: nothing is armed, so `no_drop` only asks for a
//! number. Recovery: baselines live in memory; after a restart an armed check
//! records a fresh one from its next passing answer.
//!
//! `expect::evaluate` stays pure: it reads a [`View`] taken before the body is
//! judged and returns the first values it saw; [`Baselines::record`] keeps
//! them only if the check is still armed by the same arming.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::expect::Baseline;

/// The `no_drop` baselines of every armed check. Thread-safe; the lock is
/// only ever held for a map lookup or update, never across an `.await`.
#[derive(Debug, Default)]
pub struct Baselines {
    inner: Mutex<Inner>,
}

/// One check's `no_drop` state as it was when a probe began judging.
#[derive(Debug, Clone, Default)]
pub(crate) struct View {
    armed: Option<Armed>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Tells one arming from the next, so a value judged under an arming that
    /// has since ended is never recorded under a new one.
    next_arming: u64,
    checks: BTreeMap<String, Armed>,
}

#[derive(Debug, Clone)]
struct Armed {
    arming: u64,
    /// JSON Pointer → baseline.
    values: BTreeMap<String, f64>,
}

impl Baselines {
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms `check`: the next value seen for each of its no_drop paths becomes the baseline.
    /// Arming an already armed check keeps its baselines (a second target or a migration on top must not reset them).
    pub fn arm(&self, check: &str) {
        let mut inner = self.lock();
        if inner.checks.contains_key(check) {
            return;
        }
        inner.next_arming += 1;
        let arming = inner.next_arming;
        inner.checks.insert(check.to_string(), Armed { arming, values: BTreeMap::new() });
    }

    /// Disarms: baselines forgotten; no_drop then only checks that the value is a number.
    pub fn disarm(&self, check: &str) {
        self.lock().checks.remove(check);
    }

    pub fn is_armed(&self, check: &str) -> bool {
        self.lock().checks.contains_key(check)
    }

    /// (check, path, baseline) for every recorded baseline, for /api/v1/status.
    /// Sorted by check, then path.
    pub fn snapshot(&self) -> Vec<(String, String, f64)> {
        let inner = self.lock();
        inner
            .checks
            .iter()
            .flat_map(|(check, armed)| armed.values.iter().map(|(path, v)| (check.clone(), path.clone(), *v)))
            .collect()
    }

    /// `check`'s state now, for judging one body.
    pub(crate) fn view(&self, check: &str) -> View {
        View { armed: self.lock().checks.get(check).cloned() }
    }

    /// Keeps `firsts` (path, value) as baselines, for paths that have none
    /// yet, if `check` is still armed by the arming `view` saw. Only pass the
    /// values of a body that met every other expectation.
    pub(crate) fn record(&self, check: &str, view: &View, firsts: &[(&str, f64)]) {
        let (Some(seen), false) = (&view.armed, firsts.is_empty()) else { return };
        let mut inner = self.lock();
        let Some(armed) = inner.checks.get_mut(check).filter(|a| a.arming == seen.arming) else { return };
        for (path, value) in firsts {
            armed.values.entry((*path).to_string()).or_insert(*value);
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl View {
    /// Where `path` stands: unarmed, armed awaiting its first value, or armed at a baseline.
    pub(crate) fn baseline(&self, path: &str) -> Baseline {
        match &self.armed {
            None => Baseline::Unarmed,
            Some(armed) => armed.values.get(path).map_or(Baseline::Pending, |v| Baseline::At(*v)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHECK: &str = "customers";

    fn recorded(b: &Baselines, check: &str, path: &'static str, value: f64) {
        let view = b.view(check);
        b.record(check, &view, &[(path, value)]);
    }

    #[test]
    fn an_unarmed_check_has_no_baseline_and_records_nothing() {
        let b = Baselines::new();
        assert!(!b.is_armed(CHECK));
        assert_eq!(b.view(CHECK).baseline("/count"), Baseline::Unarmed);
        recorded(&b, CHECK, "/count", 1342.0);
        assert!(b.snapshot().is_empty());
    }

    #[test]
    fn arming_awaits_the_first_value_then_keeps_it() {
        let b = Baselines::new();
        b.arm(CHECK);
        assert!(b.is_armed(CHECK));
        assert_eq!(b.view(CHECK).baseline("/count"), Baseline::Pending);
        recorded(&b, CHECK, "/count", 1342.0);
        recorded(&b, CHECK, "/count", 1500.0);
        assert_eq!(b.view(CHECK).baseline("/count"), Baseline::At(1342.0));
        assert_eq!(b.snapshot(), vec![(CHECK.to_string(), "/count".to_string(), 1342.0)]);
    }

    #[test]
    fn arming_twice_keeps_the_baseline() {
        let b = Baselines::new();
        b.arm(CHECK);
        recorded(&b, CHECK, "/count", 1342.0);
        b.arm(CHECK);
        assert_eq!(b.view(CHECK).baseline("/count"), Baseline::At(1342.0));
    }

    #[test]
    fn disarming_forgets_and_rearming_records_afresh() {
        let b = Baselines::new();
        b.arm(CHECK);
        recorded(&b, CHECK, "/count", 1342.0);
        b.disarm(CHECK);
        assert!(!b.is_armed(CHECK));
        assert_eq!(b.view(CHECK).baseline("/count"), Baseline::Unarmed);
        assert!(b.snapshot().is_empty());
        b.arm(CHECK);
        assert_eq!(b.view(CHECK).baseline("/count"), Baseline::Pending);
        recorded(&b, CHECK, "/count", 1200.0);
        assert_eq!(b.view(CHECK).baseline("/count"), Baseline::At(1200.0));
    }

    #[test]
    fn a_value_judged_under_an_ended_arming_is_not_recorded() {
        let b = Baselines::new();
        b.arm(CHECK);
        let stale = b.view(CHECK);
        b.disarm(CHECK);
        b.arm(CHECK);
        b.record(CHECK, &stale, &[("/count", 1342.0)]);
        assert_eq!(b.view(CHECK).baseline("/count"), Baseline::Pending);
    }

    #[test]
    fn checks_and_paths_are_kept_apart_and_listed_in_order() {
        let b = Baselines::new();
        b.arm("domains");
        b.arm(CHECK);
        let view = b.view(CHECK);
        b.record(CHECK, &view, &[("/count", 1342.0), ("/active", 1200.5)]);
        recorded(&b, "domains", "/total", 230.0);
        assert_eq!(b.view("other").baseline("/count"), Baseline::Unarmed);
        assert_eq!(
            b.snapshot(),
            vec![
                (CHECK.into(), "/active".into(), 1200.5),
                (CHECK.into(), "/count".into(), 1342.0),
                ("domains".into(), "/total".into(), 230.0),
            ]
        );
    }
}
