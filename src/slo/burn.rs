//! The multi-window, multi-burn-rate conditions of the Google SRE workbook
//! (chapter "Alerting on SLOs"): a condition fires when the burn rate is at
//! or above its factor over both its long and its short window. The long
//! window makes it significant; the short one makes it stop soon after the
//! problem does. No data in either window never fires.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Page,
    Ticket,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Condition {
    pub severity: Severity,
    pub factor: f64,
    pub long: &'static str,
    pub short: &'static str,
}

/// 14.4× over 1h and 5m, 6× over 6h and 30m (page); 3× over 1d and 2h,
/// 1× over 3d and 6h (ticket).
pub const CONDITIONS: [Condition; 4] = [
    Condition { severity: Severity::Page, factor: 14.4, long: "1h", short: "5m" },
    Condition { severity: Severity::Page, factor: 6.0, long: "6h", short: "30m" },
    Condition { severity: Severity::Ticket, factor: 3.0, long: "1d", short: "2h" },
    Condition { severity: Severity::Ticket, factor: 1.0, long: "3d", short: "6h" },
];

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConditionState {
    #[serde(flatten)]
    pub condition: Condition,
    pub long_burn_rate: Option<f64>,
    pub short_burn_rate: Option<f64>,
    pub firing: bool,
}

/// Evaluates every condition from burn rates looked up by window name.
pub fn evaluate_conditions(burn: impl Fn(&str) -> Option<f64>) -> Vec<ConditionState> {
    CONDITIONS
        .iter()
        .map(|c| {
            let (long, short) = (burn(c.long), burn(c.short));
            let firing = matches!((long, short), (Some(l), Some(s)) if l >= c.factor && s >= c.factor);
            ConditionState { condition: *c, long_burn_rate: long, short_burn_rate: short, firing }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn states(rates: &[(&str, Option<f64>)]) -> Vec<bool> {
        evaluate_conditions(|w| rates.iter().find(|(n, _)| *n == w).and_then(|(_, r)| *r))
            .iter()
            .map(|s| s.firing)
            .collect()
    }

    #[test]
    fn a_condition_needs_both_windows_at_or_above_its_factor() {
        type Row = (&'static str, Vec<(&'static str, Option<f64>)>, [bool; 4]);
        let table: [Row; 6] = [
            ("all calm", vec![("1h", Some(1.0)), ("5m", Some(1.0))], [false; 4]),
            ("fast burn, both windows", vec![("1h", Some(14.4)), ("5m", Some(20.0))], [true, false, false, false]),
            ("spike over: short window recovered", vec![("1h", Some(15.0)), ("5m", Some(0.0))], [false; 4]),
            ("spike only in the short window", vec![("1h", Some(2.0)), ("5m", Some(50.0))], [false; 4]),
            (
                "slow burn fires the tickets",
                vec![("1d", Some(3.5)), ("2h", Some(3.1)), ("3d", Some(1.2)), ("6h", Some(3.1))],
                [false, false, true, true],
            ),
            ("no data never fires", vec![("1h", None), ("5m", Some(100.0))], [false; 4]),
        ];
        for (name, rates, want) in table {
            assert_eq!(states(&rates), want, "{name}");
        }
    }
}
