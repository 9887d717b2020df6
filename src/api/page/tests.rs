use super::*;

#[test]
fn escaping_covers_markup_and_quotes() {
    assert_eq!(e(r#"<script>"a" & 'b'</script>"#), "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;");
}

#[test]
fn credentials_in_urls_are_masked_wherever_they_appear_in_text() {
    let cases = [
        (
            "redirect to https://bob:hunter2@evil.example/x, not followed",
            "redirect to https://***@evil.example/x, not followed",
        ),
        (
            "a http://u:p@h:1?q=a@b and postgres://x@db/guardian",
            "a http://***@h:1?q=a@b and postgres://***@db/guardian",
        ),
        ("mail bob@example.com from http://example.com/a@b", "mail bob@example.com from http://example.com/a@b"),
        ("no url here", "no url here"),
    ];
    for (text, want) in cases {
        assert_eq!(mask_userinfo(text), want, "{text}");
    }
    assert_eq!(t("<b> via ftp://me:pw@host"), "&lt;b&gt; via ftp://***@host");
}

#[test]
fn times_show_the_date_only_when_it_is_not_today_and_ages_use_two_units() {
    let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
    let earlier: Timestamp = "2026-11-26T11:57:50Z".parse().unwrap();
    assert!(when(earlier, now).ends_with(">11:57:50</time>"), "{}", when(earlier, now));
    let yesterday: Timestamp = "2026-11-25T09:05:00Z".parse().unwrap();
    assert!(when(yesterday, now).ends_with(">2026-11-25 09:05</time>"), "{}", when(yesterday, now));
    assert_eq!(ago(earlier, now), "2m 10s");
    assert_eq!(ago(yesterday, now), "1d 2h");
    assert_eq!(ago(now, earlier), "0s", "a clock step back is not a negative age");
}

/// Markup and credentials in every value that comes from outside.
const HOSTILE: &str = "<script>alert(1)</script> via http://bob:hunter2@evil.example/x";

fn hostile_body(now: Timestamp) -> StatusBody {
    use crate::gate::{BodyReason, GateBody};
    use crate::incident::Incident;
    use crate::migration::{Migration, OnBreach};
    use crate::probe::{CheckStatus, Outcome, ProbeResult};
    use crate::slo::SloStatus;
    use crate::store::StoreHealth;
    use crate::targets::TargetStatus;
    let result = ProbeResult {
        check: HOSTILE.into(),
        seq: 1,
        started_at: now,
        latency: Duration::from_millis(3500),
        ttfb: None,
        status: Some(200),
        outcome: Outcome::Slow,
        reason: HOSTILE.into(),
        over_budget_early: false,
    };
    let check = CheckStatus {
        name: HOSTILE.into(),
        url: HOSTILE.into(),
        budget_seconds: 3.0,
        interval_seconds: 1.0,
        up: false,
        over_budget_in_flight: false,
        stale: false,
        skipped_total: 0,
        bad_since: Some(now),
        last: Some(result),
    };
    let slo = SloStatus {
        name: HOSTILE.into(),
        objective: 0.999,
        window: HOSTILE.into(),
        sli: Some(0.9),
        error_budget_remaining: Some(-99.0),
        windows: Vec::new(),
        conditions: Vec::new(),
    };
    let migration = Migration {
        id: HOSTILE.into(),
        target: HOSTILE.into(),
        description: HOSTILE.into(),
        on_breach: OnBreach::Rollback,
        started_at: now,
        finished_at: None,
    };
    let target = TargetStatus {
        target: HOSTILE.into(),
        checks: vec![HOSTILE.into()],
        armed: true,
        armed_since: Some(now),
        rolling_out: Some(true),
        paused: Some(true),
        revision: Some(2),
        template: Some(HOSTILE.into()),
        rolled_back_to: Some(HOSTILE.into()),
        state_unknown: None,
        migrations: vec![migration],
        detection_bound_seconds: 4.5,
    };
    let incident = Incident {
        id: HOSTILE.into(),
        check: HOSTILE.into(),
        started_at: now,
        ended_at: None,
        worst_latency: Duration::from_secs(4),
        p95_latency: Duration::from_secs(4),
        probes_total: 5,
        probes_bad: 3,
        revenue_at_risk_eur: 1.5,
        reason: HOSTILE.into(),
    };
    StatusBody {
        environment: "prod",
        generated_at: now,
        checks: vec![check],
        slos: vec![slo],
        targets: vec![target],
        detection_bounds: [(HOSTILE.to_string(), 4.5)].into(),
        guard: super::super::status::GuardStatus {
            mode: "kubernetes",
            dry_run: false,
            leader: false,
            holder: Some(HOSTILE.into()),
        },
        baselines: Vec::new(),
        incidents: vec![incident],
        revenue_at_risk_eur: 1.5,
        gate: GateBody {
            decision: Verdict::NoGo,
            environment: "prod".into(),
            reasons: vec![BodyReason { code: HOSTILE.into(), message: HOSTILE.into() }],
            evaluated_at: now,
        },
        storage: StoreHealth {
            reachable: false,
            last_error: Some(HOSTILE.into()),
            queued: 3,
            last_ok: Some(now),
            dropped: 0,
        },
    }
}

#[test]
fn every_value_from_outside_is_escaped_and_no_password_shows() {
    let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
    let s = hostile_body(now);
    let recent = [(
        HOSTILE.to_string(),
        vec![RecentProbe { seq: 1, latency: Duration::from_secs(4), outcome: crate::probe::Outcome::Slow }],
    )]
    .into();
    let action = ActionRecord {
        id: "a".into(),
        at: now,
        target: HOSTILE.into(),
        action: HOSTILE.into(),
        outcome: HOSTILE.into(),
        incident: Some(HOSTILE.into()),
        detail: HOSTILE.into(),
    };
    let html = render(&View { s: &s, recent: &recent, min_budget: 0.1, actions: Some(&[action]) });
    assert!(!html.contains("<script") && !html.contains("hunter2"), "{html}");
    assert!(!html.contains("bob:") && !html.contains("bob@"), "the user is masked with the password: {html}");
    // Each place shows the text, escaped: page, gate, check (name, reason, URL, sparkline), SLO,
    // target, migration, incident, action, storage error, leader.
    let shown = html.matches("&lt;script&gt;alert(1)&lt;/script&gt;").count();
    assert!(shown >= 20, "{shown} escaped copies in {html}");
    for section in ["id=gate", "id=checks", "id=slos", "id=targets", "id=incidents", "id=actions"] {
        assert!(html.contains(section), "{section}");
    }
    assert!(html.contains("left, 100.0× spent"), "an overspent budget is told as spent: {html}");
}

#[test]
fn storage_that_does_not_answer_is_said_not_shown_as_no_actions() {
    let now: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
    let s = hostile_body(now);
    let html = render(&View { s: &s, recent: &Default::default(), min_budget: 0.1, actions: None });
    assert!(html.contains("Storage did not answer within 500ms"), "{html}");
    assert!(!html.contains("No action yet"), "{html}");
}
