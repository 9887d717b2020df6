//! Faults a guardian survives, each on the real binary with servers of the
//! test's own (`support::pg_private`, `support::redis_private`), so stopping
//! them disturbs no other test:
//!
//! - PostgreSQL restarted, then crashed during a bad rollout and started
//!   again: the guard acts while storage is down, `/readyz` and the metrics
//!   say so, and once it is back every probe, the incident and each action
//!   are stored, once;
//! - Redis (the leader lock of two replicas) killed and started again empty:
//!   nobody acts without a valid lock, `/readyz` and the metrics say so, and
//!   once it is back exactly one replica acts, and each notification is sent
//!   once. A failover after that tells nothing again (the follower's copies,
//!   queued under its own incident id while Redis was down, are matched with
//!   the shared one) and acts on no breach that has cleared; an incident
//!   opened and closed while Redis was down is told once, by the leader,
//!   and not again by the replica that leads after it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::time::Duration;

use guardian::sim::Fault;
use reqwest::StatusCode;
use serde_json::Value;
use sqlx::{Connection, PgConnection};
use support::eventually::eventually;
use support::guardian::Guardian;
use support::kube_guardian::{self as kg, Cluster, TARGET};
use support::pg_private::{PrivatePg, Stop};
use support::promtext::sample;
use support::recorder::{Recorder, Seen};
use support::redis_private::PrivateRedis;

const CHECK: &str = "payments-health";
/// Long enough for a write to be retried and `/readyz` to notice (the queue flushes every second).
const NOTICE: Duration = Duration::from_secs(15);

async fn get(g: &Guardian, path: &str) -> (u16, String) {
    let r = reqwest::get(g.url(path)).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn metrics(g: &Guardian) -> String {
    get(g, "/metrics").await.1
}

async fn metric(g: &Guardian, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(&metrics(g).await, name, labels).unwrap_or(0.0)
}

/// `guardian_probes_total` of the check, every outcome.
fn probes_counted(metrics: &str, check: &str) -> f64 {
    ["ok", "slow", "failed"]
        .iter()
        .filter_map(|o| sample(metrics, "guardian_probes_total", &[("check", check), ("outcome", o)]))
        .sum()
}

/// The probes of `check` this guardian finished, from its log: the board logs each one (debug
/// "probe", or the turn to bad or good), from the same observer call that counts it everywhere else.
fn probes_logged(g: &Guardian, check: &str) -> u64 {
    let logs = g.logs.lock().unwrap();
    let finished = |line: &String| {
        let Ok(v) = serde_json::from_str::<Value>(line) else { return false };
        let message = v["message"].as_str().unwrap_or_default();
        v["target"] == "guardian::probe::board"
            && v["check"] == check
            && ["probe", "check is bad", "check is good"].contains(&message)
    };
    logs.iter().filter(|l| finished(l)).count() as u64
}

/// The guard is armed on its target (kube_guardian's `armed`, with room for a loaded machine:
/// a migration declared on another replica arrives through storage).
async fn armed(g: &Guardian) {
    eventually(NOTICE, "the guard arms on the target", || async { kg::status(g).await["targets"][0]["armed"] == true })
        .await;
}

// ---------------------------------------------------------------- PostgreSQL

/// kube_guardian's guardian (Kubernetes mode on the fake API server), storing in `storage`.
fn kube_config(c: &Cluster, storage: &str) -> String {
    let d = c.sim().dashboard();
    format!(
        r#"environment: prod
listen: "127.0.0.1:0"
storage: {{ url: "{storage}" }}
api: {{ token_env: GUARD_TOKEN }}
probing: {{ per_host_per_second: 1000 }}
checks:
  - name: {CHECK}
    url: "http://{d}/api/payments/health"
    interval: 1s
    budget: 3s
    timeout: 6s
  - name: customers-count
    url: "http://{d}/api/customers/count"
    interval: 1s
    budget: 1s
guard:
  mode: kubernetes
  lease: {{ duration: 3s, renew_every: 1s }}
  targets:
    - {{ kind: Deployment, namespace: {ns}, name: {name}, checks: [{CHECK}] }}
  breach: {{ window: 5, max_bad: 3, confirm_interval: 250ms }}
gate:
  stale_after: 8s
"#,
        ns = kg::NS,
        name = kg::NAME,
    )
}

/// Rows of the private database, read directly (not through the code under test).
async fn rows(url: &str, sql: &'static str) -> Vec<(String, i64)> {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let rows: Vec<(String, i64)> = sqlx::query_as(sql).fetch_all(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    rows
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_stopped_during_a_bad_rollout_loses_nothing_and_the_guard_acts_once_meanwhile() {
    let Some(mut pg) = PrivatePg::start().await else { return };
    let c = Cluster::start().await;
    c.seed_deployment();
    let kube_dir = tempfile::tempdir().unwrap();
    let kubeconfig = c.fake.kubeconfig(kube_dir.path());
    let envs = [("KUBECONFIG", kubeconfig.to_str().unwrap()), ("HOSTNAME", "guardian-a"), ("GUARD_TOKEN", kg::TOKEN)];
    let mut g = Guardian::start(&kube_config(&c, &pg.url), &envs);
    kg::ready(&g).await;
    eventually(NOTICE, "ready, storage up", || async {
        get(&g, "/readyz").await.0 == 200 && metric(&g, "guardian_storage_up", &[]).await == 1.0
    })
    .await;

    // A restart of the server (a fast shutdown) while all is well: noticed, and over once it is back.
    pg.stop(Stop::Fast).await;
    eventually(NOTICE, "/readyz says storage is unreachable", || async {
        get(&g, "/readyz").await.1.starts_with("not ready: storage unreachable (")
    })
    .await;
    pg.start_again().await;
    eventually(NOTICE, "ready again, nothing queued", || async {
        let m = metrics(&g).await;
        get(&g, "/readyz").await.0 == 200 && sample(&m, "guardian_storage_queued_writes", &[]) == Some(0.0)
    })
    .await;

    // Then a crash (no shutdown checkpoint, recovery at the next start), for longer.
    pg.stop(Stop::Immediate).await;
    eventually(NOTICE, "/readyz says storage is unreachable", || async {
        get(&g, "/readyz").await.1.contains("storage unreachable")
    })
    .await;

    // A bad rollout while storage is down: the guard acts all the same, once.
    c.roll_out();
    armed(&g).await;
    c.break_payments();
    eventually(Duration::from_secs(20), "paused and rolled back", || async {
        c.pauses().len() == 1 && c.rollbacks().len() == 1
    })
    .await;
    let during = metrics(&g).await;
    assert_eq!(sample(&during, "guardian_storage_up", &[]), Some(0.0));
    let queued = sample(&during, "guardian_storage_queued_writes", &[]).unwrap();
    assert!(queued > 0.0, "the incident, the actions and the roll-ups wait in the queue: {queued}");
    let labels = |action| [("target", TARGET), ("action", action), ("outcome", "ok")];
    assert_eq!(sample(&during, "guardian_actions_total", &labels("pause")), Some(1.0));
    assert_eq!(sample(&during, "guardian_actions_total", &labels("rollback")), Some(1.0));
    let (code, ready) = get(&g, "/readyz").await;
    assert_eq!(code, 503, "{ready}");
    assert!(ready.starts_with("not ready: storage unreachable ("), "{ready}");
    assert!(ready.contains("writes queued, none lost"), "{ready}");
    // Probing goes on, the gate answers from memory, the incident is told from memory.
    let before = probes_counted(&during, CHECK);
    eventually(Duration::from_secs(5), "probes go on", || async { probes_counted(&metrics(&g).await, CHECK) > before })
        .await;
    let (code, gate) = get(&g, "/api/v1/gate?environment=prod").await;
    assert_eq!(code, 409, "{gate}");
    assert!(gate.contains("\"incident_open\""), "{gate}");
    let incidents: Value = serde_json::from_str(&get(&g, "/api/v1/incidents").await.1).unwrap();
    assert_eq!(incidents["complete"], false, "{incidents}");
    assert_eq!(incidents["incidents"].as_array().unwrap().len(), 1, "{incidents}");
    assert_eq!(get(&g, "/api/v1/actions").await.0, 503, "the audit log is in storage");

    // The fault is fixed while storage is still down: the incident closes in memory.
    c.sim().faults().clear();
    eventually(Duration::from_secs(20), "the incident closes", || async {
        metric(&g, "guardian_incidents_open", &[]).await == 0.0
    })
    .await;
    assert_eq!(get(&g, "/readyz").await.0, 503, "storage is still down");

    // PostgreSQL is back on the same port: the queue drains into it.
    pg.start_again().await;
    eventually(Duration::from_secs(30), "ready, storage up, nothing queued", || async {
        let m = metrics(&g).await;
        get(&g, "/readyz").await.0 == 200
            && sample(&m, "guardian_storage_up", &[]) == Some(1.0)
            && sample(&m, "guardian_storage_queued_writes", &[]) == Some(0.0)
    })
    .await;
    assert_eq!(c.writes_besides_the_lease().len(), 2, "one pause, one rollback: {:#?}", c.writes_besides_the_lease());
    let a = kg::actions(&g).await;
    for (action, outcome) in [("pause", "ok"), ("rollback", "intent"), ("rollback", "ok")] {
        assert_eq!(kg::count(&a, action, outcome), 1, "{action} {outcome} once in {a:#?}");
    }
    let stored = rows(&pg.url, "SELECT action || ' ' || outcome, count(*) FROM actions GROUP BY 1 ORDER BY 1").await;
    // Each action once with its intent, and the log notifier's record of each (no channel is configured).
    let audit = [("notify ok", 2), ("pause intent", 1), ("pause ok", 1), ("rollback intent", 1), ("rollback ok", 1)];
    let audit: Vec<(String, i64)> = audit.iter().map(|(k, n)| (k.to_string(), *n)).collect();
    assert_eq!(stored, audit, "stored audit rows by action and outcome");
    let sql = "SELECT check_name || ' ' || (ended_at_ms IS NOT NULL), count(*) FROM incidents GROUP BY 1";
    assert_eq!(rows(&pg.url, sql).await, [(format!("{CHECK} true"), 1)], "one incident, stored closed");

    // Every probe is in the roll-ups. A clean stop ends probing (in-flight probes are dropped, counted
    // nowhere) and writes what is left, so the stored totals must equal the probes finished, exactly.
    let counted = probes_counted(&metrics(&g).await, CHECK);
    assert_eq!(g.terminate(Duration::from_secs(10)), Some(0), "{}", g.all_logs());
    let sql = "SELECT check_name, sum(total)::BIGINT FROM rollups GROUP BY 1 ORDER BY 1";
    let totals = rows(&pg.url, sql).await;
    let finished = || -> Vec<(String, i64)> {
        ["customers-count", CHECK].iter().map(|c| (c.to_string(), probes_logged(&g, c) as i64)).collect()
    };
    // The last log lines may still be on their way through the pipe from the exited process.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while finished() != totals && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(totals, finished(), "stored roll-ups against the probes the guardian finished");
    assert!(totals[1].1 as f64 >= counted && counted > 20.0, "{counted} counted, {totals:?} stored");
}

// ---------------------------------------------------------------- Redis

/// Two replicas in `guard.mode: simulated` (each its own in-memory cluster), led through the Redis
/// lock, sharing one SQLite file (so a migration declared on one arms both) and one webhook.
struct Replicas {
    sim: guardian::sim::Simulator,
    sim_stop: tokio_util::sync::CancellationToken,
    receiver: Recorder,
    all: Vec<Guardian>,
    _dir: tempfile::TempDir,
}

const MIGRATION_TARGET: &str = "blueocean-nextgen-prod/Deployment/nextgen-dashboard";

impl Replicas {
    /// Stops `leader` cleanly (releasing the lock) and waits until the other
    /// replica leads, has emptied its outbox (sent, not held back) and has had
    /// the seconds a second send would take; returns the new leader.
    async fn fail_over(&mut self, leader: usize) -> usize {
        let follower = 1 - leader;
        assert_eq!(self.all[leader].terminate(Duration::from_secs(10)), Some(0));
        eventually(NOTICE, "the other replica leads", || async { kg::leads(&self.all[follower]).await }).await;
        let queued = [("channel", "generic")];
        eventually(NOTICE, "the new leader's outbox is empty", || async {
            metric(&self.all[follower], "guardian_notifications_queued", &queued).await == 0.0
        })
        .await;
        tokio::time::sleep(Duration::from_secs(4)).await;
        follower
    }

    async fn start(redis: &str) -> Self {
        let sim_stop = tokio_util::sync::CancellationToken::new();
        let localhost = std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
        let sim = guardian::sim::Simulator::start(localhost, [0, 0, 0], sim_stop.clone()).await.unwrap();
        let receiver = Recorder::start(StatusCode::OK).await;
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            r#"environment: prod
listen: "127.0.0.1:0"
storage: {{ url: "sqlite://guardian.db" }}
api: {{ token_env: GUARD_TOKEN }}
probing: {{ per_host_per_second: 1000 }}
redis: {{ url: "{redis}" }}
checks:
  - name: {CHECK}
    url: "http://{d}/api/payments/health"
    interval: 1s
    budget: 3s
    timeout: 6s
guard:
  mode: simulated
  lease: {{ duration: 6s, renew_every: 1s }}
  targets:
    - {{ kind: Deployment, namespace: {ns}, name: {name}, checks: [{CHECK}] }}
  breach: {{ window: 5, max_bad: 3, confirm_interval: 250ms }}
gate:
  stale_after: 8s
notify:
  webhooks:
    - {{ url: "http://{hook}/hook", format: generic }}
"#,
            d = sim.dashboard(),
            ns = kg::NS,
            name = kg::NAME,
            hook = receiver.addr,
        );
        // One after the other: the second writes the same config file once the first has read it.
        let all = ["guardian-a", "guardian-b"]
            .iter()
            .map(|id| Guardian::start_in(dir.path(), &config, &[("HOSTNAME", id), ("GUARD_TOKEN", kg::TOKEN)]))
            .collect();
        Self { sim, sim_stop, receiver, all, _dir: dir }
    }

    /// Which replicas lead now, by `/api/v1/status`.
    async fn leaders(&self) -> Vec<usize> {
        let mut leading = Vec::new();
        for (i, g) in self.all.iter().enumerate() {
            if kg::leads(g).await {
                leading.push(i);
            }
        }
        leading
    }

    /// `metric` on every replica.
    async fn each(&self, name: &str, labels: &[(&str, &str)]) -> Vec<f64> {
        let mut values = Vec::new();
        for g in &self.all {
            values.push(metric(g, name, labels).await);
        }
        values
    }

    async fn pauses(&self) -> Vec<f64> {
        self.each("guardian_actions_total", &[("target", TARGET), ("action", "pause"), ("outcome", "ok")]).await
    }

    /// The webhook's generic bodies, as (event, action).
    fn told(&self) -> Vec<(String, String)> {
        let text = |s: &Seen, k: &str| s.body[k].as_str().unwrap_or_default().to_owned();
        self.receiver.seen().iter().map(|s| (text(s, "event"), text(s, "action"))).collect()
    }
}

impl Drop for Replicas {
    fn drop(&mut self) {
        self.sim_stop.cancel();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_no_replica_acts_and_once_it_is_back_empty_exactly_one_acts_and_tells_once() {
    let Some(mut redis) = PrivateRedis::start().await else { return };
    through_a_redis_outage(&mut redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_redis_outage_a_failover_tells_nothing_again_and_acts_on_no_cleared_breach() {
    let Some(mut redis) = PrivateRedis::start().await else { return };
    let (mut r, leader) = through_a_redis_outage(&mut redis).await;
    // The leader stops (releasing the lock): the other replica takes over, with nothing left to do.
    // It queued the incident under its own id while it could not claim the shared one (Redis down):
    // once Redis answered, those copies were re-keyed under the id the leader told them with, so
    // the shared send markers stop them (else `incident_opened` and `incident_resolved` again). Nor
    // may its guard pause a target whose check has been good for seconds.
    let follower = r.fail_over(leader).await;
    let events: Vec<String> = r.told().into_iter().map(|(e, a)| format!("{e} {a}")).collect();
    assert_eq!(events.len(), 3, "nothing told twice after a failover: {events:?}");
    let labels = [("target", TARGET), ("action", "pause"), ("outcome", "ok")];
    assert_eq!(metric(&r.all[follower], "guardian_actions_total", &labels).await, 0.0, "no action on a cleared breach");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_incident_over_before_redis_is_back_is_told_once_by_the_leader_and_never_again_after_a_failover() {
    let Some(mut redis) = PrivateRedis::start().await else { return };
    let mut r = Replicas::start(&redis.url).await;
    eventually(NOTICE, "one replica leads", || async { r.leaders().await.len() == 1 }).await;
    redis.stop();
    eventually(NOTICE, "nobody leads without Redis", || async {
        r.each("guardian_leader", &[]).await == [0.0, 0.0] && r.each("guardian_redis_up", &[]).await == [0.0, 0.0]
    })
    .await;

    // A whole breach while Redis is down: each replica queues the incident under its own id, and
    // closes it before the claim of the check's incident can be made or released.
    r.sim.faults().set(Fault { status: Some(503), error_rate: 1.0, ..Fault::on("/api/payments/health") });
    eventually(Duration::from_secs(20), "both replicas see the incident", || async {
        r.each("guardian_incidents_open", &[]).await == [1.0, 1.0]
    })
    .await;
    r.sim.faults().clear();
    eventually(Duration::from_secs(20), "the incident closes on both", || async {
        r.each("guardian_incidents_open", &[]).await == [0.0, 0.0]
    })
    .await;
    assert!(r.told().is_empty(), "no lock, no notification: {:?}", r.told());

    // Redis is back: the leader tells the incident; the other replica finds its copies told.
    redis.start_again().await;
    eventually(Duration::from_secs(20), "one replica leads and tells the incident", || async {
        r.leaders().await.len() == 1 && r.told().len() >= 2
    })
    .await;
    let leader = r.leaders().await[0];
    r.fail_over(leader).await;
    let events: Vec<String> = r.told().into_iter().map(|(e, _)| e).collect();
    assert_eq!(events, ["incident_opened", "incident_resolved"], "each once, across a failover");
    let seen = r.receiver.seen();
    assert_eq!(seen[0].body["incident"], seen[1].body["incident"], "one incident: {seen:#?}");
}

/// Two replicas lead through a private Redis; it dies before a breach and comes back, empty,
/// while the breach goes on; then the breach clears. Returns the replicas and which one leads.
async fn through_a_redis_outage(redis: &mut PrivateRedis) -> (Replicas, usize) {
    let r = Replicas::start(&redis.url).await;
    eventually(NOTICE, "one replica leads, both ready", || async {
        let mut ready = r.leaders().await.len() == 1;
        for g in &r.all {
            ready &= get(g, "/readyz").await.0 == 200 && metric(g, "guardian_redis_up", &[]).await == 1.0;
        }
        ready
    })
    .await;
    // A migration arms the target on both replicas (its breach policy: pause only).
    let body = serde_json::json!({"target": MIGRATION_TARGET, "description": "move domains", "on_breach": "pause"});
    let (code, answer) = kg::post_json(&r.all[0], "/api/v1/migrations", &body).await;
    assert_eq!(code, 201, "{answer}");
    for g in &r.all {
        armed(g).await;
    }

    // Redis dies: within two thirds of the lock's 6 s nobody leads, and every replica says why.
    redis.stop();
    for g in &r.all {
        eventually(NOTICE, "no lock: not leading, not ready, Redis down", || async {
            let m = metrics(g).await;
            let (code, ready) = get(g, "/readyz").await;
            sample(&m, "guardian_leader", &[]) == Some(0.0)
                && sample(&m, "guardian_redis_up", &[]) == Some(0.0)
                && code == 503
                && ready.contains("redis unreachable (")
                && ready.contains("no replica acts without a valid lock; probing and the gate go on")
        })
        .await;
    }
    assert!(r.leaders().await.is_empty());

    // The breach comes while nobody can lead: incidents open, probing and the gate go on, nobody acts.
    r.sim.faults().set(Fault { status: Some(503), error_rate: 1.0, ..Fault::on("/api/payments/health") });
    let failed = [("check", CHECK), ("outcome", "failed")];
    eventually(NOTICE, "both replicas see the incident", || async {
        r.each("guardian_incidents_open", &[]).await == [1.0, 1.0]
    })
    .await;
    // Long enough for a standing breach to be raised again (every 5 s) with ever more bad probes.
    let before = r.each("guardian_probes_total", &failed).await;
    eventually(Duration::from_secs(20), "probing goes on for 6 more probes each", || async {
        let now = r.each("guardian_probes_total", &failed).await;
        now.iter().zip(&before).all(|(n, b)| *n >= b + 6.0)
    })
    .await;
    assert_eq!(r.pauses().await, [0.0, 0.0], "no lock, no action");
    assert!(r.told().is_empty(), "no lock, no notification: {:?}", r.told());
    for g in &r.all {
        assert_eq!(kg::status(g).await["targets"][0]["paused"], false);
        let (code, gate) = get(g, "/api/v1/gate?environment=prod").await;
        assert_eq!(code, 409, "{gate}");
        assert!(gate.contains("\"incident_open\"") && gate.contains("\"check_failing\""), "{gate}");
        let (code, ready) = get(g, "/readyz").await;
        assert!(code == 503 && ready.contains("redis unreachable"), "{ready}");
    }
    assert_eq!(kg::count(&kg::actions(&r.all[0]).await, "pause", "ok"), 0);

    // Redis is back, empty: one replica takes the lock and pauses, once; the other never acts.
    redis.start_again().await;
    eventually(Duration::from_secs(20), "one replica leads and pauses", || async {
        r.leaders().await.len() == 1 && r.pauses().await.iter().sum::<f64>() == 1.0
    })
    .await;
    let pauses = r.pauses().await;
    let leader = pauses.iter().position(|p| *p == 1.0).unwrap();
    let mut expected = [0.0, 0.0];
    expected[leader] = 1.0;
    assert_eq!(r.leaders().await, [leader], "the leader paused: {pauses:?}");
    assert_eq!(kg::status(&r.all[leader]).await["targets"][0]["paused"], true);
    for g in &r.all {
        eventually(NOTICE, "ready again, Redis up", || async {
            get(g, "/readyz").await.0 == 200 && metric(g, "guardian_redis_up", &[]).await == 1.0
        })
        .await;
    }
    assert_eq!(r.each("guardian_leader", &[]).await, expected);
    eventually(NOTICE, "the incident and the pause are told", || async { r.told().len() >= 2 }).await;

    // Fixed: the incident closes on both and its end is told.
    r.sim.faults().clear();
    eventually(Duration::from_secs(20), "the incident closes and is told", || async {
        r.each("guardian_incidents_open", &[]).await == [0.0, 0.0] && r.told().len() >= 3
    })
    .await;
    // A second send (by the follower, or a retry) would come within seconds: give it the time to.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(r.pauses().await, expected, "never a second pause");
    let a = kg::actions(&r.all[0]).await;
    assert_eq!(kg::count(&a, "pause", "ok"), 1, "one pause in the shared audit log: {a:#?}");
    assert_eq!(kg::count(&a, "rollback", "ok"), 0, "{a:#?}");
    let events: Vec<String> = r.told().into_iter().map(|(e, a)| format!("{e} {a}")).collect();
    assert_eq!(events, ["incident_opened acting", "action_taken paused", "incident_resolved paused"], "each once");
    let seen = r.receiver.seen();
    let incident = &seen[0].body["incident"];
    assert!(incident.is_string() && seen.iter().all(|s| s.body["incident"] == *incident), "one incident: {seen:#?}");
    (r, leader)
}
