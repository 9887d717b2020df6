//! What a guarding check's probes prove, for the guard. A rollback needs
//! evidence: an answer that was wrong, or one that came later than the
//! budget. A probe that got no answer at all (connection refused, host not
//! found, a timeout with nothing back, our own network down) proves nothing
//! about the change; it only leaves the guard without data, and data
//! missing for `gate.stale_after` while armed is its own trigger (pause,
//! never roll back).
//!
//! A probe still running when its budget elapses is a *suspect*: bad for
//! the breach rule at once (so the pause is not late), but evidence only
//! once an answer arrives — a silent connection looks the same whether the
//! release hangs or the network between us broke. So a breach made of
//! suspects pauses; the rollback waits for answers to prove it.
//!
//! The breach rule is the incident rule (`window`, `max_bad`): when it
//! trips, the guard pauses at once. A rollback needs the breach *borne out*:
//! `max_bad` more bad answers among the probes started after the one that
//! tripped it (of the last `KEPT × window` probes). Noise trips the rule
//! now and then — three unrelated bad probes that happen to fall in one
//! window, about one healthy rollout in 500 in the replay bench — but is
//! then followed by good probes, while a real fault keeps answering badly
//! and bears itself out about one interval later. A pause costs a healthy
//! release a wait; a rollback costs it the release.
//!
//! The detection bound says how long a breach can take to trip the rule
//! (the pause), from the config alone. Pure: time comes in with each call.

use std::collections::VecDeque;
use std::time::Duration;

use jiff::Timestamp;

/// How many windows of probes a judge keeps: a trip is borne out by the
/// probes of the next `KEPT − 1` windows at most, then forgotten.
const KEPT: usize = 3;

/// What one probe shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Good,
    /// A wrong answer, or an answer past the budget.
    Bad,
    /// Still running past its budget: bad, proven only if an answer comes.
    Suspect,
    /// No answer at all: not evidence either way.
    Unreachable,
}

/// Where a check stands for the guard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Standing {
    Fine,
    /// The breach rule trips, but it is not proven yet: some of it is
    /// silence, or later probes have not yet borne it out. Pause, not roll back.
    Suspected,
    /// Tripped, then borne out on answers alone: evidence for a rollback.
    Confirmed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Entry {
    Good,
    Bad,
    Suspect,
}

#[derive(Debug, Clone)]
pub struct CheckJudge {
    window: usize,
    max_bad: usize,
    /// The latest probes that count, by start time, oldest first: the last
    /// `window` for the breach rule, and the ones before them so that a
    /// trip can still be borne out by the probes after it.
    recent: VecDeque<(Timestamp, Entry)>,
    last_evidence: Option<Timestamp>,
    /// Start of the probe that made the breach going on now.
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

    /// Records a probe started at `at`; returns where the check stands now.
    pub fn observe(&mut self, verdict: Verdict, at: Timestamp) -> Standing {
        let entry = match verdict {
            Verdict::Unreachable => return self.standing(),
            Verdict::Good => Entry::Good,
            Verdict::Bad => Entry::Bad,
            Verdict::Suspect => Entry::Suspect,
        };
        if entry != Entry::Suspect {
            self.saw_evidence(at);
        }
        self.recent.push_back((at, entry));
        while self.recent.len() > KEPT * self.window {
            self.recent.pop_front();
        }
        self.update_since(at)
    }

    /// A suspect probe (started at `at`) ended: with an answer it is
    /// evidence of badness; without one it never counted.
    pub fn resolve(&mut self, at: Timestamp, answered: bool) -> Standing {
        let Some(i) = self.recent.iter().position(|(t, e)| *t == at && *e == Entry::Suspect) else {
            return self.standing();
        };
        if answered {
            self.recent[i].1 = Entry::Bad;
            self.saw_evidence(at);
        } else {
            self.recent.remove(i);
        }
        self.update_since(at)
    }

    pub fn standing(&self) -> Standing {
        self.count(|_| true)
    }

    /// Where the check stands on probes started at `since` or later only:
    /// what a change made at `since` can be blamed for.
    pub fn standing_since(&self, since: Timestamp) -> Standing {
        self.count(|t| t >= since)
    }

    fn count(&self, counts: impl Fn(Timestamp) -> bool) -> Standing {
        let kept: Vec<Entry> = self.recent.iter().filter(|(t, _)| counts(*t)).map(|(_, e)| *e).collect();
        let window = |end: usize| &kept[end.saturating_sub(self.window)..end];
        // The first window of the kept probes that trips the rule; only bad
        // answers after its last probe bear the breach out.
        let Some(tripped) = (1..=kept.len()).find(|&end| self.trips(window(end))) else {
            return Standing::Fine;
        };
        let borne_out = kept[tripped..].iter().filter(|e| **e == Entry::Bad).count();
        let last = window(kept.len());
        // A breach whose last window is all good has cleared, however it was
        // borne out before: a late leader or a retry must not act on it.
        if borne_out >= self.max_bad && last.iter().any(|e| *e != Entry::Good) {
            Standing::Confirmed
        } else if self.trips(last) {
            Standing::Suspected
        } else {
            Standing::Fine
        }
    }

    /// The breach rule on one window: `max_bad` probes bad, or past their budget.
    fn trips(&self, window: &[Entry]) -> bool {
        window.iter().filter(|e| **e != Entry::Good).count() >= self.max_bad
    }

    /// When the breach going on now (suspected or confirmed) began; `None`
    /// when fine. A breach from before a target armed was not its change's doing.
    pub fn breached_since(&self) -> Option<Timestamp> {
        self.breached_since
    }

    fn saw_evidence(&mut self, at: Timestamp) {
        self.last_evidence = Some(self.last_evidence.map_or(at, |t| t.max(at)));
    }

    fn update_since(&mut self, at: Timestamp) -> Standing {
        let standing = self.standing();
        match (standing, self.breached_since) {
            (Standing::Fine, _) => self.breached_since = None,
            (_, None) => self.breached_since = Some(at),
            _ => {}
        }
        standing
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

/// The longest a breach of a check can take to trip the rule — the pause —
/// from fault onset (the rollback follows once later probes bear it out,
/// about one interval more): the fault may begin just after a probe started
/// (one interval), the first
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
    fn three_bad_of_five_trip_the_rule_and_recovery_clears() {
        let mut j = CheckJudge::new(5, 3);
        assert_eq!(j.observe(Verdict::Bad, at(0)), Standing::Fine);
        assert_eq!(j.observe(Verdict::Good, at(1)), Standing::Fine);
        assert_eq!(j.observe(Verdict::Bad, at(2)), Standing::Fine);
        assert_eq!(j.observe(Verdict::Bad, at(3)), Standing::Suspected, "third bad of the last five: pause");
        assert_eq!(j.breached_since(), Some(at(3)), "made by the probe of 3 s");
        assert_eq!(j.observe(Verdict::Good, at(4)), Standing::Suspected, "one good in five still leaves three bad");
        assert_eq!(j.breached_since(), Some(at(3)), "the same breach goes on");
        assert_eq!(j.observe(Verdict::Good, at(5)), Standing::Fine, "the oldest bad left the window");
        assert_eq!(j.breached_since(), None);
    }

    #[test]
    fn a_trip_is_confirmed_only_by_as_many_bad_answers_after_it() {
        let mut j = CheckJudge::new(5, 3);
        for s in 0..3 {
            j.observe(Verdict::Bad, at(s));
        }
        assert_eq!(j.standing(), Standing::Suspected, "tripped by the probe of 2 s");
        assert_eq!(j.observe(Verdict::Bad, at(3)), Standing::Suspected, "one bad after the trip");
        assert_eq!(j.observe(Verdict::Bad, at(4)), Standing::Suspected, "two");
        assert_eq!(j.observe(Verdict::Bad, at(5)), Standing::Confirmed, "three after the trip bear it out");
        assert_eq!(j.breached_since(), Some(at(2)), "the breach began at the trip");
    }

    #[test]
    fn noise_that_trips_the_rule_once_is_never_confirmed() {
        let mut j = CheckJudge::new(5, 3);
        let noise =
            [Verdict::Bad, Verdict::Good, Verdict::Bad, Verdict::Bad, Verdict::Good, Verdict::Good, Verdict::Bad];
        for (s, v) in (0..).zip(noise) {
            assert_ne!(j.observe(v, at(s)), Standing::Confirmed, "probe {s}");
        }
        for s in 7..30 {
            assert_eq!(j.observe(Verdict::Good, at(s)), Standing::Fine);
        }
        // A second, separate trip later is a trip again, not a confirmation of the first.
        for s in 30..33 {
            j.observe(Verdict::Bad, at(s));
        }
        assert_eq!(j.standing(), Standing::Suspected);
    }

    #[test]
    fn a_flickering_fault_is_confirmed_by_a_second_trip_within_the_kept_probes() {
        let mut j = CheckJudge::new(5, 3);
        let bad = Verdict::Bad;
        let good = Verdict::Good;
        let seen = [bad, good, bad, bad, good, good, bad, good, bad];
        for (s, v) in (0..).zip(seen) {
            assert_ne!(j.observe(v, at(s)), Standing::Confirmed, "probe {s}");
        }
        assert_eq!(j.observe(bad, at(9)), Standing::Confirmed, "three bad after the first trip");
    }

    #[test]
    fn a_confirmed_breach_followed_by_a_window_of_good_probes_has_cleared() {
        let mut j = CheckJudge::new(5, 3);
        for s in 0..6 {
            j.observe(Verdict::Bad, at(s));
        }
        assert_eq!(j.standing(), Standing::Confirmed);
        for s in 6..10 {
            assert_eq!(
                j.observe(Verdict::Good, at(s)),
                Standing::Confirmed,
                "probe {s}: one bad is still in the window"
            );
        }
        assert_eq!(j.observe(Verdict::Good, at(10)), Standing::Fine, "five good in a row: cleared");
        assert_eq!(j.breached_since(), None);
        assert_eq!(j.standing_since(at(0)), Standing::Fine);
    }

    #[test]
    fn bad_answers_spread_after_the_trip_confirm_it_until_the_trip_is_forgotten() {
        let (bad, good) = (Verdict::Bad, Verdict::Good);
        let mut j = CheckJudge::new(5, 3);
        let seen = [bad, bad, bad, good, good, bad, good, good, bad, good, good];
        for (s, v) in (0..).zip(seen) {
            assert_ne!(j.observe(v, at(s)), Standing::Confirmed, "probe {s}");
        }
        assert_eq!(j.observe(bad, at(11)), Standing::Confirmed, "a third bad answer after the trip");

        let mut j = CheckJudge::new(5, 3);
        for s in 0..3 {
            j.observe(bad, at(s));
        }
        for s in 3..21 {
            let v = if s % 6 == 2 { bad } else { good };
            assert_ne!(j.observe(v, at(s)), Standing::Confirmed, "probe {s}: the third bad comes after the trip left");
        }
        assert_eq!(j.standing(), Standing::Fine);
    }

    #[test]
    fn unreachable_probes_are_not_evidence_and_leave_the_window_alone() {
        let mut j = CheckJudge::new(5, 3);
        for s in 0..20 {
            assert_eq!(j.observe(Verdict::Unreachable, at(s)), Standing::Fine, "no answers never breach");
        }
        assert_eq!(j.last_evidence(), None);
        j.observe(Verdict::Bad, at(20));
        j.observe(Verdict::Bad, at(21));
        j.observe(Verdict::Unreachable, at(22));
        assert_eq!(j.observe(Verdict::Bad, at(23)), Standing::Suspected, "no answer between bad ones dilutes nothing");
        for s in 24..27 {
            j.observe(Verdict::Unreachable, at(s * 10));
            j.observe(Verdict::Bad, at(s * 10 + 1));
        }
        assert_eq!(j.standing(), Standing::Confirmed);
    }

    #[test]
    fn suspects_pause_at_once_and_prove_the_breach_only_when_answers_come() {
        let mut j = CheckJudge::new(5, 3);
        j.observe(Verdict::Suspect, at(0));
        j.observe(Verdict::Suspect, at(1));
        assert_eq!(j.observe(Verdict::Suspect, at(2)), Standing::Suspected, "three over budget, no answer yet");
        assert_eq!(j.breached_since(), Some(at(2)));
        assert_eq!(j.last_evidence(), None, "silence is not evidence");
        for s in 0..3 {
            assert_eq!(j.resolve(at(s), true), Standing::Suspected, "late answers of the trip itself");
        }
        assert_eq!(j.last_evidence(), Some(at(2)));
        for s in 3..6 {
            j.observe(Verdict::Suspect, at(s));
        }
        assert_eq!(j.resolve(at(3), true), Standing::Suspected);
        assert_eq!(j.resolve(at(4), true), Standing::Suspected);
        assert_eq!(j.standing_since(at(0)), Standing::Suspected, "the third after the trip is still silent");
        assert_eq!(j.resolve(at(5), true), Standing::Confirmed, "three late answers after the trip prove it");
    }

    #[test]
    fn only_probes_since_arming_count_against_the_change() {
        let mut j = CheckJudge::new(5, 3);
        j.observe(Verdict::Bad, at(0));
        j.observe(Verdict::Bad, at(1));
        // Armed at 2: one more bad makes three in the window, but only one is the change's.
        assert_eq!(j.observe(Verdict::Bad, at(2)), Standing::Suspected);
        assert_eq!(j.standing_since(at(2)), Standing::Fine);
        j.observe(Verdict::Suspect, at(3));
        assert_eq!(j.standing_since(at(2)), Standing::Fine, "two since arming");
        j.observe(Verdict::Suspect, at(4));
        assert_eq!(j.standing_since(at(2)), Standing::Suspected, "the change's own trip");
        j.resolve(at(3), true);
        j.resolve(at(4), true);
        for s in 5..8 {
            j.observe(Verdict::Bad, at(s));
        }
        assert_eq!(j.standing(), Standing::Confirmed);
        assert_eq!(j.standing_since(at(2)), Standing::Confirmed, "borne out after the change's own trip");
        assert_eq!(j.standing_since(at(5)), Standing::Suspected, "since 5 only the trip itself");
    }

    #[test]
    fn suspects_that_never_answer_drop_out() {
        let mut j = CheckJudge::new(5, 3);
        for s in 0..3 {
            j.observe(Verdict::Suspect, at(s));
        }
        assert_eq!(j.standing(), Standing::Suspected);
        // Timeouts with nothing back: the network, or a hung release — no evidence either way.
        for s in 0..3 {
            j.resolve(at(s), false);
        }
        assert_eq!(j.standing(), Standing::Fine);
        assert_eq!(j.breached_since(), None);
        assert_eq!(j.resolve(at(9), true), Standing::Fine, "an unknown probe changes nothing");
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
