//! Faults survived: every notifier down during a bad rollout. A guardian in
//! Kubernetes mode (the real binary, against the fake API server and the
//! NEXTGEN simulator) tells a real Alertmanager and Slack, Teams and generic
//! webhooks; all of them are down from the start, two refusing connections
//! (Slack, generic) and two hanging (Alertmanager, Teams: connections
//! accepted, never answered, so each attempt waits out the 5 s send timeout).
//!
//! What must hold: the pause and the rollback are not delayed by the
//! notifiers (both within the check's detection bound of the fault);
//! meanwhile every channel counts its waiting messages and its failures, and
//! /readyz stays 200 (a guardian that cannot notify still guards); a SIGKILL and a restart on the same SQLite file lose
//! nothing (the outbox is read back); and once every receiver is back, each
//! message reaches each channel exactly once, in the order it was queued.
//! Alertmanager is told each message once too (its re-send of firing
//! alerts, at-least-once by design, is set to 4 m, longer than the test).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::path::Path;
use std::time::Duration;

use guardian::notify::DeliveryState;
use support::alertmanager::RealAlertmanager;
use support::eventually::eventually;
use support::guardian::Guardian;
use support::kube_guardian::{
    Cluster, LEASE_DURATION, NAME, NS, RENEW_EVERY, STALE_AFTER, actions, armed, count, get_json, kill, leading, ready,
    watching,
};
use support::outage::Receiver;
use support::promtext::sample;
use support::recorder::Seen;
use tokio::time::Instant;

/// Metric labels of the four channels.
const CHANNELS: [&str; 4] = ["alertmanager", "slack", "teams", "generic"];
/// Alertmanager routing everything to a receiver that sends nothing: the test reads what reached it.
const AM_CONFIG: &str = "route: { receiver: 'null' }\nreceivers: [ { name: 'null' } ]\n";

struct Receivers {
    alertmanager: Receiver,
    slack: Receiver,
    teams: Receiver,
    generic: Receiver,
}

impl Receivers {
    fn all(&self) -> [(&'static str, &Receiver); 4] {
        [
            ("alertmanager", &self.alertmanager),
            ("slack", &self.slack),
            ("teams", &self.teams),
            ("generic", &self.generic),
        ]
    }
}

fn config(c: &Cluster, r: &Receivers) -> String {
    let d = c.sim().dashboard();
    format!(
        r#"environment: prod
listen: "127.0.0.1:0"
storage: {{ url: "sqlite://guardian.db" }}
probing: {{ per_host_per_second: 1000 }}
checks:
  - name: payments-health
    url: "http://{d}/api/payments/health"
    interval: 1s
    budget: 3s
    timeout: 6s
guard:
  mode: kubernetes
  lease: {{ duration: {lease}s, renew_every: {renew}s }}
  targets:
    - {{ kind: Deployment, namespace: {NS}, name: {NAME}, checks: [payments-health] }}
  breach: {{ window: 5, max_bad: 3, confirm_interval: 250ms }}
notify:
  alertmanager: ['http://{am}']
  resend_every: 4m
  webhooks:
    - {{ url: 'http://{slack}/services/T000/B000/s3cret', format: slack }}
    - {{ url: 'http://{teams}/workflows/triggers/manual', format: teams }}
    - {{ url: 'http://{generic}/hook', format: generic }}
gate:
  stale_after: {stale}s
"#,
        lease = LEASE_DURATION.as_secs(),
        renew = RENEW_EVERY.as_secs(),
        stale = STALE_AFTER.as_secs(),
        am = r.alertmanager.addr,
        slack = r.slack.addr,
        teams = r.teams.addr,
        generic = r.generic.addr,
    )
}

fn start(c: &Cluster, dir: &Path, kubeconfig: &Path, r: &Receivers) -> Guardian {
    let envs = [("KUBECONFIG", kubeconfig.to_str().unwrap()), ("HOSTNAME", "guardian-0")];
    Guardian::start_in(dir, &config(c, r), &envs)
}

async fn metrics(g: &Guardian) -> String {
    reqwest::get(g.url("/metrics")).await.unwrap().text().await.unwrap()
}

fn queued(metrics: &str, channel: &str) -> f64 {
    sample(metrics, "guardian_notifications_queued", &[("channel", channel)]).unwrap()
}

fn sent(metrics: &str, channel: &str, outcome: &str) -> f64 {
    sample(metrics, "guardian_notifications_total", &[("channel", channel), ("outcome", outcome)]).unwrap()
}

async fn readyz(g: &Guardian) -> (u16, String) {
    let r = reqwest::get(g.url("/readyz")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

/// The outbox as the guardian stored it: (key, channel, state), oldest first.
async fn outbox(dir: &Path) -> Vec<(String, String, DeliveryState)> {
    let url = format!("sqlite://{}", dir.join("guardian.db").display());
    let store = guardian::store::open(&url).await.unwrap();
    let mut rows = store.deliveries_since(jiff::Timestamp::UNIX_EPOCH).await.unwrap();
    rows.sort_by(|a, b| (a.created_at, &a.key).cmp(&(b.created_at, &b.key)));
    rows.into_iter().map(|d| (d.key, d.channel, d.state)).collect()
}

/// What each format carries of the message's one-line summary.
fn summary_of(channel: &str, seen: &Seen) -> String {
    let b = &seen.body;
    let text = match channel {
        "generic" => b["summary"].as_str(),
        "slack" => b["text"].as_str(),
        "teams" => b["attachments"][0]["content"]["body"][1]["text"].as_str(),
        // The message's own alert goes last; a resolve may end the incident's other alerts before it.
        _ => b.as_array().and_then(|a| a.last()).and_then(|a| a["annotations"]["summary"].as_str()),
    };
    let text = text.unwrap_or_else(|| panic!("{channel}: no summary in {b}"));
    text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_notifier_down_the_guard_acts_on_time_and_after_a_kill_each_message_arrives_once_in_order() {
    let Some(am) = RealAlertmanager::start(AM_CONFIG).await else { return };
    let r = Receivers {
        alertmanager: Receiver::refusing().passing_on_to(am.base.clone()),
        slack: Receiver::refusing(),
        teams: Receiver::refusing(),
        generic: Receiver::refusing(),
    };
    r.alertmanager.hang().await;
    r.teams.hang().await;
    let c = Cluster::start().await;
    c.seed_deployment();
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = c.fake.kubeconfig(dir.path());
    let mut g = start(&c, dir.path(), &kubeconfig, &r);
    ready(&g).await;
    let bound =
        sample(&metrics(&g).await, "guardian_detection_bound_seconds", &[("check", "payments-health")]).unwrap();
    let bound = Duration::from_secs_f64(bound);

    // The bad rollout: acted on within the detection bound, whatever the notifiers do.
    c.roll_out();
    armed(&g).await;
    c.break_payments();
    let fault = Instant::now();
    eventually(bound + Duration::from_secs(10), "paused", || async { !c.pauses().is_empty() }).await;
    let paused_in = fault.elapsed();
    eventually(Duration::from_secs(10), "rolled back", || async { !c.rollbacks().is_empty() }).await;
    let rolled_back_in = fault.elapsed();
    eprintln!("paused {paused_in:?} and rolled back {rolled_back_in:?} after the fault (bound {bound:?})");
    assert!(paused_in <= bound, "the pause took {paused_in:?}, over the {bound:?} detection bound");
    assert!(rolled_back_in <= bound, "the rollback took {rolled_back_in:?}, over the {bound:?} detection bound");

    // During the outage: every channel holds its messages and counts its failures; the guardian stays ready.
    eventually(Duration::from_secs(20), "every channel failed and holds its messages", || async {
        let m = metrics(&g).await;
        CHANNELS.iter().all(|c| queued(&m, c) >= 3.0 && sent(&m, c, "failed") >= 1.0)
    })
    .await;
    let m = metrics(&g).await;
    for channel in CHANNELS {
        assert_eq!(sent(&m, channel, "ok"), 0.0, "{channel}: nothing got through an outage");
    }
    let (code, body) = readyz(&g).await;
    assert_eq!(code, 200, "notifiers down do not make a guardian unready: {body}");
    assert!(body.starts_with("ready"), "{body}");
    let note = body.lines().find(|l| l.starts_with("note: notifications waiting for receivers that fail: "));
    let note = note.unwrap_or_else(|| panic!("/readyz says the notifiers fail: {body}"));
    for channel in CHANNELS {
        assert!(note.contains(&format!("{channel} ")), "{channel} named: {note}");
    }
    let a = actions(&g).await;
    let listed: Vec<String> = a.iter().map(|a| format!("{} {} {}", a["action"], a["outcome"], a["id"])).collect();
    assert_eq!((count(&a, "pause", "ok"), count(&a, "rollback", "ok")), (1, 1), "{listed:#?}");

    // Every queued message is in storage before the kill: the outbox is what a restart reads back.
    let waiting = queued(&m, "generic") as usize;
    eventually(Duration::from_secs(10), "the outbox is stored", || async {
        let rows = outbox(dir.path()).await;
        rows.len() == 4 * waiting && rows.iter().all(|(_, _, s)| *s == DeliveryState::Pending)
    })
    .await;
    kill(&mut g);
    for (channel, receiver) in r.all() {
        assert!(receiver.seen().is_empty(), "{channel} was down, yet got {:?}", receiver.seen());
    }

    // Restarted on the same storage, still without receivers: the outbox is back in the queues.
    let g = start(&c, dir.path(), &kubeconfig, &r);
    watching(&g).await;
    leading(&g).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let m = metrics(&g).await;
        if CHANNELS.iter().all(|c| queued(&m, c) >= waiting as f64) {
            break;
        }
        if Instant::now() > deadline {
            let logs = g.all_logs();
            let notable: Vec<&str> =
                logs.lines().filter(|l| l.contains("WARN") || l.contains("ERROR") || l.contains("outbox")).collect();
            panic!("the outbox is not read back: {m}\n{}", notable.join("\n"));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eventually(Duration::from_secs(10), "the restarted guardian is ready, receivers or not", || async {
        readyz(&g).await.0 == 200
    })
    .await;

    // The fault ends while the receivers are still down: the resolve joins the queues.
    c.sim().faults().clear();
    c.fake.sync_deployment(NS, NAME);
    eventually(Duration::from_secs(20), "the incident closes", || async {
        let incidents = get_json(&g, "/api/v1/incidents").await["incidents"].as_array().cloned().unwrap();
        !incidents.is_empty() && incidents.iter().all(|i| i["ended_at"].is_string())
    })
    .await;
    eventually(Duration::from_secs(10), "the resolve is queued", || async {
        let m = metrics(&g).await;
        CHANNELS.iter().all(|c| queued(&m, c) >= (waiting + 1) as f64)
    })
    .await;

    // Every receiver back: each message once, in order, on every channel.
    for (_, receiver) in r.all() {
        receiver.answer().await;
    }
    let back = Instant::now();
    eventually(Duration::from_secs(50), "every queue drains", || async {
        let m = metrics(&g).await;
        CHANNELS.iter().all(|c| queued(&m, c) == 0.0)
    })
    .await;
    eprintln!("receivers back: every queue drained in {:?}", back.elapsed());
    let (code, body) = readyz(&g).await;
    assert_eq!((code, body.as_str()), (200, "ready\n"), "nothing waits any more");
    // Let a duplicate show up, if one were coming.
    tokio::time::sleep(Duration::from_secs(2)).await;

    let generic = r.generic.seen();
    let events: Vec<(String, String)> = generic
        .iter()
        .map(|s| (s.body["event"].as_str().unwrap().into(), s.body["action"].as_str().unwrap().into()))
        .collect();
    eprintln!("told, in order: {events:?}");
    assert_eq!(events.len(), waiting + 1, "{events:?}");
    assert_eq!(events.first().map(|e| e.0.as_str()), Some("incident_opened"), "{events:?}");
    assert_eq!(events.last().map(|e| e.0.as_str()), Some("incident_resolved"), "{events:?}");
    let acts: Vec<&str> = events.iter().filter(|e| e.0 == "action_taken").map(|e| e.1.as_str()).collect();
    assert!(acts.contains(&"paused") || acts.contains(&"paused_and_rolled_back"), "the pause is told: {events:?}");
    assert!(acts.iter().any(|a| a.contains("rolled_back")), "the rollback is told: {events:?}");
    let resolved = &generic.last().unwrap().body;
    assert!(
        resolved["summary"].as_str().unwrap().contains("rolled back from revision 2 to 1"),
        "the resolve, sent after the restart, still says what Guardian did: {resolved}"
    );
    let incident = generic[0].body["incident"].clone();
    assert!(generic.iter().all(|s| s.body["incident"] == incident), "one incident, across the restart: {generic:?}");
    let told: Vec<String> = generic.iter().map(|s| summary_of("generic", s)).collect();
    let mut unique = told.clone();
    unique.dedup();
    assert_eq!(unique.len(), told.len(), "nothing told twice: {told:#?}");
    let m = metrics(&g).await;
    for (channel, receiver) in r.all() {
        let seen = receiver.seen();
        assert!(seen.iter().all(|s| s.method == "POST"), "{channel}: {seen:?}");
        let got: Vec<String> = seen.iter().map(|s| summary_of(channel, s)).collect();
        assert_eq!(got, told, "{channel}: each message once, in the order queued");
        assert_eq!(queued(&m, channel), 0.0, "{channel}");
        assert_eq!(sent(&m, channel, "ok"), told.len() as f64, "{channel}: the restarted guardian delivered them all");
    }
    assert!(r.alertmanager.seen().iter().all(|s| s.path == "/api/v2/alerts"));
    let a = actions(&g).await;
    for channel in ["alertmanager", "slack", "teams", "generic"] {
        let delivered =
            a.iter().filter(|a| a["detail"].as_str().unwrap().starts_with(&format!("{channel} (delivered)")));
        assert_eq!(delivered.count(), told.len(), "{channel}: the audit log records each delivery: {a:#?}");
    }
    assert_eq!(c.pauses().len() + c.rollbacks().len(), 2, "one pause and one rollback in all");
    let rows = outbox(dir.path()).await;
    assert!(rows.iter().all(|(_, _, s)| *s == DeliveryState::Delivered), "{rows:#?}");
}
