//! The kube-rs `Cluster` against the stateful fake API server: what it
//! reads, and the exact calls it makes to pause and roll back Deployments
//! and Argo Rollouts — nothing more.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use futures_util::StreamExt;
use guardian::cluster::{Cluster, Error, KubeCluster, RolledBack, TargetRef};
use guardian::config::TargetKind;
use serde_json::json;
use support::fake_apiserver::objects::template_without_hash;
use support::fake_apiserver::{FakeApiServer, Matcher};

const NS: &str = "blueocean-nextgen-prod";
const IMAGE: &str = "registry.digitalocean.com/blueocean/nextgen-dashboard";

async fn cluster(fake: &FakeApiServer, dir: &tempfile::TempDir) -> KubeCluster {
    let kubeconfig = kube::config::Kubeconfig::read_from(fake.kubeconfig(dir.path())).unwrap();
    let config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &kube::config::KubeConfigOptions::default()).await.unwrap();
    KubeCluster::from_client(kube::Client::try_from(config).unwrap())
}

fn target(kind: TargetKind, name: &str) -> TargetRef {
    TargetRef { kind, namespace: NS.into(), name: name.into() }
}

fn image_of(d: &serde_json::Value) -> &str {
    d["spec"]["template"]["spec"]["containers"][0]["image"].as_str().unwrap()
}

#[tokio::test]
async fn a_bad_rollout_is_seen_paused_and_rolled_back_with_exactly_two_patches() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.1"), 7);
    let settled = c.rollout(&t).await.unwrap();
    assert!(!settled.rolling_out && settled.revision == Some(1));
    fake.simulate_rollout(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.2"));
    let rolling = c.rollout(&t).await.unwrap();
    assert!(rolling.rolling_out && !rolling.paused);
    assert_ne!(rolling.template, settled.template, "a new pod template");
    fake.clear_requests();

    c.pause(&t, "payments-health over its 3s budget", "2026-11-26T12:00:00Z".parse().unwrap()).await.unwrap();
    let back = c.roll_back(&t, &running(&c, &t).await).await.unwrap();
    assert_eq!(back, RolledBack { from_revision: 2, to_revision: 1 });

    let writes = fake.writes();
    assert_eq!(writes.len(), 2, "{writes:?}");
    for w in &writes {
        assert_eq!(
            (w.method.as_str(), w.path.as_str()),
            ("PATCH", "/apis/apps/v1/namespaces/blueocean-nextgen-prod/deployments/nextgen-dashboard")
        );
    }
    let content_types: Vec<_> = writes.iter().map(|w| w.content_type.as_deref()).collect();
    assert_eq!(content_types, [Some("application/merge-patch+json"), Some("application/json-patch+json")]);
    assert_eq!(writes[0].body["spec"], json!({"paused": true}));
    assert_eq!(
        writes[0].body["metadata"]["annotations"]["guardian.blueocean.io/reason"],
        "payments-health over its 3s budget"
    );
    // The rollback: the version it was planned from (after the pause), the old template whole, unpaused, annotated.
    let sets = fake.replica_sets_of(NS, "nextgen-dashboard");
    let old_template = template_without_hash(&sets[0]);
    let ops = writes[1].body.as_array().unwrap();
    let paths: Vec<(&str, &str)> =
        ops.iter().map(|op| (op["op"].as_str().unwrap(), op["path"].as_str().unwrap())).collect();
    assert_eq!(
        paths,
        [
            ("replace", "/metadata/resourceVersion"),
            ("replace", "/spec/template"),
            ("add", "/spec/paused"),
            ("add", "/metadata/annotations/guardian.blueocean.io~1rolled-back-from"),
            ("add", "/metadata/annotations/guardian.blueocean.io~1rolled-back-to"),
        ]
    );
    assert!(ops[0]["value"].is_string());
    assert_eq!(ops[1]["value"], old_template);
    assert_eq!((&ops[2]["value"], &ops[3]["value"]), (&json!(false), &json!("2")));
    let d = fake.get_object("apps/v1", "deployments", NS, "nextgen-dashboard").unwrap();
    assert_eq!(image_of(&d), format!("{IMAGE}:1.8.1"));
    assert_eq!(d["spec"]["paused"], false);
    assert_eq!(d["spec"]["replicas"], 7, "replicas untouched");
    assert!(d["spec"]["template"]["metadata"]["labels"].get("pod-template-hash").is_none());
    assert_eq!(d["metadata"]["annotations"]["guardian.blueocean.io/rolled-back-from"], "2");
    let after = fake.sync_deployment(NS, "nextgen-dashboard");
    let restored = c.rollout(&t).await.unwrap();
    assert_eq!(
        restored.template, settled.template,
        "the old template is running again (revision {:?})",
        after["metadata"]["annotations"]
    );
}

#[tokio::test]
async fn the_rollback_replaces_the_template_whole_so_keys_only_the_new_one_has_are_gone() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    let seeded = fake.seed_deployment(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.1"), 7);
    let old_template = seeded["spec"]["template"].clone();
    let settled = c.rollout(&t).await.unwrap();
    // `kubectl rollout restart` plus a new env var and image: keys the old template does not have.
    let mut d = fake.get_object("apps/v1", "deployments", NS, "nextgen-dashboard").unwrap();
    let template = &mut d["spec"]["template"];
    template["metadata"]["annotations"] = json!({"kubectl.kubernetes.io/restartedAt": "2026-11-26T11:58:00Z"});
    template["spec"]["containers"][0]["image"] = json!(format!("{IMAGE}:1.8.2"));
    template["spec"]["containers"][0]["env"] = json!([{"name": "FEATURE_NEW_CHECKOUT", "value": "true"}]);
    d["metadata"]["generation"] = json!(2);
    fake.put_object(d);
    fake.sync_deployment(NS, "nextgen-dashboard");
    let rolling = c.rollout(&t).await.unwrap();
    assert!(rolling.rolling_out && rolling.revision == Some(2), "{rolling:?}");
    let mut events = c.watch(vec![t.clone()]);
    assert_eq!(events.next().await.unwrap().state, Ok(rolling.clone()));

    assert_eq!(c.roll_back(&t, &running(&c, &t).await).await, Ok(RolledBack { from_revision: 2, to_revision: 1 }));
    let after = fake.sync_deployment(NS, "nextgen-dashboard");
    assert_eq!(after["spec"]["template"], old_template, "exactly the old template, no extra keys");
    assert_eq!(after["spec"]["replicas"], 7, "replicas untouched");
    assert_eq!(after["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "3");
    let restored = c.rollout(&t).await.unwrap();
    assert_eq!(restored.template, settled.template);
    assert_eq!(restored.rolled_back_to.as_deref(), Some(settled.template.as_str()));
    assert!(!restored.paused);
    let seen = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        loop {
            let state = events.next().await.unwrap().state.unwrap();
            if state == restored {
                return state;
            }
        }
    })
    .await
    .expect("the watch shows the rolled-back state");
    assert_eq!(seen.rolled_back_to, Some(settled.template));
}

#[tokio::test]
async fn a_deployment_changed_between_plan_and_patch_is_a_conflict_from_the_server() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.1"), 5);
    fake.simulate_rollout(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.2"));
    // The rollback's PATCH is held while someone else rolls out 1.8.3: its resourceVersion is stale (a real 409).
    fake.delay_next(1, Matcher::method("PATCH"), std::time::Duration::from_millis(300));
    let from = running(&c, &t).await;
    let (result, ()) = tokio::join!(c.roll_back(&t, &from), async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        fake.simulate_rollout(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.3"));
    });
    assert_eq!(result, Err(Error::Conflict(t.clone())));
    let d = fake.get_object("apps/v1", "deployments", NS, "nextgen-dashboard").unwrap();
    assert_eq!(image_of(&d), format!("{IMAGE}:1.8.3"), "the newer change stands");
    assert!(d["metadata"]["annotations"].get("guardian.blueocean.io/rolled-back-from").is_none());
}

#[tokio::test]
async fn a_conflict_on_the_rollback_patch_is_reported_not_overwritten() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.1"), 5);
    fake.simulate_rollout(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.2"));
    fake.fail_next(1, Matcher::method("PATCH"), 409);
    assert_eq!(c.roll_back(&t, &running(&c, &t).await).await, Err(Error::Conflict(t.clone())));
    let d = fake.get_object("apps/v1", "deployments", NS, "nextgen-dashboard").unwrap();
    assert_eq!(image_of(&d), format!("{IMAGE}:1.8.2"), "nothing changed");
    // kube-rs itself retries 429/503/504 a few times; a 500 comes straight back.
    fake.fail_next(1, Matcher::method("GET"), 500);
    let r = c.rollout(&t).await;
    assert!(matches!(r, Err(Error::Unavailable { .. })), "{r:?}");
    let missing = target(TargetKind::Deployment, "nope");
    assert_eq!(c.rollout(&missing).await, Err(Error::NotFound(missing.clone())));
}

#[tokio::test]
async fn a_first_revision_has_nothing_to_roll_back_to() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-admin");
    fake.seed_deployment(NS, "nextgen-admin", &format!("{IMAGE}:1.0.0"), 1);
    fake.clear_requests();
    assert_eq!(
        c.roll_back(&t, &running(&c, &t).await).await,
        Err(Error::NoPreviousRevision { target: t.clone(), current: 1 })
    );
    assert!(fake.writes().is_empty(), "no patch without a plan");
}

#[tokio::test]
async fn an_argo_rollout_is_paused_on_spec_and_aborted_on_status() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Rollout, "nextgen-dashboard");
    fake.put_object(support::fake_apiserver::objects::rollout(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.2"), 5));
    fake.clear_requests();
    c.pause(&t, "breach", "2026-11-26T12:00:00Z".parse().unwrap()).await.unwrap();
    c.roll_back(&t, &running(&c, &t).await).await.unwrap();
    let writes = fake.writes();
    let calls: Vec<(&str, &str)> = writes.iter().map(|w| (w.method.as_str(), w.path.as_str())).collect();
    let base = "/apis/argoproj.io/v1alpha1/namespaces/blueocean-nextgen-prod/rollouts/nextgen-dashboard";
    assert_eq!(calls, [("PATCH", base), ("PATCH", &*format!("{base}/status"))]);
    assert_eq!(writes[1].body, json!({"status": {"abort": true}}));
    let r = fake.get_object("argoproj.io/v1alpha1", "rollouts", NS, "nextgen-dashboard").unwrap();
    assert_eq!((r["spec"]["paused"].as_bool(), r["status"]["abort"].as_bool()), (Some(true), Some(true)));
}

/// The template running now, as a decision would have seen it.
async fn running(c: &KubeCluster, t: &TargetRef) -> String {
    c.rollout(t).await.unwrap().template
}

#[tokio::test]
async fn a_rollback_decided_on_a_template_that_no_longer_runs_is_refused_without_a_write() {
    let fake = FakeApiServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let c = cluster(&fake, &dir).await;
    let t = target(TargetKind::Deployment, "nextgen-dashboard");
    fake.seed_deployment(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.1"), 7);
    fake.simulate_rollout(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.2"));
    let decided_on = running(&c, &t).await;
    // Meanwhile a person ran `kubectl rollout undo`: 1.8.1 runs again, as revision 3.
    fake.simulate_rollout(NS, "nextgen-dashboard", &format!("{IMAGE}:1.8.1"));
    fake.clear_requests();
    assert_eq!(c.roll_back(&t, &decided_on).await, Err(Error::Conflict(t.clone())));
    assert!(fake.writes().is_empty(), "rolling back now would bring the bad release back: {:?}", fake.writes());
    let d = fake.get_object("apps/v1", "deployments", NS, "nextgen-dashboard").unwrap();
    assert_eq!(image_of(&d), format!("{IMAGE}:1.8.1"));
}
