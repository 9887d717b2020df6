use std::time::Duration;

use jiff::civil::{Time, Weekday};
use jiff::tz::TimeZone;

use super::*;
use crate::config::DeployWindow;
use crate::gate::{
    BACKUP_STALE, CHECK_FAILING, DATA_STALE, INCIDENT_OPEN, OUTSIDE_WINDOW, ROLLOUT_IN_PROGRESS, SLO_BUDGET_LOW,
};

/// Tue 25 Nov 2025, 13:00 in Paris: inside the staging slot.
const IN_SLOT: &str = "2025-11-25T12:00:00Z";
/// Tue 25 Nov 2025, 15:02 in Paris: two minutes after the slot closed.
const AFTER_SLOT: &str = "2025-11-25T14:02:00Z";

fn at(text: &str) -> Timestamp {
    text.parse().unwrap()
}

fn secs(n: i64) -> SignedDuration {
    SignedDuration::from_secs(n)
}

/// A gate state that reads as the scenario; `decide()` runs the gate on it.
struct Scenario {
    env: Environment,
    now: Timestamp,
    config: Gate,
    checks: Vec<CheckView<'static>>,
    slos: Vec<SloView<'static>>,
    incidents: Vec<IncidentView<'static>>,
    rollouts: Vec<&'static str>,
    backup: Option<Backup>,
}

impl Scenario {
    /// Prod at `now`: two fresh good checks, a healthy SLO, a backup 10 minutes old.
    fn healthy(now: &str) -> Self {
        let now = at(now);
        let fresh = now - secs(2);
        Self {
            env: Environment::Prod,
            now,
            config: Gate {
                stale_after: Duration::from_secs(30),
                min_error_budget_remaining: 0.1,
                require_backup_within: Some(Duration::from_secs(3600)),
                windows: vec![],
            },
            checks: ["revenue-status", "payments-health"]
                .map(|name| CheckView { name, up: true, last_result_at: Some(fresh), reason: None, bad_since: None })
                .to_vec(),
            slos: vec![SloView { name: "revenue-api", error_budget_remaining: Some(0.8) }],
            incidents: vec![],
            rollouts: vec![],
            backup: Some(Backup {
                environment: Environment::Prod,
                id: "b-1".into(),
                completed_at: now - secs(600),
                ok: true,
            }),
        }
    }

    fn in_env(mut self, env: Environment) -> Self {
        self.env = env;
        if let Some(b) = &mut self.backup {
            b.environment = env;
        }
        self
    }

    fn check(&mut self, name: &'static str) -> &mut CheckView<'static> {
        let now = self.now;
        if !self.checks.iter().any(|c| c.name == name) {
            self.checks.push(CheckView { name, up: true, last_result_at: Some(now), reason: None, bad_since: None });
        }
        self.checks.iter_mut().find(|c| c.name == name).unwrap()
    }

    fn failing(mut self, name: &'static str, reason: &'static str, for_secs: i64) -> Self {
        let since = self.now - secs(for_secs);
        let c = self.check(name);
        (c.up, c.reason, c.bad_since) = (false, Some(reason), Some(since));
        self
    }

    fn last_result(mut self, name: &'static str, age_secs: i64) -> Self {
        let when = self.now - secs(age_secs);
        self.check(name).last_result_at = Some(when);
        self
    }

    fn never_probed(mut self, name: &'static str) -> Self {
        self.check(name).last_result_at = None;
        self
    }

    fn budget(mut self, name: &'static str, left: Option<f64>) -> Self {
        self.slos.retain(|s| s.name != name);
        self.slos.push(SloView { name, error_budget_remaining: left });
        self
    }

    fn incident(mut self, id: &'static str, check: &'static str, age_secs: i64) -> Self {
        self.incidents.push(IncidentView { id, check, started_at: self.now - secs(age_secs) });
        self
    }

    fn rolling_out(mut self, target: &'static str) -> Self {
        self.rollouts.push(target);
        self
    }

    fn backup(mut self, f: impl FnOnce(&mut Option<Backup>)) -> Self {
        f(&mut self.backup);
        self
    }

    fn backup_age(self, age_secs: i64) -> Self {
        let when = self.now - secs(age_secs);
        self.backup(|b| b.iter_mut().for_each(|b| b.completed_at = when))
    }

    fn window(mut self, w: DeployWindow) -> Self {
        self.config.windows.push(w);
        self
    }

    fn decide(&self) -> GateDecision {
        decide(&GateInput {
            environment: self.env,
            now: self.now,
            config: &self.config,
            checks: &self.checks,
            slos: &self.slos,
            open_incidents: &self.incidents,
            rollouts_in_progress: &self.rollouts,
            latest_backup: self.backup.as_ref(),
        })
    }

    fn codes(&self) -> Vec<&'static str> {
        self.decide().reasons.iter().map(|r| r.code).collect()
    }

    /// The one reason, which must have `code`.
    fn only(&self, code: &str) -> String {
        let d = self.decide();
        assert!(!d.go);
        assert_eq!(d.reasons.iter().map(|r| r.code).collect::<Vec<_>>(), [code], "{:#?}", d.reasons);
        d.reasons[0].message.clone()
    }
}

fn paris_slot(envs: &[Environment]) -> DeployWindow {
    use Weekday::*;
    DeployWindow {
        name: "staging-shared-slot".into(),
        environments: envs.to_vec(),
        timezone: TimeZone::get("Europe/Paris").unwrap(),
        days: vec![Monday, Tuesday, Wednesday, Thursday, Friday],
        start: Time::constant(12, 0, 0, 0),
        end: Time::constant(15, 0, 0, 0),
    }
}

fn new_york_evening() -> DeployWindow {
    DeployWindow {
        name: "new-york-evening".into(),
        environments: vec![Environment::Prod],
        timezone: TimeZone::get("America/New_York").unwrap(),
        days: vec![Weekday::Tuesday],
        start: Time::constant(17, 0, 0, 0),
        end: Time::constant(18, 0, 0, 0),
    }
}

#[test]
fn a_healthy_platform_in_its_window_is_go() {
    let s =
        Scenario::healthy(IN_SLOT).in_env(Environment::StagingShared).window(paris_slot(&[Environment::StagingShared]));
    let d = s.decide();
    assert!(d.go, "{:#?}", d.reasons);
    assert!(d.reasons.is_empty());
    assert_eq!((d.environment, d.evaluated_at), (Environment::StagingShared, at(IN_SLOT)));
}

#[test]
fn a_failing_check_names_itself_its_reason_and_since_when() {
    let msg = Scenario::healthy(IN_SLOT).failing("payments-health", "HTTP 503", 200).only(CHECK_FAILING);
    assert_eq!(
        msg,
        "Check payments-health is failing since 2025-11-25T11:56:40Z (3m20s ago): HTTP 503. Fix it, or wait until it \
         passes again, before deploying."
    );
}

#[test]
fn a_low_error_budget_gives_what_is_left_and_the_minimum() {
    let msg = Scenario::healthy(IN_SLOT).budget("revenue-api", Some(0.042)).only(SLO_BUDGET_LOW);
    assert!(msg.starts_with("SLO revenue-api has 4.2% of its error budget left, below the 10% minimum."), "{msg}");
}

#[test]
fn an_open_incident_is_named_with_its_check() {
    let msg = Scenario::healthy(IN_SLOT).incident("inc-7", "payments-health", 900).only(INCIDENT_OPEN);
    assert!(msg.starts_with("Incident inc-7 is open on check payments-health since 2025-11-25T11:45:00Z (15m ago)."));
}

#[test]
fn outside_the_window_names_it_the_local_time_and_the_next_opening() {
    let s = Scenario::healthy(AFTER_SLOT)
        .in_env(Environment::StagingShared)
        .window(paris_slot(&[Environment::StagingShared]));
    assert_eq!(
        s.only(OUTSIDE_WINDOW),
        "staging-shared may deploy only in staging-shared-slot (Mon–Fri 12:00–15:00 Europe/Paris); it is now Tue 25 \
         Nov 15:02 in Europe/Paris. Next opening: Wed 26 Nov 12:00 Europe/Paris (in 20h58m)."
    );
}

#[test]
fn outside_several_windows_names_each_and_the_soonest() {
    let s = Scenario::healthy(AFTER_SLOT).window(paris_slot(&[Environment::Prod])).window(new_york_evening());
    assert_eq!(
        s.only(OUTSIDE_WINDOW),
        "prod may deploy only in staging-shared-slot (Mon–Fri 12:00–15:00 Europe/Paris) or new-york-evening (Tue \
         17:00–18:00 America/New_York); it is now Tue 25 Nov 15:02 in Europe/Paris, Tue 25 Nov 09:02 in \
         America/New_York. Next opening: new-york-evening, Tue 25 Nov 17:00 America/New_York (in 7h58m)."
    );
}

#[test]
fn an_old_backup_says_how_old_the_limit_and_what_to_run() {
    let msg = Scenario::healthy(IN_SLOT).backup_age(7_980).only(BACKUP_STALE);
    assert_eq!(
        msg,
        "The latest backup of prod (b-1) is 2h13m old, and the gate requires one within 1h. Run \
         deploy/scripts/backup-nextgen-prod.sh and make sure it is reported with POST /api/v1/backups."
    );
}

#[test]
fn stale_data_is_its_own_reason_and_never_also_a_failing_check() {
    let s = Scenario::healthy(IN_SLOT).failing("payments-health", "HTTP 503", 600).last_result("payments-health", 45);
    assert_eq!(
        s.only(DATA_STALE),
        "Check payments-health's last probe result is 45s old (2025-11-25T11:59:15Z), older than the 30s limit. The \
         guardian may be stuck or unable to reach it; see /readyz."
    );
}

#[test]
fn a_check_never_probed_is_stale_data() {
    let msg = Scenario::healthy(IN_SLOT).never_probed("revenue-status").only(DATA_STALE);
    assert!(msg.starts_with("Check revenue-status has no probe result yet"), "{msg}");
}

#[test]
fn a_rollout_in_progress_is_named() {
    let msg = Scenario::healthy(IN_SLOT)
        .rolling_out("blueocean-nextgen-prod/Deployment/nextgen-dashboard")
        .only(ROLLOUT_IN_PROGRESS);
    assert!(msg.starts_with("A rollout of blueocean-nextgen-prod/Deployment/nextgen-dashboard is in progress."));
}

#[test]
fn freshness_is_judged_against_stale_after_inclusive() {
    let rows = [("exactly 30s old is fresh", 30, vec![]), ("31s old is stale", 31, vec![DATA_STALE])];
    for (row, age, codes) in rows {
        assert_eq!(Scenario::healthy(IN_SLOT).last_result("revenue-status", age).codes(), codes, "{row}");
    }
}

#[test]
fn backups_fail_closed() {
    let hour = 3_600;
    let rows: Vec<(&str, Scenario, Vec<&str>)> = vec![
        ("no backup at all", Scenario::healthy(IN_SLOT).backup(|b| *b = None), vec![BACKUP_STALE]),
        (
            "a failed backup",
            Scenario::healthy(IN_SLOT).backup(|b| b.iter_mut().for_each(|b| b.ok = false)),
            vec![BACKUP_STALE],
        ),
        ("exactly at the limit", Scenario::healthy(IN_SLOT).backup_age(hour), vec![]),
        ("a second past the limit", Scenario::healthy(IN_SLOT).backup_age(hour + 1), vec![BACKUP_STALE]),
        ("30s in the future: clock skew", Scenario::healthy(IN_SLOT).backup_age(-30), vec![]),
        ("2m in the future: a wrong clock", Scenario::healthy(IN_SLOT).backup_age(-120), vec![BACKUP_STALE]),
        (
            "another environment's backup",
            Scenario::healthy(IN_SLOT).backup(|b| b.iter_mut().for_each(|b| b.environment = Environment::Dev)),
            vec![BACKUP_STALE],
        ),
    ];
    for (row, s, codes) in rows {
        assert_eq!(s.codes(), codes, "{row}");
    }
    let mut unrequired = Scenario::healthy(IN_SLOT).backup(|b| *b = None);
    unrequired.config.require_backup_within = None;
    assert!(unrequired.decide().go, "no backup needed when require_backup_within is unset");
}

#[test]
fn backup_messages_say_what_went_wrong() {
    let none = Scenario::healthy(IN_SLOT).in_env(Environment::Dev).backup(|b| *b = None).only(BACKUP_STALE);
    assert_eq!(
        none,
        "No backup of dev has been reported, and the gate requires one within 1h. Take a backup of dev and report it \
         with POST /api/v1/backups."
    );
    let failed = Scenario::healthy(IN_SLOT).backup(|b| b.iter_mut().for_each(|b| b.ok = false)).only(BACKUP_STALE);
    assert!(failed.starts_with("The latest backup of prod (b-1, 2025-11-25T11:50:00Z) failed"), "{failed}");
    let future = Scenario::healthy(IN_SLOT).backup_age(-120).only(BACKUP_STALE);
    assert!(future.contains("is dated 2025-11-25T12:02:00Z, in the future; check the clock"), "{future}");
}

#[test]
fn error_budgets_at_the_edges() {
    let rows = [
        ("no data yet is not a budget reason", None, vec![]),
        ("exactly the minimum is enough", Some(0.1), vec![]),
        ("just below the minimum", Some(0.099), vec![SLO_BUDGET_LOW]),
        ("overspent", Some(-0.35), vec![SLO_BUDGET_LOW]),
        ("not a number fails closed", Some(f64::NAN), vec![SLO_BUDGET_LOW]),
    ];
    for (row, left, codes) in rows {
        assert_eq!(Scenario::healthy(IN_SLOT).budget("revenue-api", left).codes(), codes, "{row}");
    }
    let overspent = Scenario::healthy(IN_SLOT).budget("revenue-api", Some(-0.35)).only(SLO_BUDGET_LOW);
    assert!(overspent.starts_with("SLO revenue-api has -35% of its error budget left"), "{overspent}");
}

#[test]
fn reasons_combine_in_spec_order_then_by_name() {
    let staging = || {
        Scenario::healthy(AFTER_SLOT)
            .in_env(Environment::StagingShared)
            .window(paris_slot(&[Environment::StagingShared]))
    };
    let rows: Vec<(&str, Scenario, Vec<&str>)> = vec![
        (
            "every reason at once",
            staging()
                .rolling_out("ns/Deployment/web")
                .last_result("revenue-status", 300)
                .backup_age(10_000)
                .incident("inc-1", "payments-health", 60)
                .budget("revenue-api", Some(0.0))
                .failing("payments-health", "HTTP 500", 60),
            vec![
                CHECK_FAILING,
                SLO_BUDGET_LOW,
                INCIDENT_OPEN,
                OUTSIDE_WINDOW,
                BACKUP_STALE,
                DATA_STALE,
                ROLLOUT_IN_PROGRESS,
            ],
        ),
        (
            "a breach: failing check, open incident, burning budget",
            Scenario::healthy(IN_SLOT)
                .failing("payments-health", "slow", 120)
                .incident("inc-2", "payments-health", 100)
                .budget("revenue-api", Some(0.05)),
            vec![CHECK_FAILING, SLO_BUDGET_LOW, INCIDENT_OPEN],
        ),
        ("closed window and no backup", staging().backup(|b| *b = None), vec![OUTSIDE_WINDOW, BACKUP_STALE]),
        (
            "one check down, another stale",
            Scenario::healthy(IN_SLOT).failing("payments-health", "HTTP 502", 10).never_probed("revenue-status"),
            vec![CHECK_FAILING, DATA_STALE],
        ),
        ("two rollouts", Scenario::healthy(IN_SLOT).rolling_out("b").rolling_out("a"), vec![ROLLOUT_IN_PROGRESS; 2]),
        (
            "a window for another environment does not apply",
            Scenario::healthy(AFTER_SLOT).window(paris_slot(&[Environment::StagingShared])),
            vec![],
        ),
    ];
    for (row, s, codes) in rows {
        let d = s.decide();
        assert_eq!(d.reasons.iter().map(|r| r.code).collect::<Vec<_>>(), codes, "{row}");
        assert_eq!(d.go, codes.is_empty(), "{row}");
    }
}

#[test]
fn reasons_of_one_code_are_ordered_by_name() {
    let d = Scenario::healthy(IN_SLOT)
        .failing("revenue-status", "HTTP 500", 5)
        .failing("payments-health", "HTTP 500", 5)
        .incident("inc-9", "revenue-status", 5)
        .incident("inc-3", "payments-health", 5)
        .budget("zeta", Some(0.0))
        .budget("alpha", Some(0.0))
        .rolling_out("ns/Deployment/web")
        .rolling_out("ns/Deployment/api")
        .decide();
    let subjects: Vec<_> = d.reasons.iter().map(|r| r.message.split_whitespace().nth(1).unwrap()).collect();
    assert_eq!(
        subjects,
        ["payments-health", "revenue-status", "alpha", "zeta", "inc-3", "inc-9", "rollout", "rollout"]
    );
    assert!(d.reasons[6].message.contains("ns/Deployment/api") && d.reasons[7].message.contains("ns/Deployment/web"));
}

#[test]
fn a_failing_check_without_details_still_reads_as_a_sentence() {
    let mut s = Scenario::healthy(IN_SLOT);
    let c = s.check("payments-health");
    (c.up, c.reason, c.bad_since) = (false, None, None);
    assert_eq!(
        s.only(CHECK_FAILING),
        "Check payments-health is failing: no reason recorded. Fix it, or wait until it passes again, before deploying."
    );
}

#[test]
fn windows_in_one_zone_give_its_local_time_once() {
    let mut morning = paris_slot(&[Environment::Prod]);
    (morning.name, morning.start, morning.end) =
        ("paris-morning".into(), Time::constant(9, 0, 0, 0), Time::constant(10, 0, 0, 0));
    let s = Scenario::healthy(AFTER_SLOT)
        .window(morning)
        .window(new_york_evening())
        .window(paris_slot(&[Environment::Prod]));
    let msg = s.only(OUTSIDE_WINDOW);
    assert_eq!(msg.matches("in Europe/Paris").count(), 1, "{msg}");
    assert!(msg.contains("paris-morning (Mon–Fri 09:00–10:00 Europe/Paris) or new-york-evening"), "{msg}");
}
