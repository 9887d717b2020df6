//! Confirmation probes: while the guard watches a check (its target is
//! armed), a probe that is not good within `interval` is followed at once by
//! up to `count` extra probes, one every `interval`, so a breach is confirmed
//! in about budget + interval + (max_bad − 1) × interval instead of waiting
//! for max_bad whole check intervals. The guard sets which checks are armed;
//! the scheduler asks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::Check;

pub struct Confirmations {
    interval: Duration,
    count: u32,
    armed: HashMap<String, AtomicBool>,
}

impl Confirmations {
    /// `max_bad` bad probes confirm a breach: the suspect one and `max_bad − 1` more.
    pub fn new(checks: &[Check], interval: Duration, max_bad: u32) -> Self {
        let armed = checks.iter().map(|c| (c.name.clone(), AtomicBool::new(false))).collect();
        Self { interval, count: max_bad.saturating_sub(1), armed }
    }

    /// Never confirms (probing outside a guardian, e.g. `guardian probe`).
    pub fn off() -> Self {
        Self { interval: Duration::MAX, count: 0, armed: HashMap::new() }
    }

    pub fn set_armed(&self, check: &str, armed: bool) {
        if let Some(flag) = self.armed.get(check) {
            flag.store(armed, Ordering::Release);
        }
    }

    pub fn is_armed(&self, check: &str) -> bool {
        self.count > 0 && self.armed.get(check).is_some_and(|f| f.load(Ordering::Acquire))
    }

    /// How long a probe may take before it is suspect, for a check with `check_interval`.
    pub fn interval(&self, check_interval: Duration) -> Duration {
        self.interval.min(check_interval)
    }

    pub fn count(&self) -> u32 {
        self.count
    }
}
