#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design
//! Faults the guard survives in `guard.mode: kubernetes`, each with the real
//! binary against the stateful fake API server: the Kubernetes API flapping
//! (5xx and 429, requests hanging past the client's timeout, watches cut
//! all the time, then a hard outage) during a bad rollout; and a SIGKILL at
//! each step of an action, then a restart on the same storage and the same
//! cluster. For each: the Deployment ends on the previous template, exactly
//! one rollback and at most one pause were *applied* (mutations the fake
//! applied, not attempts), the audit log's rollback is resolved once, the
//! rollback is told, and `/readyz` and the metrics say the right thing.

mod support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use serde_json::Value;
use support::eventually::eventually;
use support::fake_apiserver::{Matcher, RecordedRequest};
use support::guardian::Guardian;
use support::kube_guardian::{
    Cluster, DEPLOYMENT, JSON_PATCH, MERGE_PATCH, NAME, NS, ROLLED_BACK_FROM, Replica, TARGET, actions, actions_total,
    armed, content_type, count, image, image_of, kill, leading, ready, watching,
};
use tokio::time::{Instant, sleep};

/// How long a test watches for a second action that must not come.
const NOTHING_MORE: Duration = Duration::from_secs(3);
/// From a fault on payments to the pause and the rollback, with room for a slow machine.
const ACTS_WITHIN: Duration = Duration::from_secs(15);
/// `cluster::health`: down after 10 s without an answer (and 3 failures in a row); room for a probe round.
const DOWN_WITHIN: Duration = Duration::from_secs(20);

fn pause_patch() -> Matcher {
    Matcher::method("PATCH").path(DEPLOYMENT).content_type(MERGE_PATCH)
}

fn rollback_patch() -> Matcher {
    Matcher::method("PATCH").path(DEPLOYMENT).content_type(JSON_PATCH)
}

/// The pauses and rollbacks the fake API server applied to the Deployment (answered 2xx), not the attempts.
fn applied(c: &Cluster) -> (usize, usize) {
    let writes: Vec<RecordedRequest> =
        c.fake.applied_writes().into_iter().filter(|w| w.method == "PATCH" && w.path == DEPLOYMENT).collect();
    let of = |media: &str| writes.iter().filter(|w| content_type(w) == media).count();
    (of(MERGE_PATCH), of(JSON_PATCH))
}

async fn readyz(g: &Guardian) -> (u16, String) {
    let r = reqwest::get(g.url("/readyz")).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

async fn metrics(g: &Guardian) -> String {
    reqwest::get(g.url("/metrics")).await.unwrap().text().await.unwrap()
}

fn kubernetes_up(text: &str) -> Option<f64> {
    support::promtext::sample(text, "guardian_kubernetes_up", &[])
}

/// `guardian_kubernetes_api_failures_total`, summed over its labels.
fn api_failures(text: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("guardian_kubernetes_api_failures_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Every rollback intent in the audit log has exactly one `ok` result, or a `failed` one then an `ok` one
/// (interrupted before it was applied, then done by the restarted guardian); no other rollback result.
fn rollback_books(a: &[Value]) -> Result<(), String> {
    let intents: Vec<&str> = a
        .iter()
        .filter(|r| r["action"] == "rollback" && r["outcome"] == "intent")
        .filter_map(|r| r["id"].as_str()?.strip_suffix(":intent"))
        .collect();
    if intents.len() != 1 {
        return Err(format!("{} rollback intents", intents.len()));
    }
    let key = intents[0];
    let ok = a.iter().filter(|r| r["id"] == format!("{key}:ok")).count();
    if ok != 1 {
        return Err(format!("{ok} ok results for {key}"));
    }
    if count(a, "rollback", "ok") != 1 {
        return Err("another rollback was recorded done".into());
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_kubernetes_api_during_a_bad_rollout_ends_in_one_rollback_and_readyz_says_when_the_guard_cannot_act()
{
    let c = Arc::new(Cluster::start().await);
    c.seed_deployment();
    let g = c.guardian(&Replica::named("guardian-a"));
    ready(&g).await;
    let (code, body) = readyz(&g).await;
    assert_eq!(code, 200, "{body}");
    let text = metrics(&g).await;
    assert_eq!(kubernetes_up(&text), Some(1.0), "the API answers");
    assert_eq!(api_failures(&text), 0.0);
    c.roll_out();
    armed(&g).await;

    // Flapping: of every request (the Lease's, the watches', the gets and the patches), about a third is answered
    // 5xx or 429 and one in ten hangs 3.5 s, past the Lease's timeout (3 s) and the health probe's (2 s); every
    // watch is cut every 700 ms.
    c.fake.flap(Matcher::any(), 0.35, &[500, 503, 429, 502, 504], 0.1, Duration::from_millis(3500));
    let cutting = {
        let c = c.clone();
        tokio::spawn(async move {
            loop {
                sleep(Duration::from_millis(700)).await;
                c.fake.break_watches();
            }
        })
    };
    c.break_payments();
    // While it flaps, the API still answers most calls and the guard acts through the errors: /readyz stays 200
    // and the gauge stays 1, never flipping at each failure.
    let mut seen = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(40);
    while !(image_of(&c.deployment()) == image("1.8.1") && applied(&c).1 == 1) {
        assert!(Instant::now() < deadline, "not rolled back through the flapping: {:?}", applied(&c));
        let (code, body) = readyz(&g).await;
        seen.push((code, body, kubernetes_up(&metrics(&g).await)));
        sleep(Duration::from_millis(250)).await;
    }
    // A few seconds more of flapping after the rollback: still up.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        let (code, body) = readyz(&g).await;
        seen.push((code, body, kubernetes_up(&metrics(&g).await)));
        sleep(Duration::from_millis(250)).await;
    }
    let flipped: Vec<_> = seen.iter().filter(|(code, _, up)| *code != 200 || *up != Some(1.0)).collect();
    assert!(
        flipped.is_empty(),
        "flapping flipped readiness in {} of {} samples: {flipped:#?}",
        flipped.len(),
        seen.len()
    );
    let text = metrics(&g).await;
    assert!(api_failures(&text) >= 1.0, "the failed calls are counted: {text}");
    eprintln!("{} samples while flapping, {} failed API calls counted", seen.len(), api_failures(&text));

    // A calm moment (the API answers everything), then a hard outage: every request fails, every watch is cut.
    // The guard says it cannot act once nothing was answered for the rule's 10 s.
    c.fake.stop_flapping();
    cutting.abort();
    sleep(Duration::from_secs(2)).await;
    c.fake.flap(Matcher::any(), 1.0, &[500], 0.0, Duration::ZERO);
    c.fake.break_watches();
    let down = Instant::now();
    eventually(DOWN_WITHIN, "/readyz says the API server is unreachable", || async {
        let (code, body) = readyz(&g).await;
        code == 503 && body.contains("kubernetes API server unreachable") && body.contains("cannot pause or roll back")
    })
    .await;
    let took = down.elapsed();
    eprintln!("unready {took:?} after the outage began");
    // The last answer came at most about a second before the outage (a probe goes out after a second idle).
    assert!(took >= Duration::from_secs(8), "down after {took:?}: the rule waits 10 s without an answer");
    // The gauge follows at the health's next round (every second).
    eventually(Duration::from_secs(3), "guardian_kubernetes_up is 0", || async {
        kubernetes_up(&metrics(&g).await) == Some(0.0)
    })
    .await;
    let (_, body) = readyz(&g).await;
    eprintln!("{body}");

    // The API comes back: ready again at the next answer.
    c.fake.stop_flapping();
    eventually(Duration::from_secs(10), "ready again once the API answers", || async {
        readyz(&g).await.0 == 200 && kubernetes_up(&metrics(&g).await) == Some(1.0)
    })
    .await;
    leading(&g).await;

    // The controller rolls the old template out; the fault on payments goes on: nothing more is applied.
    c.fake.sync_deployment(NS, NAME);
    sleep(NOTHING_MORE).await;
    assert_eq!(applied(&c), (1, 1), "one pause and one rollback applied");
    let d = c.deployment();
    assert_eq!(image_of(&d), image("1.8.1"), "the previous template runs again");
    assert_eq!(d["metadata"]["annotations"][ROLLED_BACK_FROM], "2");
    eventually(Duration::from_secs(5), "the audit log shows one completed rollback", || async {
        rollback_books(&actions(&g).await).is_ok()
    })
    .await;
    let a = actions(&g).await;
    assert_eq!(count(&a, "rollback", "failed"), 0, "{a:#?}");
    assert_eq!(count(&a, "pause", "ok"), 1, "{a:#?}");
    assert_eq!(actions_total(&g, TARGET, "rollback", "ok").await, 1.0);
    assert_eq!(actions_total(&g, TARGET, "pause", "ok").await, 1.0);
    assert_eq!(actions_total(&g, TARGET, "rollback", "failed").await, 0.0);
}

/// A generic webhook receiver that answers 200, except that while `holding`, a rollback notification is held
/// unanswered (its arrival counted) until its sender goes away.
struct Webhook {
    addr: SocketAddr,
    holding: Arc<AtomicBool>,
    /// Every notification that arrived, and whether it was answered.
    seen: Arc<Mutex<Vec<(Value, bool)>>>,
}

impl Webhook {
    async fn start() -> Self {
        let holding = Arc::new(AtomicBool::new(false));
        let seen: Arc<Mutex<Vec<(Value, bool)>>> = Arc::default();
        let (hold, log) = (holding.clone(), seen.clone());
        let app = Router::new().fallback(move |body: Bytes| {
            let (hold, log) = (hold.clone(), log.clone());
            async move {
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let i = {
                    let mut log = log.lock().unwrap();
                    log.push((body.clone(), false));
                    log.len() - 1
                };
                if body["rolled_back"] == true && hold.swap(false, Ordering::SeqCst) {
                    std::future::pending::<()>().await;
                }
                log.lock().unwrap()[i].1 = true;
                StatusCode::OK
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, holding, seen }
    }

    fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    /// The next rollback notification is held unanswered.
    fn hold_the_rollback(&self) {
        self.holding.store(true, Ordering::SeqCst);
    }

    /// The rollback notifications that arrived: (arrived, answered).
    fn rollbacks(&self) -> (usize, usize) {
        let seen = self.seen.lock().unwrap();
        let rollbacks: Vec<_> = seen.iter().filter(|(b, _)| b["rolled_back"] == true).collect();
        (rollbacks.len(), rollbacks.iter().filter(|(_, answered)| *answered).count())
    }

    fn rollback_bodies(&self) -> Vec<Value> {
        self.seen.lock().unwrap().iter().filter(|(b, _)| b["rolled_back"] == true).map(|(b, _)| b.clone()).collect()
    }
}

/// Where the first guardian is SIGKILLed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The pause PATCH reached the API server, which never applies it.
    PauseSentNotApplied,
    /// The pause was applied; its answer never came back.
    PauseAppliedNotAnswered,
    /// The pause went through; the rollback PATCH reached the API server, which never applies it.
    RollbackSentNotApplied,
    /// The same, but the API server applies it after the guardian died (a slow etcd, a client timeout).
    RollbackSentAppliedAfterTheKill,
    /// The rollback was applied; its answer never came back.
    RollbackAppliedNotAnswered,
    /// The rollback was applied, answered and recorded; its notification reached the receiver, which had not
    /// answered yet.
    RollbackToldNotDelivered,
}

/// The notification of the rollback is stored in the outbox, still pending.
async fn rollback_pending_in_the_outbox(dir: &Path) -> bool {
    let url = format!("sqlite://{}", dir.join("guardian.db").display());
    let Ok(store) = guardian::store::open(&url).await else { return false };
    let Ok(rows) = store.deliveries_since(jiff::Timestamp::UNIX_EPOCH).await else { return false };
    rows.iter().any(|d| d.payload.contains("rolled_back") && !d.state.is_final())
}

async fn killed_at(step: Step) {
    let c = Cluster::start().await;
    c.seed_deployment();
    let hook = Webhook::start().await;
    let dir = tempfile::tempdir().unwrap();
    // A restarted pod keeps its name: the same identity, the same storage.
    let replica = Replica::named("guardian-0").notifying(&hook.url());
    let mut first = c.guardian_in(dir.path(), &replica);
    ready(&first).await;
    c.roll_out();
    armed(&first).await;
    let hold = match step {
        Step::PauseSentNotApplied => Some(c.fake.hold_next_before_applying(pause_patch())),
        Step::PauseAppliedNotAnswered => Some(c.fake.hold_next_after_applying(pause_patch())),
        Step::RollbackSentNotApplied | Step::RollbackSentAppliedAfterTheKill => {
            Some(c.fake.hold_next_before_applying(rollback_patch()))
        }
        Step::RollbackAppliedNotAnswered => Some(c.fake.hold_next_after_applying(rollback_patch())),
        Step::RollbackToldNotDelivered => {
            hook.hold_the_rollback();
            None
        }
    };
    c.break_payments();
    match &hold {
        Some(h) => {
            h.arrived(ACTS_WITHIN).await;
        }
        None => {
            eventually(ACTS_WITHIN, "the rollback's notification arrives", || async { hook.rollbacks().0 == 1 }).await;
            // Delivery is at least once from the moment the outbox row is stored (it is queued, flushed each second).
            eventually(Duration::from_secs(5), "the notification is pending in the outbox", || async {
                rollback_pending_in_the_outbox(dir.path()).await
            })
            .await;
        }
    }
    kill(&mut first);
    match step {
        Step::PauseSentNotApplied | Step::RollbackSentNotApplied => hold.as_ref().unwrap().discard(),
        _ => {
            if let Some(h) = &hold {
                h.release();
            }
        }
    }
    if step == Step::RollbackSentAppliedAfterTheKill {
        eventually(Duration::from_secs(5), "the held rollback lands", || async { applied(&c).1 == 1 }).await;
    }
    let before = applied(&c);
    let want_before = match step {
        Step::PauseSentNotApplied => (0, 0),
        Step::PauseAppliedNotAnswered | Step::RollbackSentNotApplied => (1, 0),
        _ => (1, 1),
    };
    assert_eq!(before, want_before, "(pauses, rollbacks) applied when the guardian died");

    let second = c.guardian_in(dir.path(), &replica);
    watching(&second).await;
    leading(&second).await;
    eventually(ACTS_WITHIN, "rolled back once in all", || async {
        image_of(&c.deployment()) == image("1.8.1") && applied(&c).1 == 1
    })
    .await;
    eventually(ACTS_WITHIN, "the audit log resolves the rollback", || async {
        rollback_books(&actions(&second).await).is_ok()
    })
    .await;
    eventually(ACTS_WITHIN, "the rollback's notification is delivered", || async { hook.rollbacks().1 == 1 }).await;
    // The controller rolls the old template out; the fault goes on: nothing more.
    c.fake.sync_deployment(NS, NAME);
    sleep(NOTHING_MORE).await;

    assert_eq!(
        applied(&c),
        (1, 1),
        "exactly one pause and one rollback applied in all: {:#?}",
        c.fake.applied_writes()
    );
    let d = c.deployment();
    assert_eq!(image_of(&d), image("1.8.1"), "the Deployment ends on the previous template");
    assert_eq!(d["metadata"]["annotations"][ROLLED_BACK_FROM], "2");
    let a = actions(&second).await;
    if let Err(e) = rollback_books(&a) {
        panic!("{e}: {a:#?}");
    }
    let interrupted = a.iter().filter(|r| r["action"] == "rollback" && r["outcome"] == "failed").count();
    let want_interrupted = usize::from(step == Step::RollbackSentNotApplied);
    assert_eq!(interrupted, want_interrupted, "the interrupted attempt is recorded as such: {a:#?}");

    // The notification: delivered exactly once, except when the kill cut its delivery: then it is sent again
    // after the restart (at least once), the same message both times.
    let (arrived, answered) = hook.rollbacks();
    assert_eq!(answered, 1, "{:#?}", hook.rollback_bodies());
    if step == Step::RollbackToldNotDelivered {
        assert_eq!(arrived, 2, "sent again after the restart: {:#?}", hook.rollback_bodies());
        let bodies = hook.rollback_bodies();
        assert_eq!(bodies[0], bodies[1], "the same notification both times");
    } else {
        assert_eq!(arrived, 1, "{:#?}", hook.rollback_bodies());
    }
    let body = &hook.rollback_bodies()[0];
    assert_eq!((body["from_revision"].as_u64(), body["target"].as_str()), (Some(2), Some(TARGET)), "{body}");

    // Right after the restart: ready, the API up, and the actions this process did (or found done) counted once.
    let (code, text) = readyz(&second).await;
    assert_eq!(code, 200, "{text}");
    let m = metrics(&second).await;
    assert_eq!(kubernetes_up(&m), Some(1.0));
    let (pauses, rollbacks) = match step {
        // The restarted guardian paused and rolled back itself.
        Step::PauseSentNotApplied => (1.0, 1.0),
        // It rolled back (the pause was applied), or found the rollback done and told of it.
        Step::PauseAppliedNotAnswered
        | Step::RollbackSentNotApplied
        | Step::RollbackSentAppliedAfterTheKill
        | Step::RollbackAppliedNotAnswered => (0.0, 1.0),
        // The killed guardian counted and recorded it: nothing for this one.
        Step::RollbackToldNotDelivered => (0.0, 0.0),
    };
    let by_outcome: HashMap<(&str, &str), f64> =
        [("pause", "ok"), ("rollback", "ok"), ("pause", "failed"), ("rollback", "failed")]
            .into_iter()
            .map(|(action, outcome)| {
                let labels = [("target", TARGET), ("action", action), ("outcome", outcome)];
                ((action, outcome), support::promtext::sample(&m, "guardian_actions_total", &labels).unwrap_or(0.0))
            })
            .collect();
    assert_eq!(by_outcome[&("pause", "ok")], pauses, "{by_outcome:?}");
    assert_eq!(by_outcome[&("rollback", "ok")], rollbacks, "{by_outcome:?}");
    assert_eq!(by_outcome[&("pause", "failed")] + by_outcome[&("rollback", "failed")], 0.0, "{by_outcome:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_its_pause_sent_but_not_applied_the_restarted_guardian_pauses_and_rolls_back_once() {
    killed_at(Step::PauseSentNotApplied).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_its_pause_applied_but_unanswered_the_restarted_guardian_rolls_back_once_without_pausing_again() {
    killed_at(Step::PauseAppliedNotAnswered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_its_rollback_sent_but_not_applied_the_restarted_guardian_rolls_back_once() {
    killed_at(Step::RollbackSentNotApplied).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_its_rollback_sent_and_applied_after_its_death_the_restarted_guardian_records_and_tells_it_once() {
    killed_at(Step::RollbackSentAppliedAfterTheKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_with_its_rollback_applied_but_unanswered_the_restarted_guardian_records_and_tells_it_once() {
    killed_at(Step::RollbackAppliedNotAnswered).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_while_its_rollback_notification_was_unanswered_the_restarted_guardian_sends_it_again() {
    killed_at(Step::RollbackToldNotDelivered).await;
}
