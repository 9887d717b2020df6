#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up panics on failure by design
//! The Alertmanager API v2 client: against recording servers on loopback
//! (the exact request, HA fan-out, errors naming every URL without its
//! password), then against the real `alertmanager` binary, which must show
//! the alert active after the firing send and gone after the resolved one.
//! Without `alertmanager` on PATH that test prints a note and passes, except
//! under `CI=true`, where it fails.

mod support;

use std::time::Duration;

use axum::http::{Method, StatusCode};
use guardian::notify::{Alert, AlertmanagerClient, AlertmanagerError};
use support::alertmanager::RealAlertmanager;
use support::eventually::eventually;
use support::messages::{at, opened, resolved};
use support::recorder::Recorder;
use url::Url;

#[tokio::test]
async fn alerts_are_posted_as_api_v2_json_with_spec_labels_and_annotations() {
    let am = Recorder::start(StatusCode::OK).await;
    let client = AlertmanagerClient::new(&[am.url("")]).unwrap();
    let firing = Alert::from_message(&opened("inc-7", at("2025-03-14T09:30:42Z")));
    let done = Alert::from_message(&resolved("inc-7", at("2025-03-14T09:31:30Z")));
    client.send(&[firing, done]).await.unwrap();

    let seen = am.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    let s = &seen[0];
    assert_eq!(
        (&s.method, s.path.as_str(), s.content_type.as_str()),
        (&Method::POST, "/api/v2/alerts", "application/json")
    );
    let alerts = s.body.as_array().unwrap();
    assert_eq!(alerts.len(), 2);
    for a in alerts {
        let labels = a["labels"].as_object().unwrap();
        assert_eq!(labels.len(), 7, "{labels:?}");
        assert_eq!(labels["alertname"], "GuardianIncident");
        assert_eq!(labels["severity"], "page");
        assert_eq!(labels["team"], "business");
        assert_eq!(labels["environment"], "prod");
        assert_eq!(labels["check"], "payments-health");
        assert_eq!(labels["target"], "nextgen-dashboard");
        assert_eq!(labels["incident"], "inc-7");
        assert_eq!(a["annotations"]["revenue_at_risk_eur"], "1234.56");
        assert_eq!(a["generatorURL"], "https://ops:***@guardian.example/status");
    }
    let (firing, done) = (&alerts[0], &alerts[1]);
    assert_eq!(firing["annotations"].as_object().unwrap().len(), 3);
    assert!(firing["annotations"]["summary"].as_str().unwrap().starts_with("payments-health is failing for"));
    assert!(
        firing["annotations"]["description"].as_str().unwrap().starts_with("Incident opened: payments-health in prod.")
    );
    assert_eq!(firing["startsAt"], "2025-03-14T09:30:00Z");
    assert!(firing.get("endsAt").is_none(), "a firing alert has no endsAt: {firing}");
    assert!(done["annotations"]["summary"].as_str().unwrap().starts_with("resolved: payments-health"));
    assert_eq!(done["startsAt"], "2025-03-14T09:30:00Z");
    assert_eq!(done["endsAt"], "2025-03-14T09:31:30Z");
    assert!(!s.body.to_string().contains("s3cret"));
}

#[tokio::test]
async fn one_alertmanager_accepting_is_enough_and_every_one_is_tried() {
    let (down, up) = (Recorder::start(StatusCode::INTERNAL_SERVER_ERROR).await, Recorder::start(StatusCode::OK).await);
    let client = AlertmanagerClient::new(&[down.url(""), up.url("")]).unwrap();
    client.send(&[Alert::from_message(&opened("inc-8", at("2025-03-14T09:30:42Z")))]).await.unwrap();
    assert_eq!((down.seen().len(), up.seen().len()), (1, 1));
    assert_eq!(down.seen()[0].body, up.seen()[0].body);
}

#[tokio::test]
async fn when_none_accepts_the_error_names_each_url_without_its_password() {
    let failing = Recorder::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let refused = Url::parse(&format!("http://am:hunter2@{closed}/")).unwrap();
    let client = AlertmanagerClient::new(&[failing.url("am:s3cret@"), refused]).unwrap();
    let err = client.send(&[Alert::from_message(&opened("inc-9", at("2025-03-14T09:30:42Z")))]).await.unwrap_err();
    let text = err.to_string();
    assert!(text.contains(&format!("http://am:***@{}/api/v2/alerts: answered 500: boom", failing.addr)), "{text}");
    assert!(text.contains(&format!("http://am:***@{closed}/api/v2/alerts: ")), "{text}");
    assert!(!text.contains("s3cret") && !text.contains("hunter2"), "{text}");
    assert!(matches!(&err, AlertmanagerError::NoneAccepted(r) if r.len() == 2), "{err:?}");
}

#[tokio::test]
async fn the_real_alertmanager_shows_the_alert_active_then_resolved() {
    let config = "route:\n  receiver: \"null\"\nreceivers:\n  - name: \"null\"\n";
    let Some(am) = RealAlertmanager::start(config).await else { return };
    let client = AlertmanagerClient::new(std::slice::from_ref(&am.base)).unwrap();
    let now = jiff::Timestamp::now();
    client.send(&[Alert::from_message(&opened("inc-real", now))]).await.unwrap_or_else(|e| panic!("{e}\n{}", am.log()));

    let listed = am.alerts("inc-real").await;
    assert_eq!(listed.len(), 1, "{listed:?}\n{}", am.log());
    let a = &listed[0];
    assert_eq!(a["status"]["state"], "active", "{a}");
    for (k, v) in [
        ("alertname", "GuardianIncident"),
        ("severity", "page"),
        ("team", "business"),
        ("environment", "prod"),
        ("check", "payments-health"),
        ("target", "nextgen-dashboard"),
    ] {
        assert_eq!(a["labels"][k], v, "{k} in {a}");
    }
    assert_eq!(a["annotations"]["revenue_at_risk_eur"], "1234.56");
    assert_eq!(a["generatorURL"], "https://ops:***@guardian.example/status");

    client.send(&[Alert::from_message(&resolved("inc-real", jiff::Timestamp::now()))]).await.unwrap();
    eventually(Duration::from_secs(10), "the resolved alert is no longer active", || async {
        am.alerts("inc-real").await.is_empty()
    })
    .await;
}
