use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::clock::ManualClock;
use crate::config::MapEnv;

const YAML: &str =
    "environment: dev\nchecks:\n  - { name: pay, url: 'http://127.0.0.1:1/', interval: 2s, budget: 3s, timeout: 6s }\n";

fn board() -> (Board, Arc<ManualClock>) {
    let config = crate::config::parse(YAML, "t.yaml", &MapEnv::default()).unwrap();
    let clock = Arc::new(ManualClock::new("2026-11-26T12:00:00Z".parse().unwrap()));
    (Board::new(&config.checks, clock.clone()), clock)
}

fn result(clock: &ManualClock, seq: u64, outcome: Outcome, early: bool) -> ProbeResult {
    ProbeResult {
        check: "pay".into(),
        seq,
        started_at: clock.now(),
        latency: Duration::from_millis(100),
        ttfb: None,
        status: Some(200),
        outcome,
        reason: String::new(),
        over_budget_early: early,
    }
}

fn up(b: &Board) -> bool {
    b.snapshot()[0].up
}

#[test]
fn an_over_budget_probe_is_bad_until_it_ends_and_the_counter_pairs_up() {
    let (b, clock) = board();
    b.on_event(ProbeEvent::Finished(&result(&clock, 1, Outcome::Ok, false)));
    assert!(up(&b));
    b.on_event(ProbeEvent::OverBudget { check: "pay", started_at: clock.now() });
    b.on_event(ProbeEvent::OverBudget { check: "pay", started_at: clock.now() });
    assert!(!up(&b) && b.snapshot()[0].over_budget_in_flight);
    b.on_event(ProbeEvent::Finished(&result(&clock, 2, Outcome::Slow, true)));
    assert!(b.snapshot()[0].over_budget_in_flight, "one is still running");
    b.on_event(ProbeEvent::Finished(&result(&clock, 3, Outcome::Slow, true)));
    assert!(!b.snapshot()[0].over_budget_in_flight);
    b.on_event(ProbeEvent::Finished(&result(&clock, 4, Outcome::Ok, false)));
    assert!(up(&b));
}

#[test]
fn an_older_probe_finishing_late_does_not_replace_a_newer_result() {
    let (b, clock) = board();
    b.on_event(ProbeEvent::Finished(&result(&clock, 2, Outcome::Ok, false)));
    b.on_event(ProbeEvent::Finished(&result(&clock, 1, Outcome::Failed, false)));
    let s = &b.snapshot()[0];
    assert_eq!(s.last.as_ref().unwrap().seq, 2);
    assert!(s.up);
}

#[test]
fn order_follows_launch_not_the_wall_clock() {
    let (b, clock) = board();
    b.on_event(ProbeEvent::Finished(&result(&clock, 1, Outcome::Failed, false)));
    clock.set("2026-11-26T11:59:00Z".parse().unwrap()); // NTP stepped the clock back
    b.on_event(ProbeEvent::Finished(&result(&clock, 2, Outcome::Ok, false)));
    assert_eq!(b.snapshot()[0].last.as_ref().unwrap().seq, 2);
}

#[test]
fn a_result_older_than_interval_plus_timeout_is_stale_and_not_up() {
    let (b, clock) = board();
    assert_eq!(b.without_fresh_result(), ["pay"]);
    b.on_event(ProbeEvent::Finished(&result(&clock, 1, Outcome::Ok, false)));
    assert!(b.without_fresh_result().is_empty());
    clock.advance(Duration::from_secs(9)); // 2s interval + 6s timeout + 1s slack
    assert!(up(&b));
    clock.advance(Duration::from_secs(1));
    let s = &b.snapshot()[0];
    assert!(!s.up && s.stale);
    assert_eq!(b.without_fresh_result(), ["pay"]);
    let mut flags = Vec::new();
    b.each_up(|name, up| flags.push((name.to_string(), up)));
    assert_eq!(flags, [("pay".to_string(), false)]);
}

#[test]
fn skipped_probes_are_counted() {
    let (b, _) = board();
    b.on_event(ProbeEvent::Skipped { check: "pay", reason: crate::probe::SkipReason::RateLimited });
    b.on_event(ProbeEvent::Skipped { check: "nope", reason: crate::probe::SkipReason::RateLimited });
    assert_eq!(b.snapshot()[0].skipped_total, 1);
}

#[test]
fn bad_since_marks_the_first_bad_probe_until_the_check_is_good_again() {
    let (b, clock) = board();
    b.on_event(ProbeEvent::Finished(&result(&clock, 1, Outcome::Ok, false)));
    assert_eq!(b.snapshot()[0].bad_since, None);
    let first_bad = clock.now();
    b.on_event(ProbeEvent::OverBudget { check: "pay", started_at: first_bad });
    clock.advance(Duration::from_secs(2));
    b.on_event(ProbeEvent::Finished(&result(&clock, 2, Outcome::Failed, false)));
    assert_eq!(b.snapshot()[0].bad_since, Some(first_bad));
    b.on_event(ProbeEvent::Finished(&result(&clock, 3, Outcome::Slow, true)));
    b.on_event(ProbeEvent::Finished(&result(&clock, 4, Outcome::Ok, false)));
    assert_eq!(b.snapshot()[0].bad_since, None);
}

#[test]
fn the_sparkline_ring_keeps_the_last_probes_in_launch_order() {
    let (b, clock) = board();
    for seq in (1..=RECENT_PROBES as u64 + 5).filter(|s| *s != 7) {
        b.on_event(ProbeEvent::Finished(&result(&clock, seq, Outcome::Ok, false)));
    }
    b.on_event(ProbeEvent::Finished(&result(&clock, 7, Outcome::Slow, false)));
    let recent = &b.recent()["pay"];
    assert_eq!(recent.len(), RECENT_PROBES);
    let seqs: Vec<u64> = recent.iter().map(|p| p.seq).collect();
    assert_eq!(seqs, (6..=RECENT_PROBES as u64 + 5).collect::<Vec<_>>(), "a late finisher takes its place");
    assert_eq!(recent[1].outcome, Outcome::Slow);
    b.on_event(ProbeEvent::Finished(&result(&clock, 2, Outcome::Failed, false)));
    assert_eq!(b.recent()["pay"][0].seq, 6, "older than every probe kept: dropped");
}
