//! A notification as the notifier tests send it: payments-health breached
//! in prod, 42 s over its 3 s budget, the dashboard paused and rolled back,
//! and a status page URL carrying a password that must never be shown.

use std::time::Duration;

use guardian::config::Environment;
use guardian::notify::{Action, Event, GateState, Message, Statistic};
use url::Url;

pub fn opened(incident: &str, at: jiff::Timestamp) -> Message {
    Message {
        environment: Environment::Prod,
        event: Event::IncidentOpened,
        incident: incident.into(),
        check: "payments-health".into(),
        reason: "took 3.50s, over its 3s budget".into(),
        budget: Duration::from_secs(3),
        statistic: Statistic::Worst,
        observed: Duration::from_millis(3_500),
        lasted: Duration::from_secs(42),
        at,
        action: Action::RolledBack { target: "nextgen-dashboard".into(), paused: true, from: 2, to: 1 },
        gate: GateState { go: false, reasons: vec!["incident_open".into()] },
        revenue_at_risk_eur: 1234.56,
        status_page: Some(Url::parse("https://ops:s3cret@guardian.example/status").unwrap()),
    }
}

pub fn resolved(incident: &str, at: jiff::Timestamp) -> Message {
    Message { event: Event::IncidentResolved, lasted: Duration::from_secs(90), ..opened(incident, at) }
}

pub fn at(text: &str) -> jiff::Timestamp {
    text.parse().unwrap()
}
