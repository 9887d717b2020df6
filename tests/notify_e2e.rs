//! Notifications end to end: a guardian probing the NEXTGEN simulator, a
//! fault injected at run time, and what reaches the receivers.
//!
//! - Through the real Alertmanager with `alerts/alertmanager.yml`: only its
//!   receiver URLs are templated to a local recording server, and its
//!   group waits and intervals shortened to a second so the test takes
//!   seconds, not minutes; routes, matchers and inhibitions are as shipped.
//! - A webhook receiver that is down for 10 s gets the message once it is
//!   back, once.
//! - A restart on the same storage sends nothing twice.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::http::StatusCode;
use guardian::app::App;
use guardian::clock::SystemClock;
use guardian::config::{self, MapEnv};
use guardian::sim::Fault;
use serde_json::Value;
use support::alertmanager::RealAlertmanager;
use support::eventually::eventually;
use support::in_process::dashboard;
use support::promtext::sample;
use support::recorder::{Recorder, Seen};
use support::redis::TestPrefix;
use support::sim::Sim;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

struct Running {
    app: App,
    api: SocketAddr,
    stop: CancellationToken,
    running: Option<guardian::app::Running>,
}

impl Running {
    async fn get(&self, path: &str) -> String {
        reqwest::get(format!("http://{}{path}", self.api)).await.unwrap().text().await.unwrap()
    }

    /// Stops it and waits for its tasks and queued writes, as a clean shutdown does.
    async fn shut_down(mut self) {
        self.stop.cancel();
        if let Some(r) = self.running.take() {
            r.drain(Duration::from_secs(5)).await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Sim {
    fn fail_payments(&self) {
        self.sim.faults().set(Fault { status: Some(503), error_rate: 1.0, ..Fault::on("/api/payments/health") });
    }

    fn heal(&self) {
        self.sim.faults().clear();
    }
}

/// How a test's guardian is set up.
#[derive(Clone)]
struct Setup {
    environment: &'static str,
    storage: String,
    /// The body of the `notify` section.
    notify: String,
    /// Guard keys besides `breach` and `lease`; the guard is off unless they say otherwise.
    guard: String,
    /// The `redis` section's body, if any.
    redis: Option<String>,
    /// `guard.lease`: the Redis lock's timing too.
    lease: &'static str,
}

impl Setup {
    fn new(environment: &'static str, notify: String) -> Self {
        Self {
            environment,
            storage: "sqlite::memory:".into(),
            notify,
            guard: "  mode: off\n".into(),
            redis: None,
            lease: "{ duration: 2s, renew_every: 500ms }",
        }
    }
}

/// A guardian watching the simulator's payments endpoint, once its check is up.
async fn guardian(sim: &Sim, setup: &Setup) -> Running {
    let g = launch(sim, setup).await;
    eventually(Duration::from_secs(5), "the check has a result", || async {
        g.app.board.snapshot().iter().all(|c| c.up)
    })
    .await;
    g
}

/// The same without waiting for the check (it may be failing already).
async fn launch(sim: &Sim, setup: &Setup) -> Running {
    let d = sim.sim.dashboard();
    let Setup { environment, storage, notify, guard, redis, lease } = setup;
    let redis = redis.as_ref().map(|r| format!("redis:\n{r}\n")).unwrap_or_default();
    let yaml = format!(
        r#"environment: {environment}
storage: {{ url: '{storage}' }}
probing: {{ per_host_per_second: 1000 }}
{redis}checks:
  - name: payments-health
    url: "http://{d}/api/payments/health"
    interval: 500ms
    budget: 3s
    timeout: 6s
guard:
  breach: {{ window: 5, max_bad: 3, confirm_interval: 250ms }}
  lease: {lease}
{guard}notify:
{notify}
gate:
  stale_after: 8s
"#
    );
    let name = format!("guardian-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let env = MapEnv(HashMap::from([("HOSTNAME".to_string(), name)]));
    let config = config::parse(&yaml, "notify.yaml", &env).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    let app = App::build(config, Arc::new(SystemClock), &env).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let running = Some(app.start(listener, stop.clone()));
    Running { app, api, stop, running }
}

/// Replica names (`HOSTNAME`), unique within the test process.
static NEXT: AtomicU32 = AtomicU32::new(0);

/// Webhook bodies of one event kind (`incident_opened`, …) in the generic format.
fn events(seen: &[Seen], event: &str) -> Vec<Value> {
    seen.iter().filter(|s| s.body["event"] == event).map(|s| s.body.clone()).collect()
}

/// Alertmanager's webhook notifications that reached `path`.
fn notifications<'a>(seen: &'a [Seen], path: &str) -> Vec<&'a Value> {
    seen.iter().filter(|s| s.path == path).map(|s| &s.body).collect()
}

/// alerts/alertmanager.yml with its receivers sent to `receiver` and its
/// waits shortened to a second.
fn shipped_routing(receiver: &Recorder) -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/alertmanager.yml")).unwrap();
    let base = format!("http://{}", receiver.addr);
    let mut out = text;
    for (placeholder, path) in [
        ("http://ops-webhook.blueocean-nextgen-prod.svc:8080/alerts", "/ops"),
        ("http://business-webhook.blueocean-nextgen-prod.svc:8080/alerts", "/business"),
        ("http://business-pager.blueocean-nextgen-prod.svc:8080/page", "/page"),
    ] {
        assert!(out.contains(placeholder), "{placeholder} is no longer in alerts/alertmanager.yml");
        out = out.replace(placeholder, &format!("{base}{path}"));
    }
    for (from, to) in [("group_wait: 10s", "group_wait: 1s"), ("group_interval: 1m", "group_interval: 1s")] {
        assert!(out.contains(from), "{from} is no longer in alerts/alertmanager.yml");
        out = out.replace(from, to);
    }
    out
}

#[tokio::test]
async fn a_breach_reaches_the_business_receiver_through_alertmanager_and_recovery_resolves_it() {
    let receiver = Recorder::start(StatusCode::OK).await;
    let Some(am) = RealAlertmanager::start(&shipped_routing(&receiver)).await else { return };
    let sim = Sim::start().await;
    let g = guardian(&sim, &Setup::new("dev", format!("  alertmanager: ['{}']", am.base))).await;

    sim.fail_payments();
    eventually(Duration::from_secs(30), "the business receiver hears of the incident", || async {
        notifications(&receiver.seen(), "/business").iter().any(|n| n["status"] == "firing")
    })
    .await;
    let seen = receiver.seen();
    let firing = notifications(&seen, "/business").into_iter().find(|n| n["status"] == "firing").unwrap().clone();
    assert_eq!(firing["receiver"], "business", "{firing}");
    let alert = &firing["alerts"][0];
    for (k, v) in [
        ("alertname", "GuardianIncident"),
        ("team", "business"),
        ("environment", "dev"),
        ("severity", "warning"),
        ("check", "payments-health"),
    ] {
        assert_eq!(alert["labels"][k], v, "{k} in {alert}");
    }
    let summary = alert["annotations"]["summary"].as_str().unwrap();
    assert!(summary.starts_with("payments-health is failing for"), "{summary}");
    assert!(summary.contains("status 503"), "what broke, in words: {summary}");
    assert!(notifications(&seen, "/page").is_empty(), "a warning in dev pages nobody");
    assert!(notifications(&seen, "/ops").is_empty(), "business alerts are not ops' noise");

    sim.heal();
    eventually(Duration::from_secs(30), "the business receiver hears it resolved", || async {
        notifications(&receiver.seen(), "/business").iter().any(|n| n["status"] == "resolved")
    })
    .await;
    let seen = receiver.seen();
    let resolved = notifications(&seen, "/business").into_iter().find(|n| n["status"] == "resolved").unwrap().clone();
    assert_eq!(resolved["alerts"][0]["labels"]["incident"], alert["labels"]["incident"], "{resolved}");
    assert_ne!(resolved["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z", "{resolved}");
    let metrics = g.get("/metrics").await;
    let sent = sample(&metrics, "guardian_notifications_total", &[("channel", "alertmanager"), ("outcome", "ok")]);
    assert!(sent.unwrap_or(0.0) >= 2.0, "opened and resolved were sent: {sent:?}\n{}", am.log());
}

#[tokio::test]
async fn a_prod_breach_pages_and_the_business_channel_sees_the_page_too() {
    let receiver = Recorder::start(StatusCode::OK).await;
    let Some(am) = RealAlertmanager::start(&shipped_routing(&receiver)).await else { return };
    let sim = Sim::start().await;
    let _g = guardian(&sim, &Setup::new("prod", format!("  alertmanager: ['{}']", am.base))).await;
    sim.fail_payments();
    eventually(Duration::from_secs(30), "the pager and the business channel both hear it", || async {
        let seen = receiver.seen();
        !notifications(&seen, "/page").is_empty() && !notifications(&seen, "/business").is_empty()
    })
    .await;
    let seen = receiver.seen();
    let page = notifications(&seen, "/page")[0];
    assert_eq!(page["receiver"], "business-page", "{page}");
    assert_eq!(page["alerts"][0]["labels"]["severity"], "page", "{page}");
    assert!(notifications(&seen, "/ops").is_empty());
}

#[tokio::test]
async fn a_webhook_down_for_ten_seconds_gets_the_message_once_it_is_back() {
    // A port nobody listens on, until the receiver starts on it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let sim = Sim::start().await;
    let notify = format!("  webhooks:\n    - {{ url: 'http://{addr}/hook', format: generic }}");
    let g = guardian(&sim, &Setup::new("prod", notify)).await;
    sim.fail_payments();
    eventually(Duration::from_secs(15), "a delivery failed", || async {
        let metrics = g.get("/metrics").await;
        sample(&metrics, "guardian_notifications_total", &[("channel", "generic"), ("outcome", "failed")])
            .is_some_and(|n| n >= 1.0)
    })
    .await;
    let since_first_failure = tokio::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let receiver = Recorder::start_on(addr, StatusCode::OK).await;
    eventually(Duration::from_secs(30), "the message arrives once the receiver is back", || async {
        !events(&receiver.seen(), "incident_opened").is_empty()
    })
    .await;
    let waited = since_first_failure.elapsed();
    // Let any duplicate show up before counting.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let opened = events(&receiver.seen(), "incident_opened");
    assert_eq!(opened.len(), 1, "once: {opened:?}");
    let m = &opened[0];
    assert_eq!(m["check"], "payments-health");
    assert_eq!(m["environment"], "prod");
    assert_eq!(m["action"], "not_acted", "{m}");
    assert!(m["not_acted_reason"].as_str().unwrap().contains("guard is off"), "{m}");
    assert!(m["reason"].as_str().unwrap().contains("503"), "{m}");
    assert!(m["budget_seconds"] == 3.0 && m["gate"] == "NO-GO", "{m}");
    assert!(waited < Duration::from_secs(40), "back-off stays short: {waited:?}");
    let metrics = g.get("/metrics").await;
    let ok = sample(&metrics, "guardian_notifications_total", &[("channel", "generic"), ("outcome", "ok")]);
    assert_eq!(ok, Some(1.0), "{metrics}");
    assert_eq!(sample(&metrics, "guardian_notifications_queued", &[("channel", "generic")]), Some(0.0));
    let actions = g.get("/api/v1/actions").await;
    assert!(actions.contains("generic (delivered)"), "the audit log records the delivery: {actions}");
}

#[tokio::test]
async fn a_restart_on_the_same_storage_sends_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let storage = format!("sqlite://{}", dir.path().join("guardian.db").display());
    let receiver = Recorder::start(StatusCode::OK).await;
    let notify = format!("  webhooks:\n    - {{ url: 'http://{}/hook', format: generic }}", receiver.addr);
    let sim = Sim::start().await;
    let setup = Setup { storage, ..Setup::new("prod", notify) };
    let g = guardian(&sim, &setup).await;
    sim.fail_payments();
    eventually(Duration::from_secs(15), "the incident is announced", || async {
        !events(&receiver.seen(), "incident_opened").is_empty()
    })
    .await;
    g.shut_down().await;

    // The incident is still open after the restart (restored from storage);
    // its announcement is in the outbox, so it is not sent again.
    let g = launch(&sim, &setup).await;
    eventually(Duration::from_secs(10), "the incident is restored", || async {
        !g.app.history.open_incidents().is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(events(&receiver.seen(), "incident_opened").len(), 1, "{:?}", receiver.seen());

    sim.heal();
    eventually(Duration::from_secs(30), "the resolve is sent", || async {
        !events(&receiver.seen(), "incident_resolved").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let seen = receiver.seen();
    let (opened, resolved) = (events(&seen, "incident_opened"), events(&seen, "incident_resolved"));
    assert_eq!((opened.len(), resolved.len()), (1, 1), "{seen:?}");
    assert_eq!(opened[0]["incident"], resolved[0]["incident"], "the same incident, across the restart");
}

/// The guard in simulated mode on nextgen-dashboard.
const SIMULATED_GUARD: &str = "  mode: simulated\n  targets:\n    - { kind: Deployment, namespace: blueocean-nextgen-prod, name: nextgen-dashboard }\n";

/// Two replicas on one Redis, each a prefix of its own test.
fn on_redis(prefix: &TestPrefix, notify: String) -> Setup {
    let redis = format!("  url: '{}'\n  key_prefix: '{}'", support::redis::URL, prefix.prefix);
    Setup { redis: Some(redis), ..Setup::new("prod", notify) }
}

fn leaders(gs: &[&Running]) -> usize {
    gs.iter().filter(|g| g.app.leadership.is_leader()).count()
}

#[tokio::test]
async fn two_guardians_on_one_redis_lead_once_and_tell_of_an_incident_once() {
    if support::redis::redis_url_or_skip().await.is_none() {
        return;
    }
    let prefix = TestPrefix::new();
    let receiver = Recorder::start(StatusCode::OK).await;
    let notify = format!("  webhooks:\n    - {{ url: 'http://{}/hook', format: generic }}", receiver.addr);
    let sim = Sim::start().await;
    let setup = on_redis(&prefix, notify);
    let (a, b) = (guardian(&sim, &setup).await, guardian(&sim, &setup).await);
    eventually(Duration::from_secs(5), "one of the two leads", || async { leaders(&[&a, &b]) == 1 }).await;
    for _ in 0..10 {
        assert_eq!(leaders(&[&a, &b]), 1, "never two leaders, never none once elected");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    sim.fail_payments();
    eventually(Duration::from_secs(15), "both replicas see the incident", || async {
        !a.app.history.open_incidents().is_empty() && !b.app.history.open_incidents().is_empty()
    })
    .await;
    eventually(Duration::from_secs(15), "the incident is told", || async {
        !events(&receiver.seen(), "incident_opened").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let opened = events(&receiver.seen(), "incident_opened");
    assert_eq!(opened.len(), 1, "once, though two replicas saw it: {opened:?}");

    // The leader goes away; the other takes over and tells of the recovery,
    // under the id the incident was announced with.
    let (leader, follower) = if a.app.leadership.is_leader() { (a, b) } else { (b, a) };
    leader.shut_down().await;
    eventually(Duration::from_secs(5), "the other replica leads", || async { follower.app.leadership.is_leader() })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(events(&receiver.seen(), "incident_opened").len(), 1, "the new leader does not announce it again");
    sim.heal();
    eventually(Duration::from_secs(30), "the recovery is told", || async {
        !events(&receiver.seen(), "incident_resolved").is_empty()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let resolved = events(&receiver.seen(), "incident_resolved");
    assert_eq!(resolved.len(), 1, "{resolved:?}");
    assert_eq!(resolved[0]["incident"], opened[0]["incident"], "one incident, whoever told it");
    assert_eq!(prefix.get("incident:payments-health").await, None, "the incident's claim is released");
}

#[tokio::test]
async fn with_redis_unreachable_no_replica_acts_and_readyz_and_metrics_say_so() {
    let receiver = Recorder::start(StatusCode::OK).await;
    let notify = format!("  webhooks:\n    - {{ url: 'http://{}/hook', format: generic }}", receiver.addr);
    let setup = Setup {
        redis: Some("  url: 'redis://127.0.0.1:1'".into()),
        guard: SIMULATED_GUARD.into(),
        ..Setup::new("prod", notify)
    };
    let sim = Sim::start().await;
    let g = guardian(&sim, &setup).await;
    let cluster = g.app.guard.as_ref().unwrap().simulated.clone().unwrap();
    let dashboard = dashboard();
    cluster.start_rollout(&dashboard, "nextgen-dashboard:1.8.2").unwrap();
    sim.fail_payments();
    eventually(Duration::from_secs(15), "the breach is seen", || async { !g.app.history.open_incidents().is_empty() })
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(cluster.calls().is_empty(), "no lock, no action: {:?}", cluster.calls());
    assert!(receiver.seen().is_empty(), "no lock, no notification: {:?}", receiver.seen());

    let r = reqwest::get(format!("http://{}/readyz", g.api)).await.unwrap();
    assert_eq!(r.status(), 503);
    let text = r.text().await.unwrap();
    assert!(text.contains("redis unreachable") && text.contains("no replica acts without a valid lock"), "{text}");
    assert!(text.contains("redis://127.0.0.1:1"), "names where: {text}");
    let metrics = g.get("/metrics").await;
    assert_eq!(sample(&metrics, "guardian_redis_up", &[]), Some(0.0), "{metrics}");
    assert_eq!(sample(&metrics, "guardian_leader", &[]), Some(0.0));
    // Probing and the gate go on.
    let gate = reqwest::get(format!("http://{}/api/v1/gate?environment=prod", g.api)).await.unwrap();
    assert_eq!(gate.status(), 409);
    let body: Value = serde_json::from_str(&gate.text().await.unwrap()).unwrap();
    assert_eq!(body["decision"], "no-go", "{body}");
    assert!(
        sample(&metrics, "guardian_probes_total", &[("check", "payments-health"), ("outcome", "failed")]).unwrap()
            > 0.0
    );
}

#[tokio::test]
async fn a_bad_rollout_is_told_step_by_step_and_a_dead_receiver_delays_nothing() {
    let receiver = Recorder::start(StatusCode::OK).await;
    // A receiver that accepts connections and never answers: each send to it hangs until its timeout.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let notify = format!(
        "  webhooks:\n    - {{ url: 'http://{}/hang', format: slack }}\n    - {{ url: 'http://{}/hook', format: generic }}",
        hanging.local_addr().unwrap(),
        receiver.addr
    );
    let sim = Sim::start().await;
    let g = guardian(&sim, &Setup { guard: SIMULATED_GUARD.into(), ..Setup::new("prod", notify) }).await;
    let cluster = g.app.guard.as_ref().unwrap().simulated.clone().unwrap();
    let dashboard = dashboard();
    cluster.start_rollout(&dashboard, "nextgen-dashboard:1.8.2").unwrap();
    sim.fail_payments();
    let started = tokio::time::Instant::now();
    eventually(Duration::from_secs(10), "paused and rolled back", || async { cluster.calls().len() >= 2 }).await;
    assert!(started.elapsed() < Duration::from_secs(5), "acted within the detection bound: {:?}", started.elapsed());

    eventually(Duration::from_secs(10), "the rollback is told", || async {
        events(&receiver.seen(), "action_taken").len() >= 2
    })
    .await;
    let seen = receiver.seen();
    let told: Vec<(String, String)> = seen
        .iter()
        .map(|s| (s.body["event"].as_str().unwrap().to_string(), s.body["action"].as_str().unwrap().to_string()))
        .collect();
    let target = "blueocean-nextgen-prod/Deployment/nextgen-dashboard";
    assert_eq!(
        told,
        [
            ("incident_opened".to_string(), "acting".to_string()),
            ("action_taken".to_string(), "paused".to_string()),
            ("action_taken".to_string(), "rolled_back".to_string()),
        ],
        "in order, each once: the pause when the breach rule trips, the rollback once later answers bear it out"
    );
    let rollback = &seen[2].body;
    assert_eq!(rollback["target"], target);
    assert_eq!((rollback["from_revision"].as_u64(), rollback["to_revision"].as_u64()), (Some(2), Some(1)));
    assert!(rollback["summary"].as_str().unwrap().contains("rolled back from revision 2 to 1"), "{rollback}");
    assert_eq!(seen[0].body["incident"], rollback["incident"], "one incident");
    let metrics = g.get("/metrics").await;
    assert_eq!(sample(&metrics, "guardian_notifications_queued", &[("channel", "slack")]), Some(3.0), "{metrics}");
}

#[tokio::test]
async fn firing_alerts_are_sent_again_until_the_incident_resolves_them() {
    let am = Recorder::start(StatusCode::OK).await;
    let notify = format!("  alertmanager: ['{}']\n  resend_every: 1s", am.url(""));
    let sim = Sim::start().await;
    let _g = guardian(&sim, &Setup::new("prod", notify)).await;
    let posts = || -> Vec<Value> {
        am.seen()
            .into_iter()
            .filter(|s| s.path == "/api/v2/alerts")
            .flat_map(|s| s.body.as_array().unwrap().clone())
            .collect()
    };
    sim.fail_payments();
    eventually(Duration::from_secs(15), "the incident's alert is sent three times", || async {
        posts().iter().filter(|a| a["labels"]["alertname"] == "GuardianIncident").count() >= 3
    })
    .await;
    let firing: Vec<Value> = posts();
    assert!(firing.iter().all(|a| a.get("endsAt").is_none()), "no endsAt while firing: {firing:?}");
    let starts: std::collections::HashSet<String> =
        firing.iter().map(|a| a["startsAt"].as_str().unwrap().to_string()).collect();
    assert_eq!(starts.len(), 1, "every re-send names the same start: {starts:?}");

    sim.heal();
    eventually(Duration::from_secs(30), "the alert is resolved", || async {
        posts().iter().any(|a| a.get("endsAt").is_some())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let after = posts();
    let last = after.last().unwrap();
    assert!(last.get("endsAt").is_some(), "nothing fires again once resolved: {last}");
    let resolved_at = after.iter().position(|a| a.get("endsAt").is_some()).unwrap();
    assert!(after[resolved_at..].iter().all(|a| a.get("endsAt").is_some()), "{after:?}");
}

#[tokio::test]
async fn a_leader_whose_lock_was_taken_over_cannot_act_on_its_stale_token() {
    if support::redis::redis_url_or_skip().await.is_none() {
        return;
    }
    let prefix = TestPrefix::new();
    // Renewed every 10 s: after the lock is taken over, this replica still
    // believes it leads until its next renewal, unless it asks Redis.
    let setup = Setup {
        guard: SIMULATED_GUARD.into(),
        lease: "{ duration: 30s, renew_every: 10s }",
        ..on_redis(&prefix, String::new())
    };
    let sim = Sim::start().await;
    let g = guardian(&sim, &setup).await;
    eventually(Duration::from_secs(5), "it leads", || async { g.app.leadership.is_leader() }).await;
    let token = g.app.leadership.fencing_token().unwrap();
    // Another replica takes over, as after this one stalled past its lock's expiry.
    let newer = prefix.incr("guardian:fence").await;
    prefix.set("guardian:leader", &format!("guardian-other:{newer}")).await;
    assert!(g.app.leadership.is_leader(), "it has not noticed yet");

    let cluster = g.app.guard.as_ref().unwrap().simulated.clone().unwrap();
    cluster.start_rollout(&dashboard(), "nextgen-dashboard:1.8.2").unwrap();
    sim.fail_payments();
    eventually(Duration::from_secs(15), "the breach is seen", || async { !g.app.history.open_incidents().is_empty() })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(cluster.calls().is_empty(), "a stale token never patches: {:?}", cluster.calls());
    assert!(!g.app.leadership.is_leader(), "asking Redis ended its leadership");
    g.app.writer.flush_now().await.unwrap();
    let actions = g.app.writer.store().actions(100).await.unwrap();
    let pause: Vec<_> = actions.iter().filter(|a| a.action == "pause").collect();
    assert!(pause.iter().any(|a| a.outcome == "intent"), "it decided to pause: {actions:?}");
    assert!(pause.iter().all(|a| a.outcome != "ok"), "{pause:?}");
    let refused = pause.iter().find(|a| a.outcome == "retry").unwrap_or_else(|| panic!("{actions:?}"));
    assert!(
        refused.detail.contains(&format!("not confirmed as the leader with fencing token {token}")),
        "{}",
        refused.detail
    );
}
