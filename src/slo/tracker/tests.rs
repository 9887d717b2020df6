use std::time::Duration;

use super::*;

fn slo(window_days: u64) -> Slo {
    Slo {
        name: "payments".into(),
        checks: vec!["payments-health".into(), "payments-status".into()],
        objective: 0.999,
        window: Duration::from_secs(window_days * 86_400),
    }
}

fn t(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn window<'a>(st: &'a SloStatus, name: &str) -> &'a WindowStatus {
    st.windows.iter().find(|w| w.window == name).unwrap()
}

#[test]
fn windows_count_only_their_minutes_and_every_check_of_the_slo() {
    let mut tr = SloTracker::new(&[slo(30)], Duration::from_secs(6));
    let now = t("2026-11-26T12:00:30Z");
    // One probe a minute for the last 2 hours on each check; the 10 newest minutes of payments-health fail.
    for m in 0..120 {
        let at = now - Duration::from_secs(60 * m);
        tr.record("payments-health", at, m >= 10);
        tr.record("payments-status", at, true);
    }
    tr.record("revenue-status", now, false); // not part of this SLO
    let st = &tr.status(now)[0];
    assert_eq!((window(st, "5m").good, window(st, "5m").total), (5, 10));
    assert_eq!((window(st, "30m").good, window(st, "30m").total), (50, 60));
    assert_eq!((window(st, "2h").good, window(st, "2h").total), (230, 240));
    assert_eq!(window(st, "30d").total, 240);
    assert_eq!(st.window, "30d");
    let burn_5m = window(st, "5m").burn_rate.unwrap();
    assert!((burn_5m - 500.0).abs() < 1e-6, "50 % bad at 99.9 % is a 500× burn, got {burn_5m}");
    // 10 bad of 240 over the SLO window: 4.17 % bad, the budget is overspent by 40.7×.
    let remaining = st.error_budget_remaining.unwrap();
    assert!((remaining - (1.0 - (10.0 / 240.0) / 0.001)).abs() < 1e-9);
    assert!(st.conditions[0].firing, "1h and 5m both far above 14.4×");
}

#[test]
fn window_edges_include_the_current_minute_and_exclude_the_one_before_the_window() {
    let mut tr = SloTracker::new(&[slo(30)], Duration::from_secs(6));
    let now = t("2026-11-26T12:04:59Z");
    tr.record("payments-health", t("2026-11-26T12:00:00Z"), false); // first minute of the 5m window
    tr.record("payments-health", t("2026-11-26T11:59:59Z"), false); // just outside it
    tr.record("payments-health", t("2026-11-26T12:04:58Z"), true);
    let st = &tr.status(now)[0];
    assert_eq!((window(st, "5m").good, window(st, "5m").total), (1, 2));
    assert_eq!(window(st, "30m").total, 3);
}

#[test]
fn no_data_means_no_sli_and_no_firing() {
    let tr = SloTracker::new(&[slo(30)], Duration::from_secs(6));
    let st = &tr.status(t("2026-11-26T12:00:00Z"))[0];
    assert_eq!(st.sli, None);
    assert_eq!(st.error_budget_remaining, None);
    assert!(st.conditions.iter().all(|c| !c.firing));
}

#[test]
fn a_restart_in_the_middle_of_a_window_keeps_the_window_and_absolute_rollups() {
    let start = t("2026-11-26T10:00:10Z");
    let mut before = SloTracker::new(&[slo(30)], Duration::from_secs(6));
    for m in 0..90 {
        before.record("payments-health", start + Duration::from_secs(60 * m), m % 10 != 0);
    }
    let restart = start + Duration::from_secs(60 * 89 + 20);
    let saved = before.take_dirty(restart);
    assert_eq!(saved.len(), 90);

    let mut after = SloTracker::new(&[slo(30)], Duration::from_secs(6));
    after.restore(&saved, restart);
    assert_eq!(after.status(restart), before.status(restart), "the same windows after a restart");
    // A probe in the minute of the restart continues its stored count: the saved row stays absolute.
    after.record("payments-health", restart + Duration::from_secs(5), true);
    let rows = after.take_dirty(restart + Duration::from_secs(5));
    let last = saved.iter().find(|r| r.minute == minute_of(restart)).unwrap();
    assert_eq!(
        rows,
        vec![MinuteRollup {
            check: "payments-health".into(),
            minute: last.minute,
            good: last.good + 1,
            total: last.total + 1
        }]
    );
}

#[test]
fn dirty_rollups_are_handed_out_once_and_old_minutes_are_forgotten() {
    let mut tr = SloTracker::new(&[slo(1)], Duration::from_secs(6));
    let now = t("2026-11-26T12:00:00Z");
    tr.record("payments-health", now, true);
    assert_eq!(tr.take_dirty(now).len(), 1);
    assert!(tr.take_dirty(now).is_empty());
    tr.take_dirty(now + Duration::from_secs(3600));
    assert!(tr.recent.is_empty(), "minutes that cannot change again are dropped");
    assert_eq!(tr.retention_minutes(), 4_320 + 1_440, "a 1d SLO still keeps the 3d window, plus a day");
}

#[test]
fn a_window_of_its_own_is_added_when_not_standard() {
    let mut s = slo(7);
    s.window = Duration::from_secs(7 * 86_400);
    let st = &SloTracker::new(&[s], Duration::from_secs(6)).status(t("2026-11-26T12:00:00Z"))[0];
    assert_eq!(st.window, "7d");
    assert_eq!(st.windows.last().unwrap().window, "7d");
    assert_eq!(st.windows.len(), 8);
}

#[test]
fn a_late_restore_adds_to_what_was_counted_since_the_start() {
    let now = t("2026-11-26T12:00:30Z");
    let mut tr = SloTracker::new(&[slo(30)], Duration::from_secs(6));
    tr.record("payments-health", now, true); // counted while storage was still down
    let stored = MinuteRollup { check: "payments-health".into(), minute: minute_of(now), good: 10, total: 12 };
    tr.restore(std::slice::from_ref(&stored), now);
    let rows = tr.take_dirty(now);
    assert_eq!(rows, vec![MinuteRollup { good: 11, total: 13, ..stored }]);
    assert_eq!(window(&tr.status(now)[0], "5m").total, 13);
}

#[test]
fn a_probe_ending_a_long_timeout_later_still_finds_its_minute() {
    let start = t("2026-11-26T12:00:00Z");
    let mut tr = SloTracker::new(&[slo(30)], Duration::from_secs(600));
    tr.record("payments-health", start, true);
    tr.take_dirty(start + Duration::from_secs(590)); // persisted while the slow probe still runs
    tr.record("payments-health", start, false); // it ends 10 minutes later
    let rows = tr.take_dirty(start + Duration::from_secs(600));
    assert_eq!((rows[0].good, rows[0].total), (1, 2), "the minute's count goes on, not restarts at 0");
}

#[test]
fn budgets_match_the_full_status() {
    let mut tr = SloTracker::new(&[slo(30)], Duration::from_secs(6));
    let now = t("2026-11-26T12:00:30Z");
    for m in 0..100 {
        tr.record("payments-health", now - Duration::from_secs(60 * m), m != 3);
    }
    let budgets = tr.budgets(now);
    assert_eq!(budgets, vec![("payments", tr.status(now)[0].error_budget_remaining)]);
}
