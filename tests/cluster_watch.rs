#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design
//! `KubeCluster::watch` against the stateful fake API server: the current
//! state first, then every change, pushed by list + watch (never polled);
//! re-watching after a dropped stream, re-listing after a 410, backing off
//! on errors; deletions as `NotFound`; and the rolled-back-to template of
//! Deployments and Argo Rollouts.

mod support;

use std::time::Duration;

use futures_util::StreamExt;
use guardian::cluster::{Cluster, Error, KubeCluster, RolloutState, TargetEvent, TargetRef};
use guardian::config::TargetKind;
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject};
use kube::core::GroupVersionKind;
use serde_json::json;
use support::eventually::eventually;
use support::fake_apiserver::{FakeApiServer, Matcher, RecordedRequest, objects};
use tokio::sync::mpsc;
use tokio::time::{Instant, timeout_at};

const NS: &str = "blueocean-nextgen-prod";
const IMAGE: &str = "registry.digitalocean.com/blueocean/nextgen-dashboard";
const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/blueocean-nextgen-prod/deployments";
const ROLLOUTS: &str = "/apis/argoproj.io/v1alpha1/namespaces/blueocean-nextgen-prod/rollouts";
/// How long any one expected event may take (a 410 or an error costs the watcher a 0.8–1.6 s back-off).
const WITHIN: Duration = Duration::from_secs(6);

/// The watch as the guard consumes it: a task that always polls the stream (a watcher only makes its next request
/// while polled) and hands the events over.
struct Events {
    rx: mpsc::UnboundedReceiver<TargetEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Events {
    fn start(c: &KubeCluster, targets: Vec<TargetRef>) -> Self {
        let mut stream = c.watch(targets);
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            while let Some(event) = stream.next().await {
                if tx.send(event).is_err() {
                    return;
                }
            }
        });
        Self { rx, task }
    }

    async fn next(&mut self) -> Option<TargetEvent> {
        self.rx.recv().await
    }
}

impl Drop for Events {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn cluster(fake: &FakeApiServer, dir: &tempfile::TempDir) -> KubeCluster {
    let kubeconfig = kube::config::Kubeconfig::read_from(fake.kubeconfig(dir.path())).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.unwrap();
    KubeCluster::from_client(kube::Client::try_from(config).unwrap())
}

/// A client of its own, standing in for `kubectl` (a person deleting the Deployment).
async fn kubectl(fake: &FakeApiServer, dir: &tempfile::TempDir) -> Api<DynamicObject> {
    let kubeconfig = kube::config::Kubeconfig::read_from(fake.kubeconfig(dir.path())).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.unwrap();
    let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk("apps", "v1", "Deployment"), "deployments");
    Api::namespaced_with(kube::Client::try_from(config).unwrap(), NS, &resource)
}

fn target(kind: TargetKind, name: &str) -> TargetRef {
    TargetRef { kind, namespace: NS.into(), name: name.into() }
}

fn image(tag: &str) -> String {
    format!("{IMAGE}:{tag}")
}

/// The next event, whatever it is.
async fn next(events: &mut Events) -> TargetEvent {
    tokio::time::timeout(WITHIN, events.next())
        .await
        .unwrap_or_else(|_| panic!("no event within {WITHIN:?}"))
        .expect("the watch stream never ends")
}

/// Reads events until one for `t` satisfies `want`; returns every event read, the match last. Panics naming `what`
/// and listing the events read when none matches within [`WITHIN`].
async fn until(
    events: &mut Events,
    t: &TargetRef,
    what: &str,
    want: impl Fn(&Result<RolloutState, Error>) -> bool,
) -> Vec<TargetEvent> {
    let deadline = Instant::now() + WITHIN;
    let mut seen = Vec::new();
    loop {
        match timeout_at(deadline, events.next()).await {
            Ok(Some(event)) => {
                let hit = event.target == *t && want(&event.state);
                seen.push(event);
                if hit {
                    return seen;
                }
            }
            Ok(None) => panic!("the watch stream ended while waiting for {what}; events: {seen:#?}"),
            Err(_) => panic!("not within {WITHIN:?}: {what}; events: {seen:#?}"),
        }
    }
}

/// The state of the last event read by [`until`].
fn last_state(seen: &[TargetEvent]) -> RolloutState {
    seen.last().expect("until returns the match").state.clone().expect("a state")
}

fn unavailable(state: &Result<RolloutState, Error>) -> bool {
    matches!(state, Err(Error::Unavailable { .. }))
}

/// The client's calls on a collection (list, watch) and its objects.
fn calls_under(fake: &FakeApiServer, collection: &str) -> Vec<RecordedRequest> {
    fake.requests().into_iter().filter(|r| r.path.starts_with(collection)).collect()
}

fn lists(calls: &[RecordedRequest], collection: &str) -> usize {
    calls.iter().filter(|r| r.method == "GET" && r.path == collection && !r.is_watch()).count()
}

fn watches(calls: &[RecordedRequest], collection: &str) -> usize {
    calls.iter().filter(|r| r.method == "GET" && r.path == collection && r.is_watch()).count()
}

/// Waits until `n` watch requests on `collection` have been made and one is open.
async fn watching(fake: &FakeApiServer, collection: &str, n: usize) {
    eventually(Duration::from_secs(5), &format!("watch #{n} on {collection} is open"), || async {
        watches(&calls_under(fake, collection), collection) >= n && fake.open_watches() >= 1
    })
    .await;
}

fn watch_matcher(collection: &str) -> Matcher {
    Matcher::method("GET").path(collection).query_contains("watch=true")
}

#[tokio::test]
async fn a_settled_deployment_is_first_seen_as_it_is_not_rolling_out() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);

    let mut events = Events::start(&c, vec![t.clone()]);
    let first = next(&mut events).await;

    assert_eq!(first.target, t);
    let state = first.state.expect("the current state, not an error");
    assert!(!state.rolling_out && !state.paused, "{state:?}");
    assert_eq!(state.revision, Some(1));
    assert_eq!(state.rolled_back_to, None);
    assert_eq!(state, c.rollout(&t).await.unwrap(), "the same state a GET gives");
}

#[tokio::test]
async fn a_rollout_and_its_completion_are_pushed_by_one_list_and_one_watch() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);
    let listed_at = fake.resource_version();

    let mut events = Events::start(&c, vec![t.clone()]);
    let settled = next(&mut events).await.state.unwrap();
    watching(&fake, DEPLOYMENTS, 1).await;

    fake.simulate_rollout(NS, "nextgen-dashboard", &image("1.8.2"));
    let seen = until(&mut events, &t, "rolling out a new template at revision 2", |s| {
        s.as_ref().is_ok_and(|s| s.rolling_out && s.revision == Some(2))
    })
    .await;
    let rolling = last_state(&seen);
    assert_ne!(rolling.template, settled.template, "a new pod template");
    assert!(seen.iter().all(|e| e.target == t && e.state.as_ref().is_ok_and(|s| s.rolling_out)), "{seen:#?}");

    fake.complete_rollout(NS, "nextgen-dashboard");
    let seen = until(&mut events, &t, "the rollout completes", |s| s.as_ref().is_ok_and(|s| !s.rolling_out)).await;
    let done = last_state(&seen);
    assert_eq!((done.template.as_str(), done.revision), (rolling.template.as_str(), Some(2)));

    // Pushed, not polled: one list, then one watch from the list's version; never a GET of the object.
    let calls = fake.requests();
    let shown: Vec<(&str, &str, Option<&str>)> =
        calls.iter().map(|r| (r.method.as_str(), r.path.as_str(), r.query.as_deref())).collect();
    assert_eq!(calls.len(), 2, "{shown:#?}");
    let (list, watch) = (&calls[0], &calls[1]);
    assert_eq!((list.method.as_str(), list.path.as_str(), list.is_watch()), ("GET", DEPLOYMENTS, false));
    assert_eq!((watch.method.as_str(), watch.path.as_str(), watch.is_watch()), ("GET", DEPLOYMENTS, true));
    for r in [list, watch] {
        assert_eq!(r.param("fieldSelector").as_deref(), Some("metadata.name=nextgen-dashboard"), "{r:?}");
    }
    assert_eq!(watch.param("resourceVersion"), Some(listed_at.to_string()), "the watch resumes from the list");
}

#[tokio::test]
async fn a_deployment_and_a_rollout_of_the_same_name_are_told_apart() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let dep = target(TargetKind::Deployment, "nextgen-dashboard");
    let ro = target(TargetKind::Rollout, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);
    // Another Deployment whose changes must not show up as the target's.
    fake.seed_deployment(NS, "nextgen-dashboard-canary", &image("1.8.1"), 1);
    let mut rollout = objects::rollout(NS, "nextgen-dashboard", &image("2.0.0"), 5);
    rollout["metadata"]["annotations"] = json!({"rollout.argoproj.io/revision": "5"});
    rollout["status"]["currentPodHash"] = json!("6b7f9c8d5");
    rollout["status"]["stableRS"] = json!("6b7f9c8d5");
    fake.put_object(rollout.clone());

    let mut events = Events::start(&c, vec![dep.clone(), ro.clone()]);
    let (a, b) = (next(&mut events).await, next(&mut events).await);
    let mut firsts = [a, b];
    firsts.sort_by(|x, y| x.target.cmp(&y.target));
    assert_eq!([&firsts[0].target, &firsts[1].target], [&dep, &ro]);
    let dep_first = firsts[0].state.clone().unwrap();
    let ro_first = firsts[1].state.clone().unwrap();
    assert_eq!((dep_first.revision, dep_first.rolling_out), (Some(1), false));
    assert_eq!((ro_first.revision, ro_first.rolling_out, ro_first.template.as_str()), (Some(5), false, "6b7f9c8d5"));
    watching(&fake, DEPLOYMENTS, 1).await;
    watching(&fake, ROLLOUTS, 1).await;

    fake.simulate_rollout(NS, "nextgen-dashboard-canary", &image("1.8.2"));
    fake.simulate_rollout(NS, "nextgen-dashboard", &image("1.8.2"));
    let mut seen = until(&mut events, &dep, "the Deployment rolls out", |s| {
        s.as_ref().is_ok_and(|s| s.rolling_out && s.revision == Some(2))
    })
    .await;

    rollout["metadata"]["generation"] = json!(2);
    rollout["metadata"]["annotations"]["rollout.argoproj.io/revision"] = json!("6");
    rollout["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image("2.0.1"));
    rollout["status"]["currentPodHash"] = json!("5c8d7f6b4");
    fake.put_object(rollout);
    seen.extend(
        until(&mut events, &ro, "the Rollout rolls out", |s| {
            s.as_ref().is_ok_and(|s| s.rolling_out && s.template == "5c8d7f6b4")
        })
        .await,
    );

    let dep_now = c.rollout(&dep).await.unwrap();
    assert_ne!(dep_now.template, dep_first.template);
    for e in &seen {
        let s = e.state.as_ref().unwrap_or_else(|err| panic!("{err}: {seen:#?}"));
        if e.target == dep {
            assert!(matches!(s.revision, Some(1 | 2)), "{seen:#?}");
            assert!(s.template == dep_first.template || s.template == dep_now.template, "not the canary: {seen:#?}");
        } else {
            assert_eq!(e.target, ro, "{seen:#?}");
            assert_eq!(s.revision, Some(6), "the Rollout only changed once: {seen:#?}");
        }
    }
    assert_eq!(seen.iter().filter(|e| e.target == ro).count(), 1, "{seen:#?}");
    assert_eq!(last_state(&seen), c.rollout(&ro).await.unwrap());
}

#[tokio::test]
async fn a_dropped_watch_is_resumed_from_its_version_and_misses_nothing() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);
    let mut events = Events::start(&c, vec![t.clone()]);
    let settled = next(&mut events).await.state.unwrap();
    watching(&fake, DEPLOYMENTS, 1).await;

    // The re-watch is held up, so the rollout happens while no watch is open.
    fake.delay_next(1, watch_matcher(DEPLOYMENTS), Duration::from_millis(400));
    fake.break_watches();
    eventually(Duration::from_secs(5), "the client re-watches", || async {
        watches(&calls_under(&fake, DEPLOYMENTS), DEPLOYMENTS) == 2 && fake.open_watches() == 0
    })
    .await;
    fake.simulate_rollout(NS, "nextgen-dashboard", &image("1.8.2"));

    let seen = until(&mut events, &t, "the rollout made while the watch was down", |s| {
        s.as_ref().is_ok_and(|s| s.rolling_out && s.revision == Some(2))
    })
    .await;
    assert!(seen.iter().all(|e| e.state.is_ok()), "a clean end of stream is no error: {seen:#?}");
    assert_ne!(last_state(&seen).template, settled.template);

    // The second watch works like the first.
    watching(&fake, DEPLOYMENTS, 2).await;
    fake.complete_rollout(NS, "nextgen-dashboard");
    until(&mut events, &t, "the completion", |s| s.as_ref().is_ok_and(|s| !s.rolling_out)).await;
    let calls = calls_under(&fake, DEPLOYMENTS);
    assert_eq!((lists(&calls, DEPLOYMENTS), watches(&calls, DEPLOYMENTS)), (1, 2), "resumed, not re-listed");
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_relists_and_still_sees_later_changes() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);
    let mut events = Events::start(&c, vec![t.clone()]);
    let settled = next(&mut events).await.state.unwrap();
    watching(&fake, DEPLOYMENTS, 1).await;

    // While the watch is down the rollout happens and the history is compacted: resuming gets 410 Gone.
    fake.delay_next(1, watch_matcher(DEPLOYMENTS), Duration::from_millis(400));
    fake.break_watches();
    eventually(Duration::from_secs(5), "the client re-watches", || async {
        watches(&calls_under(&fake, DEPLOYMENTS), DEPLOYMENTS) == 2 && fake.open_watches() == 0
    })
    .await;
    fake.simulate_rollout(NS, "nextgen-dashboard", &image("1.8.2"));
    fake.compact();

    let seen = until(&mut events, &t, "the rollout, from the re-list", |s| {
        s.as_ref().is_ok_and(|s| s.rolling_out && s.revision == Some(2))
    })
    .await;
    assert_ne!(last_state(&seen).template, settled.template);
    assert!(seen.iter().all(|e| e.state.is_ok() || unavailable(&e.state)), "{seen:#?}");
    let calls = calls_under(&fake, DEPLOYMENTS);
    assert_eq!(lists(&calls, DEPLOYMENTS), 2, "listed again after the 410");

    // And it watches again from the new list.
    watching(&fake, DEPLOYMENTS, 3).await;
    fake.complete_rollout(NS, "nextgen-dashboard");
    until(&mut events, &t, "the completion after the re-list", |s| s.as_ref().is_ok_and(|s| !s.rolling_out)).await;
    let calls = calls_under(&fake, DEPLOYMENTS);
    assert!(calls.iter().all(|r| r.path == DEPLOYMENTS), "never a GET of the object: {calls:#?}");
}

#[tokio::test]
async fn a_deleted_deployment_is_not_found_whether_seen_deleted_or_missing_from_a_relist() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let kubectl = kubectl(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);
    let mut events = Events::start(&c, vec![t.clone()]);
    next(&mut events).await.state.unwrap();
    watching(&fake, DEPLOYMENTS, 1).await;

    // Deleted while watched: a DELETED event.
    kubectl.delete("nextgen-dashboard", &DeleteParams::default()).await.unwrap();
    let seen = until(&mut events, &t, "NotFound after the delete", |s| s.is_err()).await;
    assert_eq!(seen.last().unwrap().state, Err(Error::NotFound(t.clone())), "{seen:#?}");

    // Created again: seen again.
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.9.0"), 7);
    until(&mut events, &t, "the new Deployment", |s| s.is_ok()).await;

    // Deleted while the watch is down and the history is gone: only the re-list shows it is missing.
    fake.delay_next(1, watch_matcher(DEPLOYMENTS), Duration::from_millis(400));
    fake.break_watches();
    eventually(Duration::from_secs(5), "the client re-watches", || async {
        watches(&calls_under(&fake, DEPLOYMENTS), DEPLOYMENTS) == 2 && fake.open_watches() == 0
    })
    .await;
    kubectl.delete("nextgen-dashboard", &DeleteParams::default()).await.unwrap();
    fake.compact();
    let seen = until(&mut events, &t, "NotFound from the re-list", |s| matches!(s, Err(Error::NotFound(_)))).await;
    assert_eq!(seen.last().unwrap().state, Err(Error::NotFound(t.clone())));
    assert!(seen.iter().all(|e| unavailable(&e.state) || e.state == Err(Error::NotFound(t.clone()))), "{seen:#?}");
    assert_eq!(lists(&calls_under(&fake, DEPLOYMENTS), DEPLOYMENTS), 2, "the 410 made it list again");
}

#[tokio::test]
async fn a_target_missing_from_the_start_is_not_found_then_seen_once_created() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-admin", &image("1.0.0"), 1);
    let mut events = Events::start(&c, vec![t.clone()]);

    assert_eq!(next(&mut events).await, TargetEvent { target: t.clone(), state: Err(Error::NotFound(t.clone())) });
    watching(&fake, DEPLOYMENTS, 1).await;
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);
    let seen = until(&mut events, &t, "the created Deployment", |s| s.is_ok()).await;
    assert_eq!(seen.len(), 1, "{seen:#?}");
    assert_eq!(last_state(&seen).revision, Some(1));
}

#[tokio::test]
async fn a_failing_first_list_is_reported_unavailable_then_the_watch_recovers() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);
    fake.fail_next(2, Matcher::method("GET").path(DEPLOYMENTS), 500);

    let started = Instant::now();
    let mut events = Events::start(&c, vec![t.clone()]);
    let seen = until(&mut events, &t, "the state once the API answers", |s| s.is_ok()).await;
    let took = started.elapsed();
    let (failures, state) = seen.split_at(seen.len() - 1);
    assert!(!failures.is_empty(), "the failures are reported: {seen:#?}");
    for e in failures {
        assert_eq!(e.target, t);
        assert!(unavailable(&e.state), "{seen:#?}");
    }
    assert_eq!(state[0].state, Ok(c.rollout(&t).await.unwrap()));
    // kube-runtime's default back-off waits 0.8 s (up to 1.6 s with jitter) after each failure. It does not grow
    // here: the `Init` event before each new list is an `Ok` item, which resets the back-off.
    assert!(took >= Duration::from_millis(1600), "it backs off between tries: {took:?}");
    assert_eq!(fake.pending_faults(), 0);
    assert_eq!(lists(&calls_under(&fake, DEPLOYMENTS), DEPLOYMENTS), 3);

    watching(&fake, DEPLOYMENTS, 1).await;
    fake.simulate_rollout(NS, "nextgen-dashboard", &image("1.8.2"));
    until(&mut events, &t, "the next rollout", |s| s.as_ref().is_ok_and(|s| s.rolling_out)).await;
}

#[tokio::test]
async fn a_failing_rewatch_is_retried_from_the_same_version_and_misses_nothing() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);
    let mut events = Events::start(&c, vec![t.clone()]);
    next(&mut events).await.state.unwrap();
    watching(&fake, DEPLOYMENTS, 1).await;

    fake.fail_next(1, watch_matcher(DEPLOYMENTS), 500);
    fake.break_watches();
    let seen = until(&mut events, &t, "the failed re-watch", unavailable).await;
    assert_eq!(seen.len(), 1, "{seen:#?}");
    // Changed during the back-off: the retried watch replays it.
    fake.simulate_rollout(NS, "nextgen-dashboard", &image("1.8.2"));
    let seen = until(&mut events, &t, "the rollout after the retry", |s| {
        s.as_ref().is_ok_and(|s| s.rolling_out && s.revision == Some(2))
    })
    .await;
    assert!(seen.iter().all(|e| e.state.is_ok()), "{seen:#?}");
    let calls = calls_under(&fake, DEPLOYMENTS);
    assert_eq!((lists(&calls, DEPLOYMENTS), watches(&calls, DEPLOYMENTS)), (1, 3), "re-watched, not re-listed");
    let versions: Vec<Option<String>> =
        calls.iter().filter(|r| r.is_watch()).map(|r| r.param("resourceVersion")).collect();
    assert!(versions.iter().all(|v| *v == versions[0]), "the same version each time: {versions:?}");
}

#[tokio::test]
async fn an_argo_rollout_rolls_out_while_its_pod_hash_is_not_stable_and_an_abort_is_a_rollback() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Rollout, "nextgen-dashboard");
    let mut rollout = objects::rollout(NS, "nextgen-dashboard", &image("1.8.1"), 5);
    rollout["metadata"]["annotations"] = json!({"rollout.argoproj.io/revision": "1"});
    rollout["status"]["currentPodHash"] = json!("6b7f9c8d5");
    rollout["status"]["stableRS"] = json!("6b7f9c8d5");
    fake.put_object(rollout.clone());

    let mut events = Events::start(&c, vec![t.clone()]);
    let stable = next(&mut events).await.state.unwrap();
    assert_eq!(
        (stable.rolling_out, stable.template.as_str(), stable.revision, stable.rolled_back_to.as_deref()),
        (false, "6b7f9c8d5", Some(1), None)
    );
    watching(&fake, ROLLOUTS, 1).await;

    // What Argo's controller shows mid-canary: a new pod hash, the stable one unchanged.
    rollout["metadata"]["generation"] = json!(2);
    rollout["metadata"]["annotations"]["rollout.argoproj.io/revision"] = json!("2");
    rollout["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image("1.8.2"));
    rollout["status"]["currentPodHash"] = json!("5c8d7f6b4");
    rollout["status"]["phase"] = json!("Paused");
    fake.put_object(rollout);
    let seen = until(&mut events, &t, "the canary", |s| s.as_ref().is_ok_and(|s| s.rolling_out)).await;
    let canary = last_state(&seen);
    assert_eq!((canary.template.as_str(), canary.revision, canary.rolled_back_to), ("5c8d7f6b4", Some(2), None));

    c.pause(&t, "payments-health over its 3s budget", "2026-11-26T12:00:00Z".parse().unwrap()).await.unwrap();
    c.roll_back(&t, &running(&c, &t).await).await.unwrap();
    let seen = until(&mut events, &t, "the abort", |s| s.as_ref().is_ok_and(|s| s.rolled_back_to.is_some())).await;
    let aborted = last_state(&seen);
    assert_eq!(aborted.rolled_back_to.as_deref(), Some(aborted.template.as_str()), "{aborted:?}");
    assert_eq!(aborted.template, "5c8d7f6b4");
    assert!(aborted.paused);
    assert_eq!(aborted, c.rollout(&t).await.unwrap());
}

#[tokio::test]
async fn after_a_deployment_rollback_the_watched_state_says_it_runs_what_it_was_rolled_back_to() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);
    let mut events = Events::start(&c, vec![t.clone()]);
    let settled = next(&mut events).await.state.unwrap();
    watching(&fake, DEPLOYMENTS, 1).await;

    fake.simulate_rollout(NS, "nextgen-dashboard", &image("1.8.2"));
    let seen = until(&mut events, &t, "the bad rollout", |s| s.as_ref().is_ok_and(|s| s.revision == Some(2))).await;
    let bad = last_state(&seen);
    assert_eq!(bad.rolled_back_to, None);
    c.pause(&t, "payments-health over its 3s budget", "2026-11-26T12:00:00Z".parse().unwrap()).await.unwrap();
    c.roll_back(&t, &running(&c, &t).await).await.unwrap();
    fake.sync_deployment(NS, "nextgen-dashboard");

    let seen = until(&mut events, &t, "revision 3, the old template again", |s| {
        s.as_ref().is_ok_and(|s| s.revision == Some(3))
    })
    .await;
    let restored = last_state(&seen);
    assert_eq!(restored.template, settled.template, "the old pod template runs again");
    assert_eq!(restored.rolled_back_to.as_deref(), Some(restored.template.as_str()), "the fingerprints match");
    assert!(!restored.paused);
    assert_eq!(restored, c.rollout(&t).await.unwrap());
    let d = fake.get_object("apps/v1", "deployments", NS, "nextgen-dashboard").unwrap();
    assert_eq!(d["metadata"]["annotations"]["guardian.blueocean.io/rolled-back-to"], json!(settled.template));

    // A rollout of a different template is told apart from the one rolled back to.
    fake.simulate_rollout(NS, "nextgen-dashboard", &image("1.8.3"));
    let seen = until(&mut events, &t, "revision 4", |s| s.as_ref().is_ok_and(|s| s.revision == Some(4))).await;
    let next_rollout = last_state(&seen);
    assert!(next_rollout.rolling_out);
    assert_eq!(next_rollout.rolled_back_to.as_deref(), Some(settled.template.as_str()));
    assert_ne!(next_rollout.template, settled.template);
}

#[tokio::test]
async fn status_churn_that_leaves_the_rollout_state_as_it_was_is_not_an_event() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &image("1.8.1"), 7);
    let mut events = Events::start(&c, vec![t.clone()]);
    next(&mut events).await.state.unwrap();
    watching(&fake, DEPLOYMENTS, 1).await;
    fake.simulate_rollout(NS, "nextgen-dashboard", &image("1.8.2"));
    let rolling =
        last_state(&until(&mut events, &t, "revision 2", |s| s.as_ref().is_ok_and(|s| s.revision == Some(2))).await);

    // Pods becoming ready one by one: the controller rewrites the status, the rollout state stays the same.
    for ready in [5, 6] {
        let mut d = fake.get_object("apps/v1", "deployments", NS, "nextgen-dashboard").unwrap();
        d["status"]["readyReplicas"] = json!(ready);
        d["status"]["availableReplicas"] = json!(ready);
        fake.put_object(d);
    }
    fake.complete_rollout(NS, "nextgen-dashboard");

    let after = next(&mut events).await;
    let done = after.state.unwrap();
    assert!(!done.rolling_out, "the next event is the completion, not the same state again: {done:?}");
    assert_eq!(done.template, rolling.template);
}

/// The template running now, as a decision would have seen it.
async fn running(c: &KubeCluster, t: &TargetRef) -> String {
    c.rollout(t).await.unwrap().template
}
