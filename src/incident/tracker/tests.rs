use super::*;

const RULE: BreachRule = BreachRule { window: 5, max_bad: 3 };

fn t0() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn at(secs: u64) -> Timestamp {
    t0() + Duration::from_secs(secs)
}

fn tracker() -> IncidentTracker {
    IncidentTracker::new(RULE, 2_300_000.0, HashMap::from([("payments-health".to_string(), 1.0)]))
}

fn bad(tr: &mut IncidentTracker, s: u64, ms: u64) -> Option<IncidentChange> {
    let latency = Some(Duration::from_millis(ms));
    tr.observe(Observation::Bad { check: "payments-health", at: at(s), latency, reason: "slow" }, at(s + 4))
}

fn good(tr: &mut IncidentTracker, s: u64) -> Option<IncidentChange> {
    tr.observe(Observation::Good { check: "payments-health", at: at(s), latency: Duration::from_millis(80) }, at(s + 1))
}

#[test]
fn a_confirmed_breach_opens_an_incident_dated_from_its_first_bad_probe() {
    let mut tr = tracker();
    assert_eq!(good(&mut tr, 0), None);
    assert_eq!(bad(&mut tr, 10, 3_500), None);
    assert_eq!(bad(&mut tr, 20, 3_600), None);
    let Some(IncidentChange::Opened(i)) = bad(&mut tr, 30, 3_700) else { panic!("no incident") };
    assert_eq!(i.started_at, at(10));
    assert_eq!((i.probes_bad, i.probes_total), (3, 4));
    assert_eq!(i.id, format!("inc-payments-health-{}", at(10).as_millisecond()));
    assert_eq!(i.reason, "slow");
    assert_eq!(i.ended_at, None);
    assert!(tr.is_breached("payments-health"));
}

#[test]
fn recovery_closes_it_at_the_start_of_the_good_streak_with_its_figures() {
    let mut tr = tracker();
    for s in [0, 10, 20] {
        bad(&mut tr, s, 3_500);
    }
    bad(&mut tr, 30, 5_000);
    for s in [40, 50, 60, 70] {
        assert!(matches!(good(&mut tr, s), Some(IncidentChange::Updated(_))));
    }
    let Some(IncidentChange::Closed(i)) = good(&mut tr, 80) else { panic!("not closed") };
    assert_eq!(i.ended_at, Some(at(40)));
    assert_eq!(i.worst_latency, Duration::from_millis(5_000));
    assert_eq!((i.probes_bad, i.probes_total), (4, 9));
    // 40 s of a check carrying all of €2.3M ARR: 2,300,000 / 525,600 min × 2/3 min.
    let expected = 2_300_000.0 / 525_600.0 * (40.0 / 60.0);
    assert!((i.revenue_at_risk_eur - expected).abs() < 1e-6, "{}", i.revenue_at_risk_eur);
    assert!(tr.open(at(90)).is_empty());
    assert_eq!(tr.recent(at(90)), vec![i]);
}

#[test]
fn revenue_at_risk_grows_while_open_and_follows_the_revenue_share() {
    let mut tr = IncidentTracker::new(RULE, 2_300_000.0, HashMap::from([("domains".to_string(), 0.4)]));
    for s in [0, 1, 2] {
        tr.observe(Observation::Bad { check: "domains", at: at(s), latency: None, reason: "x" }, at(s));
    }
    let per_minute = 2_300_000.0 / 525_600.0 * 0.4;
    assert!((tr.revenue_at_risk(at(600)) - per_minute * 10.0).abs() < 1e-6);
    assert!((tr.revenue_at_risk(at(1200)) - per_minute * 20.0).abs() < 1e-6);
    let unshared = IncidentTracker::new(RULE, 2_300_000.0, HashMap::new());
    assert_eq!(unshared.revenue_at_risk(at(600)), 0.0);
}

#[test]
fn the_final_latency_of_an_early_verdict_counts_once_it_is_known() {
    let mut tr = tracker();
    for s in [0, 10, 20] {
        let early = Observation::Bad { check: "payments-health", at: at(s), latency: None, reason: "over budget" };
        tr.observe(early, at(s + 3)); // opened on early verdicts alone
    }
    assert_eq!(tr.open(at(25))[0].worst_latency, Duration::ZERO, "no latency is known yet");
    let change =
        tr.observe(Observation::Latency { check: "payments-health", latency: Duration::from_millis(9_000) }, at(30));
    let Some(IncidentChange::Updated(i)) = change else { panic!("no update") };
    assert_eq!(i.worst_latency, Duration::from_millis(9_000));
    assert_eq!(i.probes_total, 3, "a final latency is not another probe");
}

#[test]
fn p95_is_nearest_rank() {
    let samples: VecDeque<Duration> = (1..=100).map(Duration::from_millis).collect();
    assert_eq!(p95(&samples), Duration::from_millis(95));
    assert_eq!(p95(&VecDeque::new()), Duration::ZERO);
    assert_eq!(p95(&VecDeque::from([Duration::from_millis(7)])), Duration::from_millis(7));
}

#[test]
fn an_incident_left_open_by_a_restart_closes_on_recovery() {
    let mut before = tracker();
    for s in [0, 10, 20] {
        bad(&mut before, s, 3_500);
    }
    let open = before.open(at(25));
    let mut after = tracker();
    assert!(after.restore(open.clone(), at(25)).is_empty());
    assert_eq!(after.open(at(25)), open);
    let changes: Vec<_> = (0..5).map(|k| good(&mut after, 30 + 10 * k)).collect();
    assert!(matches!(changes.last(), Some(Some(IncidentChange::Closed(i))) if i.id == open[0].id));
}

#[test]
fn revenue_at_risk_never_exceeds_all_of_the_arr() {
    let shares = HashMap::from([("a".to_string(), 1.0), ("b".to_string(), 1.0)]);
    let mut tr = IncidentTracker::new(RULE, 2_300_000.0, shares);
    for check in ["a", "b"] {
        for s in [0, 1, 2] {
            tr.observe(Observation::Bad { check, at: at(s), latency: None, reason: "x" }, at(s));
        }
    }
    let all = 2_300_000.0 / 525_600.0 * 10.0;
    assert!((tr.revenue_at_risk(at(600)) - all).abs() < 1e-6, "two revenue checks down is still one ARR");
}

#[test]
fn restored_incidents_of_removed_checks_close_and_their_p95_is_kept() {
    let mut before = tracker();
    for s in [0, 10, 20] {
        bad(&mut before, s, 3_500);
    }
    let mut open = before.open(at(25));
    let mut gone = open[0].clone();
    gone.id = "inc-old-check".into();
    gone.check = "old-check".into();
    open.push(gone);
    let mut after = tracker();
    let closed = after.restore(open, at(30));
    assert_eq!(closed.len(), 1);
    assert_eq!((closed[0].check.as_str(), closed[0].ended_at), ("old-check", Some(at(30))));
    let Some(IncidentChange::Updated(i)) = good(&mut after, 40) else { panic!("no update") };
    assert_eq!(i.p95_latency, Duration::from_millis(3_500), "the stored p95 is a floor, not lost");
}
