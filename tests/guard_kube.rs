#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design
//! The whole guardian in `guard.mode: kubernetes`, as a real process,
//! against the stateful fake Kubernetes API server: a bad rollout is paused
//! and rolled back once; a breach without a rollout or in dry run touches
//! nothing; conflicts and server errors end in one rollback; of two replicas
//! only the leader acts and its successor does not act again; a restart
//! between intent and result does not roll back twice; Argo Rollouts are
//! paused on spec and aborted on status. What is asserted is the exact calls
//! the cluster saw, the objects it ends with, and what the guardian recorded.

mod support;

use std::time::Duration;

use guardian::sim::Fault;
use serde_json::json;
use support::eventually::eventually;
use support::fake_apiserver::Matcher;
use support::guardian::Guardian;
use support::kube_guardian::{
    Cluster, DEPLOYMENT, JSON_PATCH, LEASE_DURATION, MERGE_PATCH, NAME, NS, REASON, RENEW_EVERY, ROLLED_BACK_FROM,
    ROLLED_BACK_TO, ROLLOUT, Replica, STALE_AFTER, TARGET, actions, actions_total, armed, baseline, content_type,
    count, healthy, image, image_of, incidents, kill, leading, leads, post_json, ready, reason_of, status, watching,
};
use tokio::time::{Instant, sleep, sleep_until};

/// How long a test watches for a second action that must not come while the fault goes on.
const NOTHING_MORE: Duration = Duration::from_secs(3);
/// From a fault on payments to the pause and the rollback, with room for a slow machine.
const ACTS_WITHIN: Duration = Duration::from_secs(15);

fn patch_of_the_deployment() -> Matcher {
    Matcher::method("PATCH").path(DEPLOYMENT)
}

fn content_types(requests: &[support::fake_apiserver::RecordedRequest]) -> Vec<&str> {
    requests.iter().map(content_type).collect()
}

/// The result recorded for the rollback's intent (same key, outcome `ok` or `failed`), if any.
async fn result_of_the_rollback_intent(g: &Guardian) -> Option<serde_json::Value> {
    let a = actions(g).await;
    let intent = a.iter().find(|a| a["action"] == "rollback" && a["outcome"] == "intent")?;
    let key = intent["id"].as_str()?.trim_end_matches(":intent");
    a.iter().find(|a| a["id"] == format!("{key}:ok") || a["id"] == format!("{key}:failed")).cloned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_rollout_is_paused_then_rolled_back_once_to_the_previous_template() {
    let c = Cluster::start().await;
    c.seed_deployment();
    let g = c.guardian(&Replica::named("guardian-a"));
    ready(&g).await;
    c.roll_out();
    armed(&g).await;
    c.break_payments();
    eventually(ACTS_WITHIN, "paused then rolled back", || async { !c.rollbacks().is_empty() }).await;

    let patches = c.writes_besides_the_lease();
    assert_eq!(content_types(&patches), [MERGE_PATCH, JSON_PATCH], "{patches:#?}");
    assert!(patches.iter().all(|p| p.method == "PATCH" && p.path == DEPLOYMENT), "{patches:#?}");
    assert_eq!(patches[0].body["spec"], json!({"paused": true}));
    let reason = patches[0].body["metadata"]["annotations"]["guardian.blueocean.io/reason"].as_str().unwrap();
    assert!(reason.contains("payments-health"), "{reason}");
    let d = c.deployment();
    assert_eq!(image_of(&d), image("1.8.1"), "the previous template runs again");
    assert_eq!(d["spec"]["paused"], false);
    assert_eq!(d["spec"]["replicas"], 5, "replicas untouched");
    assert_eq!(d["metadata"]["annotations"][ROLLED_BACK_FROM], "2");
    assert!(d["metadata"]["annotations"][ROLLED_BACK_TO].is_string(), "{d}");

    // The controller rolls the old template out as revision 3; the fault goes on: never a second action.
    c.fake.sync_deployment(NS, NAME);
    sleep(NOTHING_MORE).await;
    assert_eq!(c.writes_besides_the_lease().len(), 2, "{:#?}", c.writes_besides_the_lease());
    assert_eq!(image_of(&c.deployment()), image("1.8.1"));

    eventually(Duration::from_secs(5), "the actions are listed", || async {
        let a = actions(&g).await;
        count(&a, "pause", "ok") == 1 && count(&a, "rollback", "ok") == 1
    })
    .await;
    let a = actions(&g).await;
    for (action, outcome) in [("pause", "ok"), ("rollback", "intent"), ("rollback", "ok")] {
        assert_eq!(count(&a, action, outcome), 1, "{action} {outcome} once in {a:#?}");
    }
    let rollback = a.iter().find(|a| a["action"] == "rollback" && a["outcome"] == "ok").unwrap();
    assert_eq!(rollback["target"], TARGET);
    assert!(rollback["detail"].as_str().unwrap().contains("from revision 2 to 1"), "{rollback}");
    assert!(rollback["incident"].is_string(), "tied to the incident: {rollback}");
    assert_eq!(actions_total(&g, TARGET, "pause", "ok").await, 1.0);
    assert_eq!(actions_total(&g, TARGET, "rollback", "ok").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_fault_without_a_rollout_opens_one_incident_and_patches_nothing() {
    let c = Cluster::start().await;
    c.seed_deployment();
    let g = c.guardian(&Replica::named("guardian-a"));
    ready(&g).await;
    c.break_payments();
    eventually(ACTS_WITHIN, "an incident opens", || async { !incidents(&g).await.is_empty() }).await;
    sleep(NOTHING_MORE).await;

    assert!(c.writes_besides_the_lease().is_empty(), "{:#?}", c.writes_besides_the_lease());
    let open = incidents(&g).await;
    assert_eq!(open.len(), 1, "{open:#?}");
    assert_eq!(open[0]["check"], "payments-health");
    assert!(open[0]["ended_at"].is_null(), "still open: {}", open[0]);
    let a = actions(&g).await;
    assert!(a.iter().all(|a| a["action"] != "pause" && a["action"] != "rollback"), "{a:#?}");
    assert_eq!(image_of(&c.deployment()), image("1.8.1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dry_run_decides_and_records_without_patching() {
    let c = Cluster::start().await;
    c.seed_deployment();
    let g = c.guardian(&Replica::named("guardian-a").dry_run());
    ready(&g).await;
    c.roll_out();
    armed(&g).await;
    c.break_payments();
    eventually(ACTS_WITHIN, "dry-run actions recorded", || async {
        actions(&g).await.iter().filter(|a| a["outcome"] == "dry_run").count() >= 2
    })
    .await;
    sleep(NOTHING_MORE).await;

    assert!(c.writes_besides_the_lease().is_empty(), "{:#?}", c.writes_besides_the_lease());
    let a = actions(&g).await;
    let mut dry: Vec<&str> =
        a.iter().filter(|a| a["outcome"] == "dry_run").map(|a| a["action"].as_str().unwrap()).collect();
    dry.sort_unstable();
    assert_eq!(dry, ["pause", "rollback"], "recorded once, not at every probe");
    let mut acted = a.iter().filter(|a| a["action"] == "pause" || a["action"] == "rollback");
    assert!(acted.all(|a| a["outcome"] == "dry_run"), "{a:#?}");
    assert_eq!(actions_total(&g, TARGET, "rollback", "dry_run").await, 1.0);
    let d = c.deployment();
    assert_eq!(image_of(&d), image("1.8.2"), "still rolling out the new template");
    assert!(d["spec"]["paused"].is_null(), "{d}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_then_server_errors_on_the_rollback_end_in_exactly_one_rollback() {
    let c = Cluster::start().await;
    c.seed_deployment();
    let g = c.guardian(&Replica::named("guardian-a"));
    ready(&g).await;
    c.roll_out();
    armed(&g).await;
    // The pause is held in the server, so the faults armed once it is seen land on the rollback, not the pause.
    c.fake.delay_next(1, patch_of_the_deployment(), Duration::from_secs(1));
    c.break_payments();
    eventually(ACTS_WITHIN, "the pause is sent", || async { !c.pauses().is_empty() }).await;
    c.fake.fail_next(1, patch_of_the_deployment(), 409);
    c.fake.fail_next(3, patch_of_the_deployment(), 500);
    eventually(Duration::from_secs(20), "rolled back in the end", || async {
        c.fake.pending_faults() == 0 && image_of(&c.deployment()) == image("1.8.1")
    })
    .await;
    c.fake.sync_deployment(NS, NAME);
    sleep(NOTHING_MORE).await;

    // pause, rollback (409: re-read, decided again), three rollbacks answered 500 (retried), the one that went through.
    let patches = c.writes_besides_the_lease();
    let want = [MERGE_PATCH, JSON_PATCH, JSON_PATCH, JSON_PATCH, JSON_PATCH, JSON_PATCH];
    assert_eq!(content_types(&patches), want, "{patches:#?}");
    assert!(patches.iter().all(|p| p.method == "PATCH" && p.path == DEPLOYMENT), "{patches:#?}");
    let succeeded = patches.len() - 1 - 4;
    assert_eq!(succeeded, 1, "exactly one rollback PATCH went through");
    let d = c.deployment();
    assert_eq!(image_of(&d), image("1.8.1"), "the Deployment ends on the old template");
    assert_eq!(d["metadata"]["annotations"][ROLLED_BACK_FROM], "2");

    eventually(Duration::from_secs(5), "the rollback is listed", || async {
        count(&actions(&g).await, "rollback", "ok") == 1
    })
    .await;
    assert_eq!(actions_total(&g, TARGET, "rollback", "ok").await, 1.0);
    assert_eq!(actions_total(&g, TARGET, "pause", "ok").await, 1.0);
    // Attempts that were retried are in the audit log, not counted as failed rollbacks.
    assert_eq!(actions_total(&g, TARGET, "rollback", "failed").await, 0.0);
    assert!(count(&actions(&g).await, "rollback", "retry") >= 1, "the retried attempts are recorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_replicas_only_the_leader_acts_and_its_successor_does_not_act_again() {
    let c = Cluster::start().await;
    c.seed_deployment();
    let replicas = [Replica::named("guardian-a"), Replica::named("guardian-b")];
    let mut guardians = [c.guardian(&replicas[0]), c.guardian(&replicas[1])];
    for g in &guardians {
        healthy(g).await;
        watching(g).await;
    }
    eventually(Duration::from_secs(10), "one replica leads and the other knows it", || async {
        let Some(holder) = c.lease_holder() else { return false };
        let mut seen = Vec::new();
        for g in &guardians {
            let s = status(g).await;
            seen.push((s["guard"]["leader"] == true, s["guard"]["holder"] == holder.as_str()));
        }
        seen.iter().filter(|(leads, _)| *leads).count() == 1 && seen.iter().all(|(_, knows)| *knows)
    })
    .await;
    let holder = c.lease_holder().unwrap();
    let lease = c.lease().unwrap();
    let seconds = lease["spec"]["leaseDurationSeconds"].as_u64();
    assert_eq!(seconds, Some(LEASE_DURATION.as_secs()), "the Lease is written with guard.lease.duration: {lease}");
    let (l, f) = if holder == replicas[0].identity() { (0, 1) } else { (1, 0) };
    assert!(leads(&guardians[l]).await && !leads(&guardians[f]).await);

    c.roll_out();
    for g in &guardians {
        armed(g).await;
    }
    c.break_payments();
    eventually(ACTS_WITHIN, "paused then rolled back", || async { !c.rollbacks().is_empty() }).await;
    sleep(Duration::from_millis(500)).await;
    assert_eq!(content_types(&c.writes_besides_the_lease()), [MERGE_PATCH, JSON_PATCH]);
    assert_eq!(actions_total(&guardians[l], TARGET, "rollback", "ok").await, 1.0, "the leader rolled back");
    assert_eq!(actions_total(&guardians[l], TARGET, "pause", "ok").await, 1.0, "the leader paused");
    for action in ["pause", "rollback"] {
        for outcome in ["ok", "failed", "dry_run"] {
            assert_eq!(actions_total(&guardians[f], TARGET, action, outcome).await, 0.0, "the follower: {action}");
        }
    }
    eventually(Duration::from_secs(5), "the follower heard of the breach and left it to the leader", || async {
        guardians[f].all_logs().contains("not the leader")
    })
    .await;
    c.fake.sync_deployment(NS, NAME);

    // SIGKILL: the Lease is not released; the follower waits it out.
    kill(&mut guardians[l]);
    let killed = Instant::now();
    let follower = replicas[f].identity();
    // The follower first sees the last renewal up to one poll after it, waits a whole lease from then, and notices
    // the expiry at its next poll (polls come at most every renewal period or two).
    let takeover = LEASE_DURATION * 2 + RENEW_EVERY * 2;
    eventually(takeover, "the follower takes the Lease over", || async {
        c.lease_holder().as_deref() == Some(follower) && leads(&guardians[f]).await
    })
    .await;
    let took = killed.elapsed();
    assert!(took >= LEASE_DURATION - RENEW_EVERY, "took over after {took:?}, before the lease could expire");

    // The fault goes on: the new leader hears of it at every bad probe, decides, and leaves the rolled-back
    // Deployment alone.
    eventually(Duration::from_secs(5), "the new leader decided not to act", || async {
        guardians[f].all_logs().contains("already rolled back to this template")
    })
    .await;
    sleep(NOTHING_MORE).await;
    let patches = c.writes_besides_the_lease();
    assert_eq!(content_types(&patches), [MERGE_PATCH, JSON_PATCH], "no action after the takeover: {patches:#?}");
    assert_eq!(image_of(&c.deployment()), image("1.8.1"));
    assert_eq!(actions_total(&guardians[f], TARGET, "rollback", "ok").await, 0.0);
    assert_eq!(actions_total(&guardians[f], TARGET, "pause", "ok").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guardian_killed_between_intent_and_result_never_rolls_back_twice() {
    // How long the rollback PATCH is held in the server: the guardian is killed meanwhile.
    const HELD: Duration = Duration::from_secs(2);
    let c = Cluster::start().await;
    c.seed_deployment();
    let dir = tempfile::tempdir().unwrap();
    // A restarted pod keeps its name: the same identity, the same storage.
    let replica = Replica::named("guardian-0");
    let mut first = c.guardian_in(dir.path(), &replica);
    ready(&first).await;
    c.roll_out();
    armed(&first).await;
    c.fake.delay_next(1, patch_of_the_deployment(), Duration::from_secs(1));
    c.break_payments();
    eventually(ACTS_WITHIN, "the pause is sent", || async { !c.pauses().is_empty() }).await;
    c.fake.delay_next(1, patch_of_the_deployment(), HELD);
    eventually(Duration::from_secs(5), "the rollback is sent", || async { !c.rollbacks().is_empty() }).await;
    let sent = Instant::now();
    kill(&mut first);

    // The fake records a request on arrival and serves it after the delay, unless the connection's end drops
    // it first: either way, let the held PATCH play out before looking.
    sleep_until(sent + HELD + Duration::from_millis(500)).await;
    let applied_before_restart = image_of(&c.deployment()) == image("1.8.1");
    let rollbacks_before_restart = c.rollbacks().len();
    eprintln!("the held rollback PATCH landed after the kill: {applied_before_restart}");
    assert_eq!(rollbacks_before_restart, 1);

    let second = c.guardian_in(dir.path(), &replica);
    watching(&second).await;
    leading(&second).await;
    eventually(ACTS_WITHIN, "the interrupted rollback is reconciled", || async {
        result_of_the_rollback_intent(&second).await.is_some()
    })
    .await;
    let logs = second.all_logs();
    assert!(logs.contains("reconciled a rollback left half-done"), "the restarted guardian reconciles the intent");
    if !applied_before_restart {
        // The held PATCH never landed: the breach goes on during the rollout, so the new process decides afresh.
        eventually(ACTS_WITHIN, "rolled back after the restart", || async {
            image_of(&c.deployment()) == image("1.8.1")
        })
        .await;
    }
    sleep(NOTHING_MORE).await;

    let after_restart = c.rollbacks().len() - rollbacks_before_restart;
    let applied = usize::from(applied_before_restart) + after_restart;
    assert!(
        applied <= 1,
        "rolled back twice: {applied_before_restart} before the restart, then {after_restart} rollback PATCHes"
    );
    assert_eq!(applied, 1, "before the restart: {applied_before_restart}; after: {after_restart}");
    let d = c.deployment();
    assert_eq!(image_of(&d), image("1.8.1"), "the Deployment ends on the old template");
    assert_eq!(d["metadata"]["annotations"][ROLLED_BACK_FROM], "2");
    assert_eq!(c.pauses().len(), 1, "{:#?}", c.pauses());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guardian_killed_after_its_rollback_landed_but_before_recording_it_does_not_roll_back_again() {
    let c = Cluster::start().await;
    c.seed_deployment();
    let dir = tempfile::tempdir().unwrap();
    let replica = Replica::named("guardian-0");
    let mut first = c.guardian_in(dir.path(), &replica);
    ready(&first).await;
    c.roll_out();
    armed(&first).await;
    c.break_payments();
    // Killed the moment the rollback shows on the Deployment: the intent was stored before the patch, the
    // result is queued (storage writes are flushed every second) and most likely lost.
    eventually(ACTS_WITHIN, "rolled back", || async { image_of(&c.deployment()) == image("1.8.1") }).await;
    kill(&mut first);
    c.fake.sync_deployment(NS, NAME);
    assert_eq!(content_types(&c.writes_besides_the_lease()), [MERGE_PATCH, JSON_PATCH]);

    let second = c.guardian_in(dir.path(), &replica);
    watching(&second).await;
    leading(&second).await;
    eventually(ACTS_WITHIN, "the rollback has its result", || async {
        result_of_the_rollback_intent(&second).await.is_some_and(|r| r["outcome"] == "ok")
    })
    .await;
    let reconciled = second.all_logs().contains("reconciled a rollback left half-done");
    eprintln!("the result was lost and reconciled after the restart: {reconciled}");
    // The fault goes on, and the Deployment carries rolled-back-to: the new process decides and leaves it alone.
    eventually(Duration::from_secs(5), "the restarted guardian decided not to act", || async {
        second.all_logs().contains("already rolled back to this template")
    })
    .await;
    sleep(NOTHING_MORE).await;
    let patches = c.writes_besides_the_lease();
    assert_eq!(content_types(&patches), [MERGE_PATCH, JSON_PATCH], "no second rollback: {patches:#?}");
    let d = c.deployment();
    assert_eq!(image_of(&d), image("1.8.1"));
    assert_eq!(d["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_argo_rollout_is_paused_on_spec_and_aborted_on_its_status() {
    let c = Cluster::start().await;
    c.seed_argo_rollout();
    let g = c.guardian(&Replica::named("guardian-a").of_an_argo_rollout());
    ready(&g).await;
    c.roll_out_argo();
    armed(&g).await;
    c.break_payments();
    eventually(ACTS_WITHIN, "paused then aborted", || async { c.writes_besides_the_lease().len() >= 2 }).await;
    sleep(NOTHING_MORE).await;

    let writes = c.writes_besides_the_lease();
    let calls: Vec<(&str, &str)> = writes.iter().map(|w| (w.method.as_str(), w.path.as_str())).collect();
    assert_eq!(calls, [("PATCH", ROLLOUT), ("PATCH", &*format!("{ROLLOUT}/status"))], "{writes:#?}");
    assert_eq!(content_types(&writes), [MERGE_PATCH, MERGE_PATCH]);
    assert_eq!(writes[0].body["spec"], json!({"paused": true}));
    assert_eq!(writes[1].body, json!({"status": {"abort": true}}));
    let r = c.argo_rollout();
    assert_eq!((r["spec"]["paused"].as_bool(), r["status"]["abort"].as_bool()), (Some(true), Some(true)));
    assert_eq!(image_of(&r), image("1.8.2"), "Argo itself runs the stable pods again; the spec is left alone");
    let target = "blueocean-nextgen-prod/Rollout/nextgen-dashboard";
    eventually(Duration::from_secs(5), "the actions are listed", || async {
        let a = actions(&g).await;
        count(&a, "pause", "ok") == 1 && count(&a, "rollback", "ok") == 1
    })
    .await;
    assert_eq!(actions_total(&g, target, "rollback", "ok").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_simulator_stopped_during_a_rollout_is_paused_for_missing_data_and_never_rolled_back() {
    let mut c = Cluster::start().await;
    c.seed_deployment();
    let g = c.guardian(&Replica::named("guardian-a"));
    ready(&g).await;
    c.roll_out();
    armed(&g).await;
    c.stop_simulator().await;
    let stopped = Instant::now();
    // A refused connection is no evidence: only missing data, once gate.stale_after has gone by since the last answer.
    eventually(STALE_AFTER + ACTS_WITHIN, "paused for missing data", || async { !c.pauses().is_empty() }).await;
    let took = stopped.elapsed();
    eprintln!("paused {took:?} after the simulator stopped");
    // The last answer came at most about one interval (1 s) before the stop.
    assert!(took >= STALE_AFTER - Duration::from_secs(2), "paused {took:?} after the stop, before the data went stale");
    // Missing data goes on: still never a rollback, nor a second pause.
    sleep(NOTHING_MORE + Duration::from_secs(2)).await;

    let writes = c.writes_besides_the_lease();
    assert_eq!(content_types(&writes), [MERGE_PATCH], "one pause and nothing else: {writes:#?}");
    assert_eq!((writes[0].method.as_str(), writes[0].path.as_str()), ("PATCH", DEPLOYMENT));
    assert_eq!(writes[0].body["spec"], json!({"paused": true}));
    let reason = reason_of(&writes[0]);
    assert!(reason.contains("no answer") && reason.contains("payments-health"), "{reason}");
    let d = c.deployment();
    assert_eq!(d["spec"]["paused"], true, "{d}");
    assert_eq!(d["metadata"]["annotations"][REASON], reason.as_str(), "{d}");
    assert_eq!(image_of(&d), image("1.8.2"), "not rolled back: the new template stays");
    assert!(d["metadata"]["annotations"][ROLLED_BACK_FROM].is_null(), "{d}");

    eventually(Duration::from_secs(5), "the pause is listed", || async {
        count(&actions(&g).await, "pause", "ok") == 1
    })
    .await;
    let a = actions(&g).await;
    assert_eq!(count(&a, "pause", "ok"), 1, "{a:#?}");
    assert!(a.iter().all(|a| a["action"] != "rollback"), "no rollback, not even its intent: {a:#?}");
    assert_eq!(actions_total(&g, TARGET, "pause", "ok").await, 1.0);
    assert_eq!(actions_total(&g, TARGET, "rollback", "ok").await, 0.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migration_declared_on_breach_pause_arms_the_deployment_which_is_paused_never_rolled_back() {
    let c = Cluster::start().await;
    c.seed_deployment();
    let g = c.guardian(&Replica::named("guardian-a"));
    ready(&g).await;
    let before = status(&g).await;
    assert_eq!(before["targets"][0]["armed"], false, "nothing rolls out yet: {}", before["targets"]);

    let body = json!({"target": TARGET, "description": "drop column customers.legacy_ref", "on_breach": "pause"});
    let (code, answer) = post_json(&g, "/api/v1/migrations", &body).await;
    assert_eq!(code, 201, "{answer}");
    let id = answer["id"].as_str().unwrap().to_owned();
    let target = status(&g).await["targets"][0].clone();
    assert_eq!(target["armed"], true, "a migration arms the target without a rollout: {target}");
    assert_eq!(target["rolling_out"], false, "{target}");
    assert_eq!(target["migrations"][0]["id"], id.as_str(), "{target}");

    c.break_payments();
    eventually(ACTS_WITHIN, "paused", || async { !c.pauses().is_empty() }).await;
    sleep(NOTHING_MORE).await;
    let writes = c.writes_besides_the_lease();
    assert_eq!(content_types(&writes), [MERGE_PATCH], "exactly one pause, no rollback: {writes:#?}");
    assert_eq!((writes[0].method.as_str(), writes[0].path.as_str()), ("PATCH", DEPLOYMENT));
    assert_eq!(writes[0].body["spec"], json!({"paused": true}));
    let reason = reason_of(&writes[0]);
    assert!(reason.contains("payments-health") && reason.contains("on_breach: pause"), "{reason}");
    let d = c.deployment();
    assert_eq!(d["spec"]["paused"], true, "{d}");
    assert_eq!(image_of(&d), image("1.8.1"), "the template is left alone");
    assert!(d["metadata"]["annotations"][ROLLED_BACK_FROM].is_null(), "{d}");
    eventually(Duration::from_secs(5), "the pause is listed", || async {
        count(&actions(&g).await, "pause", "ok") == 1
    })
    .await;
    let a = actions(&g).await;
    assert!(a.iter().all(|a| a["action"] != "rollback"), "no rollback, not even its intent: {a:#?}");

    // The pause is a spec change (generation + 1): the controller observes it and the Deployment is settled again,
    // armed only by the migration.
    c.fake.sync_deployment(NS, NAME);
    eventually(Duration::from_secs(5), "the settled, paused Deployment is seen", || async {
        let t = &status(&g).await["targets"][0];
        t["rolling_out"] == false && t["paused"] == true
    })
    .await;
    let (code, answer) = post_json(&g, &format!("/api/v1/migrations/{id}/finish"), &json!({})).await;
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["id"], id.as_str(), "{answer}");
    let target = status(&g).await["targets"][0].clone();
    assert_eq!(target["armed"], false, "finishing the migration disarms: {target}");
    assert_eq!(target["migrations"], json!([]), "{target}");
    // The fault goes on, the target disarmed: nothing more.
    sleep(Duration::from_secs(2)).await;
    assert_eq!(c.writes_besides_the_lease().len(), 1, "{:#?}", c.writes_besides_the_lease());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_customer_count_dropping_during_a_rollout_is_paused_and_rolled_back_naming_both_numbers() {
    const CHECK: &str = "customers-count";
    let c = Cluster::start().await;
    c.seed_deployment();
    let g = c.guardian(&Replica::named("guardian-a").counting_customers());
    ready(&g).await;
    assert_eq!(baseline(&g, CHECK, "/count").await, None, "no baseline while nothing is armed");
    c.roll_out();
    armed(&g).await;
    // The first good answer after arming is the baseline.
    eventually(Duration::from_secs(5), "the baseline is taken at arming", || async {
        baseline(&g, CHECK, "/count").await == Some(1342.0)
    })
    .await;
    c.fault(Fault { json: Some(json!({"count": 1200})), ..Fault::on("/api/customers/count") });
    eventually(ACTS_WITHIN, "paused then rolled back", || async { !c.rollbacks().is_empty() }).await;

    let writes = c.writes_besides_the_lease();
    assert_eq!(content_types(&writes), [MERGE_PATCH, JSON_PATCH], "{writes:#?}");
    assert!(writes.iter().all(|w| w.method == "PATCH" && w.path == DEPLOYMENT), "{writes:#?}");
    assert_eq!(writes[0].body["spec"], json!({"paused": true}));
    let reason = reason_of(&writes[0]);
    assert!(reason.contains(CHECK) && reason.contains("1342") && reason.contains("1200"), "{reason}");
    let d = c.deployment();
    let on_the_object = d["metadata"]["annotations"][REASON].as_str().unwrap_or_default();
    assert!(on_the_object.contains("1342") && on_the_object.contains("1200"), "{d}");
    assert_eq!(image_of(&d), image("1.8.1"), "the previous template runs again");
    assert_eq!(d["metadata"]["annotations"][ROLLED_BACK_FROM], "2");

    // The controller rolls the old template out; the count stays low: never a second action.
    c.fake.sync_deployment(NS, NAME);
    sleep(NOTHING_MORE).await;
    assert_eq!(c.writes_besides_the_lease().len(), 2, "{:#?}", c.writes_besides_the_lease());
    eventually(Duration::from_secs(5), "the actions are listed", || async {
        let a = actions(&g).await;
        count(&a, "pause", "ok") == 1 && count(&a, "rollback", "ok") == 1
    })
    .await;
    let a = actions(&g).await;
    let rollback = a.iter().find(|a| a["action"] == "rollback" && a["outcome"] == "ok").unwrap();
    let detail = rollback["detail"].as_str().unwrap();
    assert!(detail.contains("from revision 2 to 1") && detail.contains(CHECK), "{rollback}");
    assert_eq!(actions_total(&g, TARGET, "rollback", "ok").await, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_lease_electing_a_redis_outage_only_costs_deduplication() {
    let c = Cluster::start().await;
    c.seed_deployment();
    let g = c.guardian(&Replica::named("guardian-a").with_redis("redis://127.0.0.1:1"));
    ready(&g).await;
    let r = reqwest::get(g.url("/readyz")).await.unwrap();
    assert_eq!(r.status(), 200, "the Lease elects: Redis is not needed to act");
    let body = r.text().await.unwrap();
    assert!(body.contains("note: redis unreachable") && body.contains("not deduplicated"), "{body}");
    c.roll_out();
    armed(&g).await;
    c.break_payments();
    eventually(ACTS_WITHIN, "paused then rolled back", || async { !c.rollbacks().is_empty() }).await;
    let metrics = reqwest::get(g.url("/metrics")).await.unwrap().text().await.unwrap();
    assert_eq!(support::promtext::sample(&metrics, "guardian_redis_up", &[]), Some(0.0));
}
