//! Owns talking to Alertmanager through its API v2: turning a `Message` into
//! an `Alert` with SPEC's labels and annotations, and posting alerts to
//! `{base}/api/v2/alerts`.
//!
//! Rule: every configured Alertmanager gets every alert (Alertmanager's HA
//! model: the cluster deduplicates), and a send succeeds when at least one
//! of them answers 2xx. No retries here: the outbox retries a failed send.
//!
//! Labels, all plain strings:
//! - `alertname`: `GuardianIncident` for an incident opened or resolved,
//!   `GuardianPause` / `GuardianRollback` for an action taken, and
//!   `GuardianCouldNotAct` when Guardian could not act. Each event kind is its
//!   own alert, so a rollback reaches the pager even while the incident's
//!   alert already fires.
//! - `severity`: `page` for anything in `prod` (an incident there is money at
//!   risk, and so is each action or failure to act), `warning` elsewhere.
//! - `team="business"`, `environment`, `check`, `incident` (alerts/
//!   alertmanager.yml groups by it), and `target` unless there is none.
//!
//! Resend: Alertmanager resolves a firing alert by itself once it has not
//! heard of it for `resolve_timeout` (5 m in alerts/alertmanager.yml). The
//! caller must re-send each firing alert more often than that (every minute);
//! a resolved alert carries `endsAt` and ends it at once.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use url::Url;

use super::message::{Action, Event, Message, format_eur};
use crate::config::{Environment, redact_url};
use crate::units::format_duration;

/// A request that takes longer is a failure; the outbox sends again later.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a refusal's body goes into the error: enough for Alertmanager's
/// validation message, never a whole page.
const BODY_EXCERPT: usize = 200;

/// Posts alerts to every configured Alertmanager.
#[derive(Debug, Clone)]
pub struct AlertmanagerClient {
    endpoints: Vec<Url>,
    http: reqwest::Client,
}

/// One alert as Alertmanager's API v2 (`postableAlert`) takes it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: Timestamp,
    /// Set once resolved; absent while firing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<Timestamp>,
    #[serde(rename = "generatorURL", skip_serializing_if = "Option::is_none")]
    pub generator_url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no Alertmanager URL configured")]
    NoAlertmanager,
    #[error("{url}: cannot post alerts under this URL")]
    NotABase { url: String },
    #[error("cannot build the Alertmanager HTTP client: {}", chain(.0))]
    Client(#[source] reqwest::Error),
    #[error("cannot encode the alerts: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("no Alertmanager accepted the alerts: {}", list(.0))]
    NoneAccepted(Vec<Refusal>),
}

/// Why one Alertmanager did not take the alerts; `url` is redacted.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("{url}: {}", chain(.source))]
    Unreachable { url: String, source: reqwest::Error },
    #[error("{url}: answered {status}: {body}")]
    Rejected { url: String, status: u16, body: String },
}

impl AlertmanagerClient {
    /// A client for `config.notify.alertmanager`, with its own HTTP client.
    pub fn new(base_urls: &[Url]) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("guardian/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::Client)?;
        Self::with_client(base_urls, http)
    }

    /// Every request still times out after 5 s, whatever `http` says.
    pub fn with_client(base_urls: &[Url], http: reqwest::Client) -> Result<Self, Error> {
        if base_urls.is_empty() {
            return Err(Error::NoAlertmanager);
        }
        let endpoints = base_urls.iter().map(alerts_endpoint).collect::<Result<_, _>>()?;
        Ok(Self { endpoints, http })
    }

    /// Posts `alerts` to every Alertmanager; Ok when at least one took them.
    pub async fn send(&self, alerts: &[Alert]) -> Result<(), Error> {
        if alerts.is_empty() {
            return Ok(());
        }
        let body = serde_json::to_vec(alerts).map_err(Error::Encode)?;
        let sends = self.endpoints.iter().map(|url| self.post(url, body.clone()));
        let refusals: Vec<Refusal> =
            futures_util::future::join_all(sends).await.into_iter().filter_map(Result::err).collect();
        if refusals.len() < self.endpoints.len() { Ok(()) } else { Err(Error::NoneAccepted(refusals)) }
    }

    async fn post(&self, url: &Url, body: Vec<u8>) -> Result<(), Refusal> {
        let shown = || redact_url(url.as_str());
        let response = self
            .http
            .post(url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .timeout(SEND_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| Refusal::Unreachable { url: shown(), source: e.without_url() })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let body = redact_url(text.trim()).chars().take(BODY_EXCERPT).collect();
        Err(Refusal::Rejected { url: shown(), status: status.as_u16(), body })
    }
}

impl Alert {
    /// The alert `message` raises; resolved (`endsAt`) when the incident closed.
    pub fn from_message(m: &Message) -> Self {
        let mut labels = BTreeMap::new();
        let mut label = |k: &str, v: &str| {
            if !v.is_empty() {
                labels.insert(k.to_string(), v.to_string());
            }
        };
        label("alertname", alertname(m));
        label("severity", if m.environment == Environment::Prod { "page" } else { "warning" });
        label("team", "business");
        label("environment", m.environment.as_str());
        label("check", &m.check);
        label("incident", &m.incident);
        label("target", m.action.target().unwrap_or_default());
        let annotations = BTreeMap::from([
            ("summary".to_string(), m.summary()),
            ("description".to_string(), description(m)),
            ("revenue_at_risk_eur".to_string(), eur_number(m.revenue_at_risk_eur)),
        ]);
        let resolved = m.event == Event::IncidentResolved;
        Self {
            labels,
            annotations,
            starts_at: starts_at(m),
            ends_at: resolved.then_some(m.at),
            generator_url: m.status_link(),
        }
    }

    /// This alert, ended at `at`: how the caller resolves an action's alert
    /// when its incident closes.
    pub fn resolved_at(mut self, at: Timestamp) -> Self {
        self.ends_at = Some(at.max(self.starts_at));
        self
    }
}

impl From<&Message> for Alert {
    fn from(m: &Message) -> Self {
        Self::from_message(m)
    }
}

fn alertname(m: &Message) -> &'static str {
    match (m.event, &m.action) {
        (Event::IncidentOpened | Event::IncidentResolved, _) | (Event::ActionTaken, Action::Acting { .. }) => {
            "GuardianIncident"
        }
        (Event::ActionTaken, Action::Paused { .. }) => "GuardianPause",
        (Event::ActionTaken, Action::RolledBack { .. }) => "GuardianRollback",
        (Event::ActionTaken, Action::NotActed { .. }) | (Event::CouldNotAct, _) => "GuardianCouldNotAct",
    }
}

/// An incident's alert starts when the check went over budget, so every
/// re-send (and the resolve) names the same start; an action's when it happened.
fn starts_at(m: &Message) -> Timestamp {
    match m.event {
        Event::IncidentOpened | Event::IncidentResolved => m.at.checked_sub(m.lasted).unwrap_or(m.at),
        Event::ActionTaken | Event::CouldNotAct => m.at,
    }
}

fn description(m: &Message) -> String {
    let verb = if m.event == Event::IncidentResolved { "was" } else { "is" };
    let mut text = format!(
        "{}.\n{} {verb} failing for {}: {}.\nLatency budget {}: {}.\nGuardian: {}.\nGate: {}.\nRevenue at risk: {}.",
        m.title(),
        m.check,
        format_duration(m.lasted),
        redact_url(&m.reason),
        format_duration(m.budget),
        m.observed_text(),
        m.action.describe(),
        m.gate.describe(),
        format_eur(m.revenue_at_risk_eur),
    );
    if let Some(link) = m.status_link() {
        text.push_str(&format!("\nStatus: {link}"));
    }
    text
}

/// `1234.56`: a number Alertmanager templates can compare; not a number → `0.00`.
fn eur_number(eur: f64) -> String {
    format!("{:.2}", if eur.is_finite() { eur } else { 0.0 })
}

/// `{base}/api/v2/alerts`, keeping any path prefix of `base`.
fn alerts_endpoint(base: &Url) -> Result<Url, Error> {
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .map_err(|()| Error::NotABase { url: redact_url(base.as_str()) })?
        .pop_if_empty()
        .extend(["api", "v2", "alerts"]);
    Ok(url)
}

/// An error and its causes on one line, URLs redacted: reqwest's own text
/// omits the cause. Shared by the senders.
pub(super) fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(&format!(": {c}"));
        cause = c.source();
    }
    redact_url(&text)
}

fn list(refusals: &[Refusal]) -> String {
    refusals.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::super::message::tests::{could_not_act, opened_with_rollback, resolved};
    use super::*;

    fn labels(a: &Alert) -> Vec<(&str, &str)> {
        a.labels.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn an_incident_in_prod_pages_the_business_team_with_every_label() {
        let a = Alert::from_message(&opened_with_rollback());
        assert_eq!(
            labels(&a),
            [
                ("alertname", "GuardianIncident"),
                ("check", "payments-health"),
                ("environment", "prod"),
                ("incident", "inc-42"),
                ("severity", "page"),
                ("target", "nextgen-dashboard"),
                ("team", "business"),
            ]
        );
        assert_eq!(a.annotations["summary"], opened_with_rollback().summary());
        assert_eq!(a.annotations["revenue_at_risk_eur"], "1234.56");
        assert_eq!(a.starts_at.to_string(), "2025-03-14T09:30:00Z", "the breach began 42 s before");
        assert_eq!(a.ends_at, None);
        assert_eq!(a.generator_url.as_deref(), Some("https://guardian.example/status"));
    }

    #[test]
    fn a_resolved_incident_keeps_its_start_and_ends_when_it_closed() {
        let a = Alert::from_message(&resolved());
        assert_eq!(a.starts_at.to_string(), "2025-03-14T09:30:00Z");
        assert_eq!(a.ends_at.map(|t| t.to_string()).as_deref(), Some("2025-03-14T09:31:30Z"));
        assert_eq!(a.generator_url, None);
        let json = serde_json::to_value(&a).unwrap();
        assert_eq!(json["endsAt"], "2025-03-14T09:31:30Z");
        assert!(json["annotations"]["description"].as_str().unwrap().contains("was failing for 90s: took 3.50s"));
    }

    #[test]
    fn each_event_has_its_alertname_and_only_prod_pages() {
        let mut m = opened_with_rollback();
        m.event = Event::ActionTaken;
        assert_eq!(Alert::from_message(&m).labels["alertname"], "GuardianRollback");
        m.action = Action::Paused { target: "nextgen-dashboard".into(), revision: Some(2) };
        assert_eq!(Alert::from_message(&m).labels["alertname"], "GuardianPause");
        assert_eq!(Alert::from_message(&m).starts_at, m.at);
        let c = Alert::from_message(&could_not_act());
        assert_eq!((c.labels["alertname"].as_str(), c.labels["severity"].as_str()), ("GuardianCouldNotAct", "warning"));
    }

    #[test]
    fn no_target_means_no_target_label_and_no_password_reaches_alertmanager() {
        let mut m = could_not_act();
        m.action = Action::NotActed { target: None, why: "redis://app:hunter2@redis:6379 unreachable".into() };
        let a = Alert::from_message(&m);
        assert!(!a.labels.contains_key("target"), "{a:?}");
        let json = serde_json::to_string(&a).unwrap();
        assert!(!json.contains("hunter2") && !json.contains("s3cret"), "{json}");
        assert!(!json.contains("endsAt"), "{json}");
    }

    #[test]
    fn the_endpoint_keeps_a_path_prefix_and_an_empty_list_is_refused() {
        for (base, endpoint) in [
            ("http://am:9093", "http://am:9093/api/v2/alerts"),
            ("http://am:9093/", "http://am:9093/api/v2/alerts"),
            ("https://u:p@ops.example/alertmanager/", "https://u:p@ops.example/alertmanager/api/v2/alerts"),
        ] {
            assert_eq!(alerts_endpoint(&Url::parse(base).unwrap()).unwrap().as_str(), endpoint);
        }
        assert!(matches!(AlertmanagerClient::new(&[]), Err(Error::NoAlertmanager)));
    }
}
