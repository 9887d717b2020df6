//! The breach rule of one check. Rule: `max_bad` bad probes among the last
//! `window` confirm a breach; then `window` consecutive good probes confirm
//! recovery. Why: one blip never opens an incident (or rolls back a
//! release), and a flapping endpoint does not close one. First start: no
//! history, so nothing is breached until `max_bad` bad probes are seen.

use std::collections::VecDeque;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreachRule {
    pub window: u32,
    pub max_bad: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    Steady,
    Breached,
    Recovered,
}

#[derive(Debug, Clone, Default)]
pub struct BreachState {
    /// The last `window` probes, newest last; `true` is bad.
    recent: VecDeque<bool>,
    good_streak: u32,
    breached: bool,
}

impl BreachState {
    pub fn observe(&mut self, bad: bool, rule: BreachRule) -> Transition {
        if self.breached {
            self.good_streak = if bad { 0 } else { self.good_streak + 1 };
            if self.good_streak < rule.window {
                return Transition::Steady;
            }
            *self = Self::default();
            return Transition::Recovered;
        }
        self.recent.push_back(bad);
        while self.recent.len() > rule.window as usize {
            self.recent.pop_front();
        }
        if self.bad_in_window() >= rule.max_bad {
            self.breached = true;
            self.good_streak = 0;
            return Transition::Breached;
        }
        Transition::Steady
    }

    pub fn bad_in_window(&self) -> u32 {
        self.recent.iter().filter(|b| **b).count() as u32
    }

    pub fn is_breached(&self) -> bool {
        self.breached
    }

    /// After a restart with an incident still open: breached, no streak yet.
    pub fn restore_breached(&mut self) {
        *self = Self { breached: true, ..Self::default() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Transition::*;

    const RULE: BreachRule = BreachRule { window: 5, max_bad: 3 };

    fn run(probes: &str) -> Vec<Transition> {
        let mut s = BreachState::default();
        probes.chars().map(|c| s.observe(c == 'x', RULE)).collect()
    }

    #[test]
    fn breach_and_recovery_follow_the_rule() {
        let table = [
            ("three bad in a row breach at the third", "xxx", vec![Steady, Steady, Breached]),
            ("three bad among five breach", ".x.xx", vec![Steady, Steady, Steady, Steady, Breached]),
            ("bad ones spread wider than the window do not", "x...x...x", vec![Steady; 9]),
            ("two blips never breach", "x.x......", vec![Steady; 9]),
        ];
        for (name, probes, want) in table {
            assert_eq!(run(probes), want, "{name}");
        }
    }

    #[test]
    fn recovery_needs_window_consecutive_good_probes() {
        let got = run("xxx....x.....");
        assert_eq!(got[2], Breached);
        assert!(got[3..12].iter().all(|t| *t == Steady), "a bad probe resets the streak: {got:?}");
        assert_eq!(got[12], Recovered);
    }

    #[test]
    fn after_recovery_the_history_starts_fresh() {
        let got = run("xxx.....xx.x");
        assert_eq!(got[7], Recovered);
        assert_eq!(&got[8..], &[Steady, Steady, Steady, Breached]);
    }

    #[test]
    fn a_restored_breach_recovers_like_a_live_one() {
        let mut s = BreachState::default();
        s.restore_breached();
        let got: Vec<_> = (0..5).map(|_| s.observe(false, RULE)).collect();
        assert_eq!(got, vec![Steady, Steady, Steady, Steady, Recovered]);
    }
}
