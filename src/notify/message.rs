//! Owns what a notification says, as data: which check broke and how badly,
//! what Guardian did about it (or why it did not), the gate state and the
//! revenue at risk, plus the one-line summary every webhook format carries.
//! Pure: no I/O. URLs and free text pass through `redact_url`, so a password
//! never reaches a receiver; header values are never part of a message.

use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use url::Url;

use crate::config::{Environment, redact_url};
use crate::gate::GateDecision;
use crate::units::format_duration;

/// One notification, in the words the business team uses.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub environment: Environment,
    pub event: Event,
    pub incident: String,
    pub check: String,
    /// What broke, in words: `status 503 (expected 200)`, `took 3.52s`.
    pub reason: String,
    /// The check's latency budget, in seconds when serialized.
    #[serde(serialize_with = "seconds", deserialize_with = "from_seconds")]
    pub budget: Duration,
    /// Which latency `observed` is: the worst probe or the p95.
    pub statistic: Statistic,
    #[serde(serialize_with = "seconds", deserialize_with = "from_seconds")]
    pub observed: Duration,
    /// How long the check has been over budget (or was, once resolved).
    #[serde(serialize_with = "seconds", deserialize_with = "from_seconds")]
    pub lasted: Duration,
    /// When the event happened.
    pub at: Timestamp,
    pub action: Action,
    pub gate: GateState,
    pub revenue_at_risk_eur: f64,
    /// Guardian's status page; shown with any password masked.
    #[serde(serialize_with = "redacted")]
    pub status_page: Option<Url>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    IncidentOpened,
    ActionTaken,
    IncidentResolved,
    CouldNotAct,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Statistic {
    Worst,
    P95,
}

/// What Guardian did about the target, or why it did nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// The incident concerns a target rolling out; the pause or rollback
    /// follows in its own message.
    Acting {
        target: String,
    },
    Paused {
        target: String,
        revision: Option<u64>,
    },
    RolledBack {
        target: String,
        paused: bool,
        from: u64,
        to: u64,
    },
    NotActed {
        target: Option<String>,
        why: String,
    },
}

/// The gate as the message saw it: go/no-go and SPEC's reason codes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateState {
    pub go: bool,
    pub reasons: Vec<String>,
}

impl Message {
    /// `Incident opened: payments-health in prod`.
    pub fn title(&self) -> String {
        format!("{}: {} in {}", self.event.title(), self.check, self.environment)
    }

    /// What broke, what Guardian did, the gate and the money, on one line.
    pub fn summary(&self) -> String {
        let (lead, verb) = if self.event == Event::IncidentResolved { ("resolved: ", "was") } else { ("", "is") };
        format!(
            "{lead}{} {verb} failing for {}: {} (budget {}, {}) — {} — gate {} — {} at risk",
            self.check,
            format_duration(self.lasted),
            redact_url(&self.reason),
            format_duration(self.budget),
            self.observed_text(),
            self.action.describe(),
            self.gate.describe(),
            format_eur(self.revenue_at_risk_eur),
        )
    }

    /// `worst 3.50s`, or `no answer yet` while every probe is still running.
    pub fn observed_text(&self) -> String {
        if self.observed.is_zero() {
            "no answer yet".into()
        } else {
            format!("{} {}", self.statistic.code(), format_duration(self.observed))
        }
    }

    /// The status page URL with any password masked.
    pub fn status_link(&self) -> Option<String> {
        self.status_page.as_ref().map(|u| redact_url(u.as_str()))
    }
}

impl Event {
    pub fn code(self) -> &'static str {
        match self {
            Self::IncidentOpened => "incident_opened",
            Self::ActionTaken => "action_taken",
            Self::IncidentResolved => "incident_resolved",
            Self::CouldNotAct => "could_not_act",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::IncidentOpened => "Incident opened",
            Self::ActionTaken => "Action taken",
            Self::IncidentResolved => "Incident resolved",
            Self::CouldNotAct => "Could not act",
        }
    }
}

impl Statistic {
    pub fn code(self) -> &'static str {
        match self {
            Self::Worst => "worst",
            Self::P95 => "p95",
        }
    }
}

impl Action {
    /// `paused`, `rolled_back`, `paused_and_rolled_back` or `not_acted`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Acting { .. } => "acting",
            Self::Paused { .. } => "paused",
            Self::RolledBack { paused: true, .. } => "paused_and_rolled_back",
            Self::RolledBack { paused: false, .. } => "rolled_back",
            Self::NotActed { .. } => "not_acted",
        }
    }

    pub fn target(&self) -> Option<&str> {
        match self {
            Self::Acting { target } | Self::Paused { target, .. } | Self::RolledBack { target, .. } => Some(target),
            Self::NotActed { target, .. } => target.as_deref(),
        }
    }

    /// `nextgen-dashboard paused and rolled back from revision 2 to 1`.
    pub fn describe(&self) -> String {
        match self {
            Self::Acting { target } => format!("Guardian is acting on {target}, which is rolling out"),
            Self::Paused { target, revision: Some(r) } => format!("{target} paused at revision {r}"),
            Self::Paused { target, revision: None } => format!("{target} paused"),
            Self::RolledBack { target, paused, from, to } => {
                let how = if *paused { "paused and rolled back" } else { "rolled back" };
                format!("{target} {how} from revision {from} to {to}")
            }
            Self::NotActed { target: Some(t), why } => format!("Guardian did not act on {t}: {}", redact_url(why)),
            Self::NotActed { target: None, why } => format!("Guardian did not act: {}", redact_url(why)),
        }
    }
}

impl GateState {
    /// `GO`, or `NO-GO (check_failing, incident_open)`.
    pub fn describe(&self) -> String {
        match (self.go, self.reasons.is_empty()) {
            (true, _) => "GO".into(),
            (false, true) => "NO-GO".into(),
            (false, false) => format!("NO-GO ({})", self.reasons.join(", ")),
        }
    }
}

impl From<&GateDecision> for GateState {
    fn from(d: &GateDecision) -> Self {
        Self { go: d.go, reasons: d.reasons.iter().map(|r| r.code.to_string()).collect() }
    }
}

/// Euros with two decimals and thousands separators: `€1,234.57`.
pub fn format_eur(eur: f64) -> String {
    // `as` saturates and maps NaN to 0, which is what a message should show.
    let cents = (eur.abs() * 100.0).round() as u64;
    let digits = (cents / 100).to_string();
    let mut whole = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            whole.push(',');
        }
        whole.push(c);
    }
    let sign = if eur < 0.0 && cents > 0 { "-" } else { "" };
    format!("{sign}€{whole}.{:02}", cents % 100)
}

fn seconds<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn from_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let secs = f64::deserialize(d)?;
    Duration::try_from_secs_f64(secs).map_err(serde::de::Error::custom)
}

fn redacted<S: Serializer>(url: &Option<Url>, s: S) -> Result<S::Ok, S::Error> {
    url.as_ref().map(|u| redact_url(u.as_str())).serialize(s)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// payments-health breached in prod; the dashboard was paused and rolled back.
    pub(in crate::notify) fn opened_with_rollback() -> Message {
        Message {
            environment: Environment::Prod,
            event: Event::IncidentOpened,
            incident: "inc-42".into(),
            check: "payments-health".into(),
            reason: "took 3.50s, over its 3s budget".into(),
            budget: Duration::from_secs(3),
            statistic: Statistic::Worst,
            observed: Duration::from_millis(3_500),
            lasted: Duration::from_secs(42),
            at: "2025-03-14T09:30:42Z".parse().unwrap(),
            action: Action::RolledBack { target: "nextgen-dashboard".into(), paused: true, from: 2, to: 1 },
            gate: GateState { go: false, reasons: vec!["incident_open".into()] },
            revenue_at_risk_eur: 1234.56,
            status_page: Some(Url::parse("https://guardian.example/status").unwrap()),
        }
    }

    pub(in crate::notify) fn resolved() -> Message {
        Message {
            event: Event::IncidentResolved,
            lasted: Duration::from_secs(90),
            at: "2025-03-14T09:31:30Z".parse().unwrap(),
            gate: GateState { go: true, reasons: vec![] },
            revenue_at_risk_eur: 2_300_000.0,
            status_page: None,
            ..opened_with_rollback()
        }
    }

    /// No previous revision, and a status page URL that carries a password.
    pub(in crate::notify) fn could_not_act() -> Message {
        Message {
            environment: Environment::StagingShared,
            event: Event::CouldNotAct,
            statistic: Statistic::P95,
            observed: Duration::from_millis(3_520),
            lasted: Duration::from_secs(300),
            action: Action::NotActed {
                target: Some("nextgen-dashboard".into()),
                why: "no previous revision to roll back to".into(),
            },
            gate: GateState { go: false, reasons: vec!["check_failing".into(), "incident_open".into()] },
            revenue_at_risk_eur: 0.5,
            status_page: Some(Url::parse("https://ops:s3cret@guardian.example/status").unwrap()),
            ..opened_with_rollback()
        }
    }

    #[test]
    fn money_has_two_decimals_and_thousands_separators() {
        for (eur, text) in [
            (0.0, "€0.00"),
            (0.5, "€0.50"),
            (1234.567, "€1,234.57"),
            (2_300_000.0, "€2,300,000.00"),
            (999.999, "€1,000.00"),
            (-1234.5, "-€1,234.50"),
            (f64::NAN, "€0.00"),
        ] {
            assert_eq!(format_eur(eur), text, "{eur}");
        }
    }

    #[test]
    fn summary_says_what_broke_what_guardian_did_the_gate_and_the_money() {
        assert_eq!(
            opened_with_rollback().summary(),
            "payments-health is failing for 42s: took 3.50s, over its 3s budget (budget 3s, worst 3.50s) — nextgen-dashboard paused and rolled back \
             from revision 2 to 1 — gate NO-GO (incident_open) — €1,234.56 at risk"
        );
        assert_eq!(
            resolved().summary(),
            "resolved: payments-health was failing for 90s: took 3.50s, over its 3s budget (budget 3s, worst 3.50s) — nextgen-dashboard paused and \
             rolled back from revision 2 to 1 — gate GO — €2,300,000.00 at risk"
        );
        assert_eq!(
            could_not_act().summary(),
            "payments-health is failing for 5m: took 3.50s, over its 3s budget (budget 3s, p95 3.52s) — Guardian did not act on nextgen-dashboard: \
             no previous revision to roll back to — gate NO-GO (check_failing, incident_open) — €0.50 at risk"
        );
    }

    #[test]
    fn a_breach_seen_only_as_probes_still_running_says_no_answer_yet() {
        let mut m = opened_with_rollback();
        m.observed = Duration::ZERO;
        assert_eq!(m.observed_text(), "no answer yet");
        assert!(m.summary().contains("(budget 3s, no answer yet)"), "{}", m.summary());
        assert_eq!(opened_with_rollback().observed_text(), "worst 3.50s");
    }

    #[test]
    fn a_password_in_the_status_page_or_the_reason_never_shows() {
        let mut m = could_not_act();
        m.action = Action::NotActed { target: None, why: "redis://app:hunter2@redis:6379 unreachable".into() };
        assert_eq!(m.status_link().as_deref(), Some("https://ops:***@guardian.example/status"));
        assert_eq!(m.action.describe(), "Guardian did not act: redis://app:***@redis:6379 unreachable");
        let json = serde_json::to_string(&m).unwrap();
        assert!(json.contains("https://ops:***@guardian.example/status"), "{json}");
        assert!(!json.contains("s3cret"), "{json}");
    }

    #[test]
    fn message_serializes_durations_in_seconds_and_the_action_tagged() {
        let v = serde_json::to_value(opened_with_rollback()).unwrap();
        assert_eq!(v["environment"], "prod");
        assert_eq!(v["event"], "incident_opened");
        assert_eq!(v["budget"], 3.0);
        assert_eq!(v["observed"], 3.5);
        assert_eq!(v["lasted"], 42.0);
        assert_eq!(v["at"], "2025-03-14T09:30:42Z");
        assert_eq!(v["action"]["kind"], "rolled_back");
        assert_eq!(v["action"]["from"], 2);
        assert_eq!(v["gate"]["reasons"][0], "incident_open");
    }
}
