//! What a guarding check's probes prove, for the guard. A rollback needs
//! evidence: an answer that was wrong, or one that took longer than the
//! budget. A probe that got no answer at all (connection refused, host not
//! found, our own network down) proves nothing about the change; it only
//! leaves the guard without data, and data missing for `gate.stale_after`
//! while armed is its own trigger (pause, never roll back).
//!
//! The breach rule is the incident rule (`window`, `max_bad`) applied to
//! evidence only. The detection bound says how long a breach can take to be
//! confirmed, from the config alone. Pure: time comes in with each call.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;

/// What one probe proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Good,
    /// A wrong answer, or an answer (or silence) past the budget.
    Bad,
    /// No answer at all: not evidence either way.
    Unreachable,
}

#[derive(Debug, Clone)]
pub struct CheckJudge {
    window: usize,
    max_bad: usize,
    /// Badness of the latest probes with evidence, oldest first.
    recent: VecDeque<bool>,
    last_evidence: Option<Timestamp>,
    /// Start of the probe that confirmed the breach going on now.
    breached_since: Option<Timestamp>,
}

impl CheckJudge {
    pub fn new(window: u32, max_bad: u32) -> Self {
        Self {
            window: window.max(1) as usize,
            max_bad: max_bad.max(1) as usize,
            recent: VecDeque::new(),
            last_evidence: None,
            breached_since: None,
        }
    }

    /// Records a probe; returns whether the check is breached with evidence now.
    pub fn observe(&mut self, verdict: Verdict, at: Timestamp) -> bool {
        let bad = match verdict {
            Verdict::Unreachable => return self.breached(),
            Verdict::Good => false,
            Verdict::Bad => true,
        };
        self.last_evidence = Some(self.last_evidence.map_or(at, |t| t.max(at)));
        self.recent.push_back(bad);
        while self.recent.len() > self.window {
            self.recent.pop_front();
        }
        let breached = self.breached();
        match (breached, self.breached_since) {
            (true, None) => self.breached_since = Some(at),
            (false, Some(_)) => self.breached_since = None,
            _ => {}
        }
        breached
    }

    /// When the breach going on now was confirmed; `None` when not breached.
    /// A breach confirmed before a target armed was not caused by its change.
    pub fn breached_since(&self) -> Option<Timestamp> {
        self.breached_since
    }

    pub fn breached(&self) -> bool {
        self.recent.iter().filter(|b| **b).count() >= self.max_bad
    }

    /// Whether the check has had no evidence for `stale_after`, counting from
    /// `since` (when the guard armed) if it never had any after that.
    pub fn is_stale(&self, now: Timestamp, since: Timestamp, stale_after: Duration) -> bool {
        let from = self.last_evidence.map_or(since, |t| t.max(since));
        let stale_after = jiff::SignedDuration::try_from(stale_after).unwrap_or(jiff::SignedDuration::MAX);
        now.duration_since(from) >= stale_after
    }

    pub fn last_evidence(&self) -> Option<Timestamp> {
        self.last_evidence
    }
}

/// The longest a breach of a check can take to be confirmed, from fault onset:
/// the fault may begin just after a probe started (one interval), the first
/// affected probe is bad once its budget elapses, and the others needed to
/// confirm follow it. While the guard watches the check, confirmation probes
/// follow a suspect probe every `confirm_interval`; otherwise they come at the
/// check's own interval.
pub fn detection_bound(
    interval: Duration,
    budget: Duration,
    max_bad: u32,
    confirm_interval: Duration,
    guarded: bool,
) -> Duration {
    let step = if guarded { confirm_interval.min(interval) } else { interval };
    interval + budget + step * max_bad.saturating_sub(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + s).unwrap()
    }

    #[test]
    fn three_bad_of_five_with_evidence_confirm_and_recovery_clears() {
        let mut j = CheckJudge::new(5, 3);
        assert!(!j.observe(Verdict::Bad, at(0)));
        assert!(!j.observe(Verdict::Good, at(1)));
        assert!(!j.observe(Verdict::Bad, at(2)));
        assert!(j.observe(Verdict::Bad, at(3)), "third bad of the last five");
        assert_eq!(j.breached_since(), Some(at(3)), "confirmed by the probe of 3 s");
        assert!(j.observe(Verdict::Good, at(4)), "one good in five still leaves three bad");
        assert_eq!(j.breached_since(), Some(at(3)), "the same breach goes on");
        assert!(!j.observe(Verdict::Good, at(5)), "the oldest bad left the window");
        assert_eq!(j.breached_since(), None);
    }

    #[test]
    fn unreachable_probes_are_not_evidence_and_leave_the_window_alone() {
        let mut j = CheckJudge::new(5, 3);
        for s in 0..20 {
            assert!(!j.observe(Verdict::Unreachable, at(s)), "no answers never confirm a breach");
        }
        assert_eq!(j.last_evidence(), None);
        j.observe(Verdict::Bad, at(20));
        j.observe(Verdict::Bad, at(21));
        j.observe(Verdict::Unreachable, at(22));
        assert!(j.observe(Verdict::Bad, at(23)), "unreachable between bad answers does not dilute them");
    }

    #[test]
    fn staleness_counts_from_the_last_evidence_or_from_arming() {
        let mut j = CheckJudge::new(5, 3);
        let thirty = Duration::from_secs(30);
        assert!(!j.is_stale(at(29), at(0), thirty), "armed at 0, nothing yet, 29 s");
        assert!(j.is_stale(at(30), at(0), thirty), "30 s without evidence since arming");
        j.observe(Verdict::Good, at(10));
        j.observe(Verdict::Unreachable, at(35));
        assert!(!j.is_stale(at(39), at(0), thirty));
        assert!(j.is_stale(at(40), at(0), thirty), "unreachable answers do not refresh it");
        assert!(!j.is_stale(at(40), at(15), thirty), "evidence before arming counts from arming");
    }

    #[test]
    fn the_detection_bound_follows_the_issue_formula() {
        let ms = Duration::from_millis;
        // payments: 1 s interval, 3 s budget, 3 of 5, 250 ms confirmations.
        assert_eq!(detection_bound(ms(1_000), ms(3_000), 3, ms(250), true), ms(4_500));
        assert_eq!(detection_bound(ms(1_000), ms(3_000), 3, ms(250), false), ms(6_000));
        // Confirmations never come slower than the check's own interval.
        assert_eq!(detection_bound(ms(100), ms(500), 3, ms(250), true), ms(800));
        assert_eq!(detection_bound(ms(2_000), ms(500), 1, ms(250), true), ms(2_500));
    }
}
