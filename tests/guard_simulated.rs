//! The guard end to end in `guard.mode: simulated`: a guardian probing the
//! NEXTGEN simulator, an in-memory cluster with real rollout semantics, and
//! faults injected at run time. What is asserted is what the guard did to
//! the cluster (the exact calls), what it recorded, and what it did not do.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use guardian::app::App;
use guardian::audit::ActionRecord;
use guardian::clock::SystemClock;
use guardian::cluster::{Cluster, MemoryCluster};
use guardian::config::{self, MapEnv};
use guardian::sim::{Fault, Simulator};
use support::eventually::eventually;
use support::in_process::{Started, dashboard, start_simulated};
use support::promtext::sample;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "guard-test-token";
const PAUSE: &str = "pause blueocean-nextgen-prod/Deployment/nextgen-dashboard";
const ROLLBACK: &str = "rollback blueocean-nextgen-prod/Deployment/nextgen-dashboard";

struct Guarded {
    app: App,
    sim: Option<Simulator>,
    cluster: Arc<MemoryCluster>,
    api: SocketAddr,
    stop: CancellationToken,
    sim_stop: CancellationToken,
}

/// A guardian on the simulator's payments and customers endpoints, guarding
/// nextgen-dashboard in simulated mode. `guard_extra` adds guard keys.
async fn start(guard_extra: &str) -> Guarded {
    start_on("sqlite::memory:", guard_extra).await
}

/// The same on a given storage URL (two replicas share one file).
async fn start_on(storage: &str, guard_extra: &str) -> Guarded {
    let sim_stop = CancellationToken::new();
    let sim = Simulator::start(IpAddr::V4(Ipv4Addr::LOCALHOST), [0, 0, 0], sim_stop.clone()).await.unwrap();
    let d = sim.dashboard();
    let yaml = format!(
        r#"environment: prod
storage: {{ url: '{storage}' }}
api: {{ token_env: GUARD_TOKEN }}
probing: {{ per_host_per_second: 1000 }}
checks:
  - name: payments-health
    url: "http://{d}/api/payments/health"
    interval: 1s
    budget: 3s
    timeout: 6s
  - name: customers-count
    url: "http://{d}/api/customers/count"
    interval: 1s
    budget: 1s
    expect:
      json:
        - {{ path: /count, no_drop: true }}
guard:
  mode: simulated
  targets:
    - kind: Deployment
      namespace: blueocean-nextgen-prod
      name: nextgen-dashboard
      checks: [payments-health, customers-count]
  breach: {{ window: 5, max_bad: 3, confirm_interval: 250ms }}
{guard_extra}gate:
  stale_after: 8s
"#
    );
    let env = MapEnv(HashMap::from([("GUARD_TOKEN".to_string(), TOKEN.to_string())]));
    let config = config::parse(&yaml, "guard.yaml", &env).unwrap_or_else(|e| panic!("{e}"));
    let stop = CancellationToken::new();
    let Started { app, cluster, api } = start_simulated(config, Arc::new(SystemClock), &env, &stop).await;
    let g = Guarded { app, sim: Some(sim), cluster, api, stop, sim_stop };
    eventually(Duration::from_secs(5), "every check has a good result", || async {
        g.app.board.snapshot().iter().all(|c| c.up)
    })
    .await;
    g
}

impl Guarded {
    fn fault(&self, f: Fault) {
        self.sim.as_ref().unwrap().faults().set(f);
    }

    async fn actions(&self) -> Vec<ActionRecord> {
        self.app.writer.flush_now().await.unwrap();
        let mut a = self.app.writer.store().actions(100).await.unwrap();
        a.reverse();
        a
    }

    async fn post(&self, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let r = reqwest::Client::new()
            .post(format!("http://{}{path}", self.api))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or_default())
    }

    async fn get(&self, path: &str) -> String {
        reqwest::get(format!("http://{}{path}", self.api)).await.unwrap().text().await.unwrap()
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop.cancel();
        self.sim_stop.cancel();
    }
}

fn errors(path: &str) -> Fault {
    Fault { status: Some(503), error_rate: 1.0, ..Fault::on(path) }
}

#[tokio::test]
async fn a_bad_rollout_is_paused_and_rolled_back_once() {
    let g = start("").await;
    g.cluster.start_rollout(&dashboard(), "nextgen-dashboard:1.8.2").unwrap();
    g.fault(errors("/api/payments/health"));
    eventually(Duration::from_secs(10), "paused then rolled back", || async { g.cluster.calls().len() >= 2 }).await;
    assert_eq!(g.cluster.calls(), [PAUSE, ROLLBACK]);
    let s = g.cluster.rollout(&dashboard()).await.unwrap();
    assert_eq!(s.template, "nextgen-dashboard:1.8.1", "the previous template runs again");
    assert_eq!(s.rolled_back_to.as_deref(), Some("nextgen-dashboard:1.8.1"));

    // The fault goes on (the change was not its only cause): never a second rollback.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(g.cluster.calls(), [PAUSE, ROLLBACK], "one pause and one rollback, whatever follows");

    let actions = g.actions().await;
    let seen: Vec<(&str, &str)> = actions.iter().map(|a| (a.action.as_str(), a.outcome.as_str())).collect();
    for want in [("pause", "ok"), ("rollback", "intent"), ("rollback", "ok")] {
        assert_eq!(seen.iter().filter(|s| **s == want).count(), 1, "{want:?} once in {seen:?}");
    }
    let rollback = actions.iter().find(|a| a.action == "rollback" && a.outcome == "ok").unwrap();
    assert!(rollback.detail.contains("from revision 2 to 1"), "{}", rollback.detail);
    assert!(rollback.incident.is_some(), "tied to the incident");
    let listed = g.get("/api/v1/actions").await;
    assert!(listed.contains("\"rollback\"") && listed.contains("\"pause\""), "{listed}");
    let metrics = g.get("/metrics").await;
    let target = "blueocean-nextgen-prod/Deployment/nextgen-dashboard";
    for action in ["pause", "rollback"] {
        let labels = [("target", target), ("action", action), ("outcome", "ok")];
        assert_eq!(sample(&metrics, "guardian_actions_total", &labels), Some(1.0), "{action}");
    }
    assert_eq!(sample(&metrics, "guardian_breach_to_action_seconds_count", &[("action", "pause")]), Some(1.0));
    assert_eq!(sample(&metrics, "guardian_detection_bound_seconds", &[("check", "payments-health")]), Some(4.5));

    // The page people read says what the guard did and how fast it can act.
    let page = g.get("/").await;
    for want in ["blueocean-nextgen-prod/Deployment/nextgen-dashboard", "4.50 s", "rolled back from revision 2 to 1"] {
        assert!(page.contains(want), "{want:?} missing from the status page:\n{page}");
    }
}

#[tokio::test]
async fn the_same_fault_without_a_rollout_opens_an_incident_and_touches_nothing() {
    let g = start("").await;
    g.fault(errors("/api/payments/health"));
    eventually(Duration::from_secs(10), "an incident opens", || async { !g.app.history.open_incidents().is_empty() })
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(g.cluster.calls().is_empty(), "{:?}", g.cluster.calls());
    assert_eq!(g.app.history.open_incidents().len(), 1);
    assert!(g.actions().await.iter().all(|a| a.action != "pause" && a.action != "rollback"));
}

#[tokio::test]
async fn dry_run_decides_and_records_without_patching() {
    let g = start("  dry_run: true\n").await;
    g.cluster.start_rollout(&dashboard(), "nextgen-dashboard:1.8.2").unwrap();
    g.fault(errors("/api/payments/health"));
    eventually(Duration::from_secs(10), "dry-run actions recorded", || async {
        g.actions().await.iter().filter(|a| a.outcome == "dry_run").count() == 2
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(g.cluster.calls().is_empty(), "{:?}", g.cluster.calls());
    let dry: Vec<String> = g.actions().await.into_iter().filter(|a| a.outcome == "dry_run").map(|a| a.action).collect();
    assert_eq!(dry, ["pause", "rollback"], "recorded once, not at every probe");
}

#[tokio::test]
async fn a_migration_declared_on_breach_pause_is_paused_never_rolled_back() {
    let g = start("").await;
    let body = serde_json::json!({"target": "blueocean-nextgen-prod/Deployment/nextgen-dashboard",
        "description": "drop column customers.legacy_ref", "on_breach": "pause"});
    let (status, answer) = g.post("/api/v1/migrations", body).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    let status_body: serde_json::Value = serde_json::from_str(&g.get("/api/v1/status").await).unwrap();
    assert_eq!(status_body["targets"][0]["armed"], true, "a migration arms the target without a rollout");
    g.fault(errors("/api/payments/health"));
    eventually(Duration::from_secs(10), "paused", || async { !g.cluster.calls().is_empty() }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(g.cluster.calls(), [PAUSE], "pause only");
    let (status, _) = g.post(&format!("/api/v1/migrations/{id}/finish"), serde_json::json!({})).await;
    assert_eq!(status, 200);
    let status_body: serde_json::Value = serde_json::from_str(&g.get("/api/v1/status").await).unwrap();
    assert_eq!(status_body["targets"][0]["armed"], false, "finish disarms");
    let (status, _) = g.post("/api/v1/migrations/nope/finish", serde_json::json!({})).await;
    assert_eq!(status, 404);
    let (status, answer) = g
        .post(
            "/api/v1/migrations",
            serde_json::json!({"target": "blueocean-nextgen-prod/Deployment/other", "description": "x"}),
        )
        .await;
    assert_eq!(status, 400);
    assert!(answer["error"].as_str().unwrap().contains("nextgen-dashboard"), "names the guarded targets: {answer}");
    let target = "blueocean-nextgen-prod/Deployment/nextgen-dashboard";
    for (body, says) in [
        (serde_json::json!({"target": target, "description": "  "}), "description must say what changes"),
        (serde_json::json!({"target": target, "description": "x", "on_breach": "ignore"}), "on_breach"),
        (serde_json::json!({"target": target}), "description"),
    ] {
        let (status, answer) = g.post("/api/v1/migrations", body.clone()).await;
        assert_eq!(status, 400, "{body}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{body}: {answer}");
    }
    let r = reqwest::Client::new()
        .post(format!("http://{}/api/v1/migrations", g.api))
        .header("content-type", "application/json")
        .body(serde_json::json!({"target": target, "description": "no token"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401, "declaring a migration needs the token");
}

#[tokio::test]
async fn the_simulator_stopped_during_a_rollout_is_paused_never_rolled_back() {
    let mut g = start("").await;
    g.cluster.start_rollout(&dashboard(), "nextgen-dashboard:1.8.2").unwrap();
    g.sim_stop.cancel();
    g.sim.take().unwrap().stopped().await;
    // Connection refused is no evidence: only missing data, after stale_after (8 s).
    eventually(Duration::from_secs(15), "paused for missing data", || async { !g.cluster.calls().is_empty() }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(g.cluster.calls(), [PAUSE], "never a rollback without evidence");
    let reason = g.cluster.annotation(&dashboard(), "guardian.blueocean.io/reason").unwrap();
    assert!(reason.contains("no answer"), "{reason}");
}

#[tokio::test]
async fn the_customer_count_dropping_during_a_rollout_is_a_breach_naming_both_numbers() {
    let g = start("").await;
    g.cluster.start_rollout(&dashboard(), "nextgen-dashboard:1.8.2").unwrap();
    eventually(Duration::from_secs(5), "the baseline is taken at arming", || async {
        let status: serde_json::Value = serde_json::from_str(&g.get("/api/v1/status").await).unwrap();
        status["baselines"].as_array().unwrap().iter().any(|b| b["check"] == "customers-count" && b["value"] == 1342.0)
    })
    .await;
    g.fault(Fault { json: Some(serde_json::json!({"count": 1200})), ..Fault::on("/api/customers/count") });
    eventually(Duration::from_secs(10), "paused then rolled back", || async { g.cluster.calls().len() >= 2 }).await;
    assert_eq!(g.cluster.calls(), [PAUSE, ROLLBACK]);
    let reason = g.cluster.annotation(&dashboard(), "guardian.blueocean.io/reason").unwrap();
    assert!(reason.contains("1342") && reason.contains("1200"), "{reason}");
}

#[tokio::test]
async fn a_breach_that_began_before_the_rollout_is_not_rolled_back() {
    let g = start("").await;
    g.fault(errors("/api/payments/health"));
    eventually(Duration::from_secs(10), "an incident opens", || async { !g.app.history.open_incidents().is_empty() })
        .await;
    // The release going out may well be the fix: it is not what broke payments.
    g.cluster.start_rollout(&dashboard(), "nextgen-dashboard:1.8.2").unwrap();
    eventually(Duration::from_secs(10), "the guard says why it leaves it alone", || async {
        g.actions().await.iter().any(|a| a.action == "notify" && a.detail.contains("began before this change"))
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(g.cluster.calls().is_empty(), "{:?}", g.cluster.calls());
}

#[tokio::test]
async fn a_migration_declared_on_one_replica_arms_the_other_and_finishes_from_either() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("shared.db").display());
    let (a, b) = (start_on(&url, "").await, start_on(&url, "").await);
    let body = serde_json::json!({"target": "blueocean-nextgen-prod/Deployment/nextgen-dashboard",
        "description": "backfill customers.segment"});
    let (status, answer) = a.post("/api/v1/migrations", body).await;
    assert_eq!(status, 201, "{answer}");
    let id = answer["id"].as_str().unwrap().to_string();
    eventually(Duration::from_secs(6), "the other replica is armed too", || armed(&b)).await;
    // The deploy script's finish may land on any replica.
    let (status, answer) = b.post(&format!("/api/v1/migrations/{id}/finish"), serde_json::json!({})).await;
    assert_eq!(status, 200, "{answer}");
    eventually(Duration::from_secs(6), "both disarmed", || async { !armed(&a).await && !armed(&b).await }).await;
    let (status, _) = a.post(&format!("/api/v1/migrations/{id}/finish"), serde_json::json!({})).await;
    assert_eq!(status, 200, "finishing again is harmless");
}

async fn armed(g: &Guarded) -> bool {
    let status: serde_json::Value = serde_json::from_str(&g.get("/api/v1/status").await).unwrap();
    status["targets"][0]["armed"] == true
}

#[tokio::test]
async fn a_migration_nobody_finished_disarms_after_its_maximum_age() {
    let g = start("").await;
    let store = g.app.writer.store().clone();
    let started = jiff::Timestamp::now() - guardian::targets::MIGRATION_MAX_AGE - jiff::SignedDuration::from_secs(60);
    let forgotten = guardian::migration::Migration {
        id: "mig-forgotten".into(),
        target: "blueocean-nextgen-prod/Deployment/nextgen-dashboard".into(),
        description: "the deploy script died before finishing".into(),
        on_breach: guardian::migration::OnBreach::Rollback,
        started_at: started,
        finished_at: None,
    };
    store.save_migration(&forgotten).await.unwrap();
    g.app.targets.sync(store.as_ref()).await.unwrap();
    assert!(!armed(&g).await, "an armed target left forever would blame the next unrelated breach on it");
    g.app.writer.flush_now().await.unwrap();
    let stored = store.migrations(false).await.unwrap();
    assert!(stored.iter().any(|m| m.id == "mig-forgotten" && m.finished_at.is_some()), "{stored:?}");
}
