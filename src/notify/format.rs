//! Owns the webhook bodies: one `Message` rendered as JSON for Slack, Teams
//! or a generic receiver. Pure: no I/O; the sender posts what this returns.
//!
//! - Slack: an incoming-webhook body, `text` (the summary, shown in
//!   notifications and by clients without Block Kit) plus `blocks`: a header,
//!   the summary and one field per fact, and the status page as context.
//! - Teams: an Adaptive Card in the Workflows envelope (`type: message`,
//!   one `application/vnd.microsoft.card.adaptive` attachment). Microsoft is
//!   retiring Office 365 connectors, and Workflows' "post to a channel when a
//!   webhook request is received" accepts Adaptive Cards, not MessageCards,
//!   so a webhook created today needs this form. The title is red
//!   (`Attention`) while an incident is open or Guardian could not act, green
//!   (`Good`) once resolved.
//! - Generic: a flat object with every field of `Message` under stable
//!   names: durations in seconds as numbers, timestamps in RFC 3339, absent
//!   values as `null` rather than missing, plus `summary`.

use serde_json::{Value, json};

use crate::config::{WebhookFormat, redact_url};
use crate::units::format_duration;

use super::message::{Action, Event, Message, format_eur};

/// Slack's limits on a header, a section text and a section field.
const SLACK_HEADER_MAX: usize = 150;
const SLACK_TEXT_MAX: usize = 3000;
const SLACK_FIELD_MAX: usize = 2000;

/// The webhook body for `format`.
pub fn render(format: WebhookFormat, m: &Message) -> Value {
    match format {
        WebhookFormat::Slack => slack(m),
        WebhookFormat::Teams => teams(m),
        WebhookFormat::Generic => generic(m),
    }
}

/// Label and value of each thing a person needs, in display order.
fn facts(m: &Message) -> Vec<(String, String)> {
    let lasted = if m.event == Event::IncidentResolved { "Lasted" } else { "Over budget for" };
    vec![
        ("Environment".into(), m.environment.to_string()),
        ("Check".into(), m.check.clone()),
        ("What broke".into(), redact_url(&m.reason)),
        ("Budget".into(), format_duration(m.budget)),
        (
            format!("Observed ({})", m.statistic.code()),
            if m.observed.is_zero() { "no answer yet".into() } else { format_duration(m.observed) },
        ),
        (lasted.into(), format_duration(m.lasted)),
        ("Guardian did".into(), m.action.describe()),
        ("Gate".into(), m.gate.describe()),
        ("Revenue at risk".into(), format_eur(m.revenue_at_risk_eur)),
        ("Incident".into(), m.incident.clone()),
    ]
}

fn slack(m: &Message) -> Value {
    let fields: Vec<Value> = facts(m)
        .into_iter()
        .map(|(k, v)| json!({"type": "mrkdwn", "text": clip(&format!("*{k}*\n{}", mrkdwn(&v)), SLACK_FIELD_MAX)}))
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": clip(&m.title(), SLACK_HEADER_MAX)}}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": clip(&mrkdwn(&m.summary()), SLACK_TEXT_MAX)}}),
        json!({"type": "section", "fields": fields}),
    ];
    if let Some(url) = m.status_link() {
        let link = format!("<{url}|Guardian status page>");
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]}));
    }
    json!({"text": mrkdwn(&m.summary()), "blocks": blocks})
}

fn teams(m: &Message) -> Value {
    let color = if m.event == Event::IncidentResolved { "Good" } else { "Attention" };
    let facts: Vec<Value> = facts(m).into_iter().map(|(k, v)| json!({"title": k, "value": v})).collect();
    let mut card = json!({
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "msteams": {"width": "Full"},
        "body": [
            {"type": "TextBlock", "text": m.title(), "size": "Large", "weight": "Bolder", "color": color, "wrap": true},
            {"type": "TextBlock", "text": m.summary(), "wrap": true},
            {"type": "FactSet", "facts": facts},
        ],
    });
    if let Some(url) = m.status_link() {
        card["actions"] = json!([{"type": "Action.OpenUrl", "title": "Guardian status page", "url": url}]);
    }
    json!({
        "type": "message",
        "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": null, "content": card}],
    })
}

fn generic(m: &Message) -> Value {
    let (paused, from, to, why) = match &m.action {
        Action::Acting { .. } => (false, None, None, None),
        Action::Paused { revision, .. } => (true, *revision, None, None),
        Action::RolledBack { paused, from, to, .. } => (*paused, Some(*from), Some(*to), None),
        Action::NotActed { why, .. } => (false, None, None, Some(redact_url(why))),
    };
    json!({
        "summary": m.summary(),
        "event": m.event.code(),
        "environment": m.environment.as_str(),
        "incident": m.incident,
        "check": m.check,
        "reason": redact_url(&m.reason),
        "budget_seconds": m.budget.as_secs_f64(),
        "observed_seconds": m.observed.as_secs_f64(),
        "observed_statistic": m.statistic.code(),
        "lasted_seconds": m.lasted.as_secs_f64(),
        "at": m.at.to_string(),
        "action": m.action.code(),
        "target": m.action.target(),
        "paused": paused,
        "rolled_back": to.is_some(),
        "from_revision": from,
        "to_revision": to,
        "not_acted_reason": why,
        "gate": if m.gate.go { "GO" } else { "NO-GO" },
        "gate_go": m.gate.go,
        "gate_reasons": m.gate.reasons,
        "revenue_at_risk_eur": (m.revenue_at_risk_eur * 100.0).round() / 100.0,
        "status_page": m.status_link(),
    })
}

/// Slack reads `&`, `<` and `>` as markup in mrkdwn text.
fn mrkdwn(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// At most `max` characters, ending in `…` when cut.
fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max - 1).collect();
    cut.push('…');
    cut
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::message::tests::{could_not_act, opened_with_rollback, resolved};

    const OPENED_FACTS: Facts = [
        ("Environment", "prod"),
        ("Check", "payments-health"),
        ("What broke", "took 3.50s, over its 3s budget"),
        ("Budget", "3s"),
        ("Observed (worst)", "3.50s"),
        ("Over budget for", "42s"),
        ("Guardian did", "nextgen-dashboard paused and rolled back from revision 2 to 1"),
        ("Gate", "NO-GO (incident_open)"),
        ("Revenue at risk", "€1,234.56"),
        ("Incident", "inc-42"),
    ];
    const RESOLVED_FACTS: Facts = [
        ("Environment", "prod"),
        ("Check", "payments-health"),
        ("What broke", "took 3.50s, over its 3s budget"),
        ("Budget", "3s"),
        ("Observed (worst)", "3.50s"),
        ("Lasted", "90s"),
        ("Guardian did", "nextgen-dashboard paused and rolled back from revision 2 to 1"),
        ("Gate", "GO"),
        ("Revenue at risk", "€2,300,000.00"),
        ("Incident", "inc-42"),
    ];
    const COULD_NOT_ACT_FACTS: Facts = [
        ("Environment", "staging-shared"),
        ("Check", "payments-health"),
        ("What broke", "took 3.50s, over its 3s budget"),
        ("Budget", "3s"),
        ("Observed (p95)", "3.52s"),
        ("Over budget for", "5m"),
        ("Guardian did", "Guardian did not act on nextgen-dashboard: no previous revision to roll back to"),
        ("Gate", "NO-GO (check_failing, incident_open)"),
        ("Revenue at risk", "€0.50"),
        ("Incident", "inc-42"),
    ];
    const REDACTED_PAGE: &str = "https://ops:***@guardian.example/status";

    type Facts = [(&'static str, &'static str); 10];
    /// Name, message, expected title, expected facts, expected status link.
    type Case = (&'static str, Message, &'static str, Facts, Option<&'static str>);

    fn cases() -> [Case; 3] {
        [
            (
                "opened",
                opened_with_rollback(),
                "Incident opened: payments-health in prod",
                OPENED_FACTS,
                Some("https://guardian.example/status"),
            ),
            ("resolved", resolved(), "Incident resolved: payments-health in prod", RESOLVED_FACTS, None),
            (
                "could not act",
                could_not_act(),
                "Could not act: payments-health in staging-shared",
                COULD_NOT_ACT_FACTS,
                Some(REDACTED_PAGE),
            ),
        ]
    }

    #[test]
    fn slack_has_the_summary_a_header_one_field_per_fact_and_the_status_link() {
        for (name, m, title, facts, page) in cases() {
            let v = render(WebhookFormat::Slack, &m);
            assert_eq!(v["text"], m.summary(), "{name}");
            assert_eq!(v["blocks"][0], json!({"type": "header", "text": {"type": "plain_text", "text": title}}));
            assert_eq!(v["blocks"][1], json!({"type": "section", "text": {"type": "mrkdwn", "text": m.summary()}}));
            assert_eq!(v["blocks"][2]["type"], "section", "{name}");
            let fields = v["blocks"][2]["fields"].as_array().unwrap();
            assert_eq!(fields.len(), facts.len(), "{name}");
            for (field, (k, val)) in fields.iter().zip(facts) {
                assert_eq!(*field, json!({"type": "mrkdwn", "text": format!("*{k}*\n{val}")}), "{name}");
            }
            let blocks = v["blocks"].as_array().unwrap();
            match page {
                Some(url) => {
                    assert_eq!(blocks.len(), 4, "{name}");
                    let link = format!("<{url}|Guardian status page>");
                    assert_eq!(blocks[3], json!({"type": "context", "elements": [{"type": "mrkdwn", "text": link}]}));
                }
                None => assert_eq!(blocks.len(), 3, "{name}"),
            }
            assert_eq!(v.as_object().unwrap().len(), 2, "{name}: only text and blocks");
        }
    }

    #[test]
    fn teams_is_an_adaptive_card_in_the_workflows_envelope_red_until_resolved() {
        for (name, m, title, facts, page) in cases() {
            let v = render(WebhookFormat::Teams, &m);
            assert_eq!(v["type"], "message", "{name}");
            let att = &v["attachments"][0];
            assert_eq!(v["attachments"].as_array().unwrap().len(), 1, "{name}");
            assert_eq!(att["contentType"], "application/vnd.microsoft.card.adaptive", "{name}");
            assert_eq!(att["contentUrl"], Value::Null, "{name}");
            let card = &att["content"];
            assert_eq!(card["$schema"], "http://adaptivecards.io/schemas/adaptive-card.json", "{name}");
            assert_eq!(card["type"], "AdaptiveCard", "{name}");
            assert_eq!(card["version"], "1.4", "{name}");
            let color = if m.event == Event::IncidentResolved { "Good" } else { "Attention" };
            assert_eq!(
                card["body"][0],
                json!({"type": "TextBlock", "text": title, "size": "Large", "weight": "Bolder", "color": color,
                       "wrap": true})
            );
            assert_eq!(card["body"][1], json!({"type": "TextBlock", "text": m.summary(), "wrap": true}));
            let want: Vec<Value> = facts.iter().map(|(k, v)| json!({"title": k, "value": v})).collect();
            assert_eq!(card["body"][2], json!({"type": "FactSet", "facts": want}), "{name}");
            match page {
                Some(url) => assert_eq!(
                    card["actions"],
                    json!([{"type": "Action.OpenUrl", "title": "Guardian status page", "url": url}])
                ),
                None => assert_eq!(card.get("actions"), None, "{name}"),
            }
        }
        assert_eq!(render(WebhookFormat::Teams, &resolved())["attachments"][0]["content"]["body"][0]["color"], "Good");
    }

    #[test]
    fn generic_is_a_flat_object_with_every_field_in_stable_names() {
        let rollback = |m: &Message| {
            json!({
                "summary": m.summary(), "event": m.event.code(), "environment": "prod", "incident": "inc-42",
                "check": "payments-health", "reason": "took 3.50s, over its 3s budget",
                "budget_seconds": 3.0, "observed_seconds": 3.5,
                "observed_statistic": "worst", "lasted_seconds": m.lasted.as_secs_f64(), "at": m.at.to_string(),
                "action": "paused_and_rolled_back", "target": "nextgen-dashboard", "paused": true,
                "rolled_back": true, "from_revision": 2, "to_revision": 1, "not_acted_reason": null,
                "gate": if m.gate.go { "GO" } else { "NO-GO" }, "gate_go": m.gate.go,
                "gate_reasons": m.gate.reasons, "revenue_at_risk_eur": m.revenue_at_risk_eur,
                "status_page": m.status_link(),
            })
        };
        let opened = opened_with_rollback();
        let v = render(WebhookFormat::Generic, &opened);
        assert_eq!(v, rollback(&opened));
        assert_eq!(v["event"], "incident_opened");
        assert_eq!(v["lasted_seconds"], 42.0);
        assert_eq!(v["at"], "2025-03-14T09:30:42Z");
        assert_eq!(v["gate"], "NO-GO");
        assert_eq!(v["gate_reasons"], json!(["incident_open"]));
        assert_eq!(v["revenue_at_risk_eur"], 1234.56);
        assert_eq!(v["status_page"], "https://guardian.example/status");

        let done = resolved();
        let v = render(WebhookFormat::Generic, &done);
        assert_eq!(v, rollback(&done));
        assert_eq!(v["event"], "incident_resolved");
        assert_eq!(v["lasted_seconds"], 90.0);
        assert_eq!(v["at"], "2025-03-14T09:31:30Z");
        assert_eq!(v["gate"], "GO");
        assert_eq!(v["gate_reasons"], json!([]));
        assert_eq!(v["revenue_at_risk_eur"], 2_300_000.0);
        assert_eq!(v["status_page"], Value::Null);

        let m = could_not_act();
        assert_eq!(
            render(WebhookFormat::Generic, &m),
            json!({
                "summary": m.summary(), "event": "could_not_act", "environment": "staging-shared",
                "incident": "inc-42", "check": "payments-health", "reason": "took 3.50s, over its 3s budget",
                "budget_seconds": 3.0, "observed_seconds": 3.52,
                "observed_statistic": "p95", "lasted_seconds": 300.0, "at": "2025-03-14T09:30:42Z",
                "action": "not_acted", "target": "nextgen-dashboard", "paused": false, "rolled_back": false,
                "from_revision": null, "to_revision": null,
                "not_acted_reason": "no previous revision to roll back to", "gate": "NO-GO", "gate_go": false,
                "gate_reasons": ["check_failing", "incident_open"], "revenue_at_risk_eur": 0.5,
                "status_page": REDACTED_PAGE,
            })
        );
    }

    #[test]
    fn no_format_shows_a_url_password() {
        let mut m = could_not_act();
        m.action = Action::NotActed { target: None, why: "redis://app:hunter2@redis:6379 refused".into() };
        for format in [WebhookFormat::Slack, WebhookFormat::Teams, WebhookFormat::Generic] {
            let body = render(format, &m).to_string();
            assert!(!body.contains("s3cret") && !body.contains("hunter2"), "{format:?}: {body}");
            assert!(body.contains(REDACTED_PAGE) && body.contains("redis://app:***@redis"), "{format:?}: {body}");
        }
    }

    #[test]
    fn slack_escapes_markup_and_clips_to_its_limits() {
        let mut m = could_not_act();
        m.action = Action::NotActed { target: None, why: format!("a<b & c>d {}", "x".repeat(5_000)) };
        let v = render(WebhookFormat::Slack, &m);
        let did = v["blocks"][2]["fields"][6]["text"].as_str().unwrap();
        assert!(did.starts_with("*Guardian did*\nGuardian did not act: a&lt;b &amp; c&gt;d xx"), "{did}");
        assert_eq!(did.chars().count(), SLACK_FIELD_MAX);
        assert!(did.ends_with('…'));
        assert_eq!(v["blocks"][1]["text"]["text"].as_str().unwrap().chars().count(), SLACK_TEXT_MAX);
    }
}
