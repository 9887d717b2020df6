//! Faults survived: the wall clock jumps (NTP steps it, a VM resumes). A
//! guardian runs in process on a clock the test can jump (system time plus
//! an offset; tokio's monotonic time is untouched, as on a real machine),
//! against the NEXTGEN simulator, guarding nextgen-dashboard in simulated
//! mode. Jumps: forward 1 h, back 10 min, forward 1 day, back past the start.
//!
//! - A healthy run across every jump, with a rollout in progress: no
//!   incident, no action, SLO ratios in [0, 1], windows that still count the
//!   probes made after each jump, /readyz back to 200 within a probe
//!   interval, metrics that parse.
//! - A breach during an armed rollout, after a jump and across another:
//!   exactly one pause and one rollback, and an incident whose end is not
//!   before its start.
//! - Leadership: the Lease (Kubernetes mode) and the Redis lock (replicas
//!   without Kubernetes) decide on monotonic time, so a follower's clock
//!   jumping forward steals nothing and a leader's jumping back keeps no
//!   lease it did not renew.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use guardian::app::App;
use guardian::cluster::MemoryCluster;
use guardian::config::{self, MapEnv};
use guardian::leader::{Leadership, LeaseElector, LeaseTiming, LockTiming, RedisLock};
use guardian::sim::Fault;
use jiff::SignedDuration;
use serde_json::Value;
use support::eventually::eventually;
use support::fake_apiserver::FakeApiServer;
use support::in_process::{Started, dashboard, start_simulated};
use support::jump_clock::JumpClock;
use support::outage::Receiver;
use support::promtext::{assert_valid, sample};
use support::sim::Sim;
use tokio::time::{Instant, sleep};
use tokio_util::sync::CancellationToken;

const PAUSE: &str = "pause blueocean-nextgen-prod/Deployment/nextgen-dashboard";
const ROLLBACK: &str = "rollback blueocean-nextgen-prod/Deployment/nextgen-dashboard";
/// payments-health's detection bound (3 s budget + 500 ms interval + 2 × 250 ms), with room for a loaded machine.
const ACTS_WITHIN: Duration = Duration::from_secs(12);

/// A jump, named for failure messages.
#[derive(Clone, Copy, Debug)]
enum Jump {
    By(&'static str, SignedDuration),
    /// Back to two hours before the test started.
    BackPastTheStart,
}

const FORWARD_1H: Jump = Jump::By("forward 1 h", SignedDuration::from_hours(1));
const BACK_10MIN: Jump = Jump::By("back 10 min", SignedDuration::from_mins(-10));
const FORWARD_1D: Jump = Jump::By("forward 1 day", SignedDuration::from_hours(24));

struct Guarded {
    app: App,
    clock: Arc<JumpClock>,
    cluster: Arc<MemoryCluster>,
    sim: Sim,
    api: SocketAddr,
    stop: CancellationToken,
    started: jiff::Timestamp,
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A guardian on a jumping clock, probing payments every 500 ms, with a 30-day SLO on it.
async fn start() -> Guarded {
    start_telling("").await
}

/// The same with a `notify` section.
async fn start_telling(notify: &str) -> Guarded {
    let sim = Sim::start().await;
    let d = sim.sim.dashboard();
    let yaml = format!(
        r#"environment: prod
storage: {{ url: 'sqlite::memory:' }}
probing: {{ per_host_per_second: 1000 }}
checks:
  - name: payments-health
    url: "http://{d}/api/payments/health"
    interval: 500ms
    budget: 3s
    timeout: 6s
slos:
  - {{ name: payments, checks: [payments-health], objective: 0.999, window: 30d }}
guard:
  mode: simulated
  targets:
    - {{ kind: Deployment, namespace: blueocean-nextgen-prod, name: nextgen-dashboard, checks: [payments-health] }}
  breach: {{ window: 5, max_bad: 3, confirm_interval: 250ms }}
gate:
  stale_after: 8s
{notify}"#
    );
    let env = MapEnv(HashMap::new());
    let config = config::parse(&yaml, "clock.yaml", &env).unwrap_or_else(|e| panic!("{e}"));
    let clock = Arc::new(JumpClock::new());
    let started = guardian::clock::Clock::now(clock.as_ref());
    let stop = CancellationToken::new();
    let Started { app, cluster, api } = start_simulated(config, clock.clone(), &env, &stop).await;
    let g = Guarded { app, clock, cluster, sim, api, stop, started };
    eventually(Duration::from_secs(10), "the check has a good result", || async {
        g.app.board.snapshot().iter().all(|c| c.up)
    })
    .await;
    g
}

impl Guarded {
    fn jump(&self, jump: Jump) -> &'static str {
        match jump {
            Jump::By(name, by) => {
                self.clock.jump(by);
                name
            }
            Jump::BackPastTheStart => {
                self.clock.jump_to(self.started - SignedDuration::from_hours(2));
                "back past the start"
            }
        }
    }

    fn seq(&self) -> u64 {
        self.app.board.snapshot()[0].last.as_ref().map_or(0, |r| r.seq)
    }

    /// Waits until `n` more probes have finished.
    async fn probes(&self, n: u64, what: &str) {
        let from = self.seq();
        eventually(Duration::from_secs(10), &format!("{n} more probes ({what})"), || async { self.seq() >= from + n })
            .await;
    }

    async fn get(&self, path: &str) -> (u16, String) {
        let r = reqwest::get(format!("http://{}{path}", self.api)).await.unwrap();
        (r.status().as_u16(), r.text().await.unwrap())
    }

    async fn status(&self) -> Value {
        let (code, body) = self.get("/api/v1/status").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }

    fn fail_payments(&self) {
        self.sim.sim.faults().set(Fault { status: Some(503), error_rate: 1.0, ..Fault::on("/api/payments/health") });
    }

    async fn armed(&self) {
        eventually(Duration::from_secs(5), "the guard arms on the rollout", || async {
            self.status().await["targets"][0]["armed"] == true
        })
        .await;
    }

    /// /readyz answers 200 again within a probe interval or two of a jump;
    /// meanwhile it may only say which check has no fresh result.
    async fn ready_again(&self, after: &str) {
        eventually(Duration::from_secs(3), &format!("/readyz is 200 again after the jump {after}"), || async {
            let (code, body) = self.get("/readyz").await;
            assert!(code == 200 || body.contains("no fresh result for payments-health"), "{after}: {code} {body}");
            code == 200
        })
        .await;
    }

    /// SLO figures in range everywhere they are shown; the short windows count the probes made since the jump.
    async fn slo_sane(&self, after: &str, probes_since_jump: u64) {
        let status = self.status().await;
        let slo = &status["slos"][0];
        for w in slo["windows"].as_array().unwrap() {
            let (good, total) = (w["good"].as_u64().unwrap(), w["total"].as_u64().unwrap());
            assert!(good <= total, "{after}: {w}");
            if let Some(sli) = w["sli"].as_f64() {
                assert!((0.0..=1.0).contains(&sli), "{after}: {w}");
            }
            if let Some(burn) = w["burn_rate"].as_f64() {
                assert!(burn.is_finite() && burn >= 0.0, "{after}: {w}");
            }
        }
        let five = slo["windows"].as_array().unwrap().iter().find(|w| w["window"] == "5m").unwrap();
        assert!(
            five["total"].as_u64().unwrap() >= probes_since_jump,
            "{after}: the 5m window misses probes made since the jump: {five}"
        );
        assert_eq!(five["good"], five["total"], "{after}: every probe was good: {five}");
        let budget = slo["error_budget_remaining"].as_f64().unwrap();
        assert!(budget.is_finite() && budget <= 1.0, "{after}: budget {budget}");
        let (_, metrics) = self.get("/metrics").await;
        for line in metrics.lines().filter(|l| l.starts_with("guardian_slo_sli_ratio")) {
            let v: f64 = line.rsplit_once(' ').unwrap().1.parse().unwrap();
            assert!((0.0..=1.0).contains(&v), "{after}: {line}");
        }
        assert_eq!(sample(&metrics, "guardian_incidents_open", &[]), Some(0.0), "{after}");
        assert_eq!(sample(&metrics, "guardian_revenue_at_risk_eur", &[]), Some(0.0), "{after}");
    }

    async fn incidents(&self) -> Vec<Value> {
        let (code, body) = self.get("/api/v1/incidents").await;
        assert_eq!(code, 200, "{body}");
        serde_json::from_str::<Value>(&body).unwrap()["incidents"].as_array().cloned().unwrap_or_default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_guarded_rollout_across_clock_jumps_raises_nothing_and_keeps_its_numbers_sane() {
    let g = start().await;
    g.cluster.start_rollout(&dashboard(), "nextgen-dashboard:1.8.2").unwrap();
    g.armed().await;
    g.probes(2, "before any jump").await;
    for jump in [FORWARD_1H, BACK_10MIN, FORWARD_1D, Jump::BackPastTheStart] {
        let name = g.jump(jump);
        g.ready_again(name).await;
        // Long enough for the missing-data loop (every 500 ms) to look several times.
        g.probes(4, name).await;
        g.slo_sane(name, 3).await;
        assert!(g.cluster.calls().is_empty(), "{name}: the guard acted: {:?}", g.cluster.calls());
        assert!(g.app.history.recent_incidents().is_empty(), "{name}: {:?}", g.app.history.recent_incidents());
        assert_eq!(g.status().await["targets"][0]["armed"], true, "{name}: still armed on the rollout");
        let (code, body) = g.get("/readyz").await;
        assert_eq!(code, 200, "{name}: {body}");
    }
    let (_, metrics) = g.get("/metrics").await;
    assert_valid(&metrics);
    assert!(g.incidents().await.is_empty());
    // Storage took every roll-up; a restart would read them back by minute.
    g.app.writer.flush_now().await.unwrap();
    let actions = g.app.writer.store().actions(100).await.unwrap();
    assert!(actions.iter().all(|a| a.action != "pause" && a.action != "rollback"), "{actions:?}");
}

/// A bad rollout after the clock jumped `before`, the clock jumping `during` the incident.
async fn breach_across(before: Jump, during: Jump) {
    let g = start().await;
    g.cluster.start_rollout(&dashboard(), "nextgen-dashboard:1.8.2").unwrap();
    g.armed().await;
    let before = g.jump(before);
    g.probes(2, before).await;
    g.fail_payments();
    let failed_at = Instant::now();
    eventually(ACTS_WITHIN, &format!("paused then rolled back, after the jump {before}"), || async {
        g.cluster.calls().len() >= 2
    })
    .await;
    let acted_in = failed_at.elapsed();
    let during = g.jump(during);
    g.probes(4, during).await;
    assert_eq!(g.cluster.calls(), [PAUSE, ROLLBACK], "{before}, then {during}: one pause and one rollback");
    assert_eq!(g.app.history.open_incidents().len(), 1, "{before}, then {during}: one incident");

    g.sim.sim.faults().clear();
    eventually(Duration::from_secs(15), "the incident closes", || async { g.app.history.open_incidents().is_empty() })
        .await;
    g.probes(2, "after recovery").await;
    assert_eq!(g.cluster.calls(), [PAUSE, ROLLBACK], "{before}, then {during}: nothing more after recovery");
    let incidents = g.incidents().await;
    assert_eq!(incidents.len(), 1, "{incidents:?}");
    let i = &incidents[0];
    let (start, end) = (i["started_at"].as_str().unwrap(), i["ended_at"].as_str().unwrap());
    let (start, end): (jiff::Timestamp, jiff::Timestamp) = (start.parse().unwrap(), end.parse().unwrap());
    assert!(end >= start, "{before}, then {during}: the incident ends before it starts: {i}");
    let eur = i["revenue_at_risk_eur"].as_f64().unwrap();
    assert!(eur.is_finite() && eur >= 0.0, "{i}");
    g.app.writer.flush_now().await.unwrap();
    let actions = g.app.writer.store().actions(100).await.unwrap();
    let count =
        |action: &str, outcome: &str| actions.iter().filter(|a| a.action == action && a.outcome == outcome).count();
    assert_eq!((count("pause", "ok"), count("rollback", "ok")), (1, 1), "{before}, then {during}: {actions:?}");
    let (_, metrics) = g.get("/metrics").await;
    let target = "blueocean-nextgen-prod/Deployment/nextgen-dashboard";
    for action in ["pause", "rollback"] {
        let labels = [("target", target), ("action", action), ("outcome", "ok")];
        assert_eq!(sample(&metrics, "guardian_actions_total", &labels), Some(1.0), "{action}");
    }
    for line in metrics.lines().filter(|l| l.starts_with("guardian_breach_to_action_seconds_sum")) {
        let v: f64 = line.rsplit_once(' ').unwrap().1.parse().unwrap();
        assert!((0.0..=acted_in.as_secs_f64()).contains(&v), "breach to action is measured on monotonic time: {line}");
    }
    assert_eq!(sample(&metrics, "guardian_incidents_open", &[]), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_after_the_clock_went_back_10_min_is_paused_and_rolled_back_once_across_a_jump_forward() {
    breach_across(BACK_10MIN, FORWARD_1H).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_breach_after_the_clock_went_forward_a_day_is_paused_and_rolled_back_once_across_a_jump_back_past_the_start()
{
    breach_across(FORWARD_1D, Jump::BackPastTheStart).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_notification_waiting_across_clock_jumps_is_neither_abandoned_nor_held_back() {
    let hook = Receiver::refusing();
    let notify = format!("notify:\n  webhooks: [ {{ url: 'http://{}/hook', format: generic }} ]\n", hook.addr);
    let g = start_telling(&notify).await;
    g.fail_payments();
    let failed = || async {
        let (_, m) = g.get("/metrics").await;
        sample(&m, "guardian_notifications_total", &[("channel", "generic"), ("outcome", "failed")]).unwrap()
    };
    eventually(Duration::from_secs(15), "the incident's notice fails to go out", || async { failed().await >= 1.0 })
        .await;

    // A day later by the wall clock, seconds later in fact: the notice is not abandoned as a day old.
    let name = g.jump(FORWARD_1D);
    let before = failed().await;
    eventually(Duration::from_secs(10), &format!("another attempt after the jump {name}"), || async {
        failed().await > before
    })
    .await;
    let (_, m) = g.get("/metrics").await;
    let queued = sample(&m, "guardian_notifications_queued", &[("channel", "generic")]);
    assert_eq!(queued, Some(1.0), "{name}: still waiting, not abandoned");

    // Back past the start: its next attempt, due a day ahead by the wall clock, is not held back.
    let name = g.jump(Jump::BackPastTheStart);
    hook.answer().await;
    let what = format!("delivered once the receiver is back, after the jump {name}");
    eventually(Duration::from_secs(15), &what, || async { !hook.seen().is_empty() }).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let seen = hook.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].body["event"], "incident_opened", "{seen:?}");
    let (_, m) = g.get("/metrics").await;
    assert_eq!(sample(&m, "guardian_notifications_queued", &[("channel", "generic")]), Some(0.0));
}

/// The Lease as short as the kube tests': a renewal holds for two thirds of it.
const LEASE: LeaseTiming = LeaseTiming {
    lease_duration: Duration::from_secs(2),
    renew_every: Duration::from_millis(400),
    retry_every: Duration::from_millis(200),
};

/// Samples both replicas for `for_`: exactly one leads at every sample, always `leader`.
async fn only<L: Leadership>(leader: &L, follower: &L, for_: Duration, what: &str) {
    let until = Instant::now() + for_;
    while Instant::now() < until {
        assert!(leader.is_leader() && !follower.is_leader(), "{what}: the leadership moved");
        sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_jumps_on_either_replica_move_no_lease() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = kube::config::Kubeconfig::read_from(fake.kubeconfig(dir.path())).unwrap();
    let options = kube::config::KubeConfigOptions::default();
    let client =
        kube::Client::try_from(kube::Config::from_custom_kubeconfig(kubeconfig, &options).await.unwrap()).unwrap();
    let (clock_a, clock_b) = (Arc::new(JumpClock::new()), Arc::new(JumpClock::new()));
    let elector = |id: &str, clock: &Arc<JumpClock>| {
        Arc::new(LeaseElector::new(client.clone(), "default", "guardian-prod", id, LEASE, clock.clone()))
    };
    let a = support::replica::Replica::start(elector("guardian-a", &clock_a), |e, stop| e.run(stop));
    support::replica::leading(&a, Duration::from_secs(5)).await;
    let b = support::replica::Replica::start(elector("guardian-b", &clock_b), |e, stop| e.run(stop));
    support::replica::knows_holder(&b, "guardian-a").await;

    // The follower's clock runs a day ahead: the leader's renewTime looks a day old to it.
    clock_b.jump(SignedDuration::from_hours(24));
    only(a.lock.as_ref(), b.lock.as_ref(), 3 * LEASE.lease_duration, "follower's clock forward 1 day").await;
    // The leader's clock goes back past the start: its renewTime goes back a day and more.
    clock_a.jump(SignedDuration::from_hours(-26));
    only(a.lock.as_ref(), b.lock.as_ref(), 3 * LEASE.lease_duration, "leader's clock back past the start").await;
    let lease = fake.get_object("coordination.k8s.io/v1", "leases", "default", "guardian-prod").unwrap();
    assert_eq!(lease["spec"]["holderIdentity"], "guardian-a");
    assert_eq!(lease["spec"]["leaseTransitions"], 0, "{lease}");

    // A leader that stops renewing stops leading by its monotonic clock, whatever its wall clock says,
    // and the follower takes over after a lease duration of its own.
    a.kill();
    clock_a.jump(SignedDuration::from_hours(-1));
    eventually(2 * LEASE.lease_duration, "the killed leader stops leading", || async { !a.leads() }).await;
    support::replica::leading(&b, 3 * LEASE.lease_duration).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clock_jumps_on_either_replica_move_no_redis_lock() {
    let Some(url) = support::redis::redis_url_or_skip().await else { return };
    let keys = support::redis::TestPrefix::new();
    let timing = LockTiming {
        ttl: Duration::from_millis(1500),
        renew_every: Duration::from_millis(300),
        retry_every: Duration::from_millis(200),
    };
    let (clock_a, clock_b) = (Arc::new(JumpClock::new()), Arc::new(JumpClock::new()));
    let lock = |id: &str, clock: &Arc<JumpClock>| {
        let coord = guardian::coord::Coordinator::new(url, keys.prefix.clone()).unwrap();
        Arc::new(RedisLock::new(coord, id, timing, clock.clone()))
    };
    let a = support::replica::Replica::start(lock("guardian-a", &clock_a), |l, stop| l.run(stop));
    support::replica::leading(&a, Duration::from_secs(5)).await;
    let b = support::replica::Replica::start(lock("guardian-b", &clock_b), |l, stop| l.run(stop));
    support::replica::knows_holder(&b, "guardian-a").await;
    let token = a.lock.fencing_token();

    clock_b.jump(SignedDuration::from_hours(24));
    only(a.lock.as_ref(), b.lock.as_ref(), 3 * timing.ttl, "follower's clock forward 1 day").await;
    clock_a.jump(SignedDuration::from_hours(-26));
    only(a.lock.as_ref(), b.lock.as_ref(), 3 * timing.ttl, "leader's clock back past the start").await;
    assert_eq!(a.lock.fencing_token(), token, "the same tenure throughout");

    a.kill();
    clock_a.jump(SignedDuration::from_hours(-1));
    eventually(2 * timing.ttl, "the killed leader stops leading", || async { !a.leads() }).await;
    support::replica::leading(&b, 3 * timing.ttl).await;
}
