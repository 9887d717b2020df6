//! Owns SLO maths: per-minute roll-ups of good and total probes, the SLI
//! over each window, error budget remaining, burn rates, and the
//! multi-window multi-burn-rate conditions of the Google SRE workbook.

use serde::Serialize;

/// Good and total probes of one check in one wall-clock minute.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MinuteRollup {
    pub check: String,
    /// Unix time in whole minutes (seconds / 60, floored).
    pub minute: i64,
    pub good: u64,
    pub total: u64,
}

mod burn;
mod series;
mod tracker;

pub use burn::{CONDITIONS, Condition, ConditionState, Severity, evaluate_conditions};
pub use series::{MINUTE_RESOLUTION_UP_TO, MinuteSeries};
pub use tracker::{SloStatus, SloTracker, WindowStatus};

/// The windows every SLO is evaluated over (the SLO's own window is added).
pub const WINDOWS: [(&str, i64); 7] =
    [("5m", 5), ("30m", 30), ("1h", 60), ("2h", 120), ("6h", 360), ("1d", 1_440), ("3d", 4_320)];

/// Share of good probes; `None` without data.
pub fn sli(good: u64, total: u64) -> Option<f64> {
    (total > 0).then(|| good as f64 / total as f64)
}

/// How fast the error budget burns: 1.0 spends exactly the budget over the
/// SLO window; 14.4 spends 2 % of a 30-day budget in an hour.
pub fn burn_rate(sli: f64, objective: f64) -> f64 {
    (1.0 - sli) / (1.0 - objective)
}

/// Share of the error budget left over the SLO window; below 0 once overspent.
pub fn budget_remaining(sli: f64, objective: f64) -> f64 {
    1.0 - burn_rate(sli, objective)
}

/// Unix minute of a timestamp (floored).
pub fn minute_of(t: jiff::Timestamp) -> i64 {
    t.as_second().div_euclid(60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_sli_burn_and_budget() {
        // 10,000 probes, 5 bad, objective 99.9 %: half the budget spent.
        let s = sli(9_995, 10_000).unwrap();
        assert!((s - 0.9995).abs() < 1e-12);
        assert!((burn_rate(s, 0.999) - 0.5).abs() < 1e-9);
        assert!((budget_remaining(s, 0.999) - 0.5).abs() < 1e-9);
        // 2 % bad is a 20× burn and an overspent budget.
        assert!((burn_rate(0.98, 0.999) - 20.0).abs() < 1e-9);
        assert!((budget_remaining(0.98, 0.999) + 19.0).abs() < 1e-9);
        assert_eq!(sli(0, 0), None);
    }

    #[test]
    fn minutes_floor_even_before_the_epoch() {
        assert_eq!(minute_of(jiff::Timestamp::from_second(119).unwrap()), 1);
        assert_eq!(minute_of(jiff::Timestamp::from_second(-1).unwrap()), -1);
    }
}
