#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Checks that the fake Kubernetes API server keeps the real API server's semantics, over HTTP.

mod support;

use std::time::Duration;

use reqwest::{Client, Method};
use serde_json::{Value, json};
use support::eventually::eventually;
use support::fake_apiserver::client::Kube;
use support::fake_apiserver::{FakeApiServer, Matcher, objects};

const DEPLOYMENTS: &str = "/apis/apps/v1/namespaces/shop/deployments";
const WEB: &str = "/apis/apps/v1/namespaces/shop/deployments/web";
const LEASES: &str = "/apis/coordination.k8s.io/v1/namespaces/shop/leases";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

fn str(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

fn rv(object: &Value) -> String {
    str(&object["metadata"]["resourceVersion"])
}

async fn started() -> (FakeApiServer, Kube) {
    let server = FakeApiServer::start().await;
    let kube = Kube::new(&server);
    (server, kube)
}

#[tokio::test]
async fn a_put_with_a_stale_resource_version_is_a_409_conflict_and_changes_nothing() {
    let (server, kube) = started().await;
    let seeded = server.seed_deployment("shop", "web", "web:1", 3);
    let (code, _) = kube.patch(WEB, MERGE, json!({"spec": {"replicas": 4}})).await;
    assert_eq!(code, 200);

    let mut stale = seeded.clone();
    stale["spec"]["replicas"] = json!(9);
    let (code, status) = kube.put(WEB, stale).await;

    assert_eq!(code, 409);
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "Conflict");
    assert_eq!(status["code"], 409);
    assert_eq!(status["details"], json!({"name": "web", "group": "apps", "kind": "deployments"}));
    assert_eq!(server.get_object("apps/v1", "deployments", "shop", "web").unwrap()["spec"]["replicas"], 4);
}

#[tokio::test]
async fn a_put_with_the_current_version_replaces_and_moves_the_version_on() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);
    let (_, mut current) = kube.get(WEB).await;
    current["spec"]["replicas"] = json!(5);

    let (code, replaced) = kube.put(WEB, current.clone()).await;

    assert_eq!(code, 200);
    assert_eq!(replaced["spec"]["replicas"], 5);
    assert!(rv(&replaced).parse::<u64>().unwrap() > rv(&current).parse::<u64>().unwrap());
    assert_eq!(replaced["metadata"]["uid"], current["metadata"]["uid"]);
}

#[tokio::test]
async fn create_sets_system_fields_and_a_second_create_is_409_already_exists() {
    let (_server, kube) = started().await;
    let mut body = objects::deployment("shop", "api", "api:1", 2);
    body["metadata"]["generation"] = json!(7);

    let (code, created) = kube.post(DEPLOYMENTS, body.clone()).await;
    assert_eq!(code, 201);
    assert_eq!(created["metadata"]["generation"], 1);
    assert!(created["metadata"]["uid"].is_string() && created["metadata"]["creationTimestamp"].is_string());
    assert!(created.get("status").is_none(), "status is dropped on create behind a status subresource");

    let (code, status) = kube.post(DEPLOYMENTS, body).await;
    assert_eq!((code, str(&status["reason"])), (409, "AlreadyExists".to_owned()));
    let (code, status) = kube.get("/apis/apps/v1/namespaces/shop/deployments/nope").await;
    assert_eq!((code, str(&status["reason"])), (404, "NotFound".to_owned()));
    assert_eq!(status["message"], "deployments.apps \"nope\" not found");
}

#[tokio::test]
async fn merge_patch_merges_maps_replaces_lists_and_removes_nulls() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);

    let patch = json!({
        "metadata": {"annotations": {"guardian.blueocean.io/reason": "breach", objects::REVISION: null}},
        "spec": {"paused": true, "template": {"spec": {"containers": [{"name": "web", "image": "web:0"}]}}},
    });
    let (code, patched) = kube.patch(WEB, MERGE, patch).await;

    assert_eq!(code, 200);
    assert_eq!(patched["metadata"]["annotations"], json!({"guardian.blueocean.io/reason": "breach"}));
    assert_eq!(patched["spec"]["paused"], true);
    assert_eq!(patched["spec"]["replicas"], 3);
    assert_eq!(patched["spec"]["template"]["spec"]["containers"], json!([{"name": "web", "image": "web:0"}]));
    assert_eq!(patched["spec"]["template"]["metadata"]["labels"]["app"], "web");
}

#[tokio::test]
async fn json_patch_applies_every_operation_in_order() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);

    let patch = json!([
        {"op": "test", "path": "/spec/replicas", "value": 3},
        {"op": "add", "path": "/metadata/annotations/a~1b", "value": "x"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/image", "value": "web:2"},
        {"op": "copy", "from": "/spec/template/spec/containers/0", "path": "/spec/template/spec/containers/-"},
        {"op": "move", "from": "/metadata/annotations/a~1b", "path": "/metadata/labels/moved"},
        {"op": "remove", "path": "/spec/strategy"},
    ]);
    let (code, patched) = kube.patch(WEB, JSON_PATCH, patch).await;

    assert_eq!(code, 200, "{patched}");
    assert_eq!(patched["metadata"]["labels"]["moved"], "x");
    assert!(patched["metadata"]["annotations"].get("a/b").is_none());
    let containers = &patched["spec"]["template"]["spec"]["containers"];
    assert_eq!(*containers, json!([{"name": "web", "image": "web:2"}, {"name": "web", "image": "web:2"}]));
    assert!(patched["spec"].get("strategy").is_none());
}

#[tokio::test]
async fn a_failed_json_patch_test_is_422_invalid_and_changes_nothing() {
    let (server, kube) = started().await;
    let seeded = server.seed_deployment("shop", "web", "web:1", 3);

    let patch = json!([
        {"op": "replace", "path": "/spec/replicas", "value": 1},
        {"op": "test", "path": "/spec/replicas", "value": 3},
    ]);
    let (code, status) = kube.patch(WEB, JSON_PATCH, patch).await;
    assert_eq!((code, str(&status["reason"])), (422, "Invalid".to_owned()));

    let (code, status) = kube.patch(WEB, JSON_PATCH, json!({"op": "add"})).await;
    assert_eq!((code, str(&status["reason"])), (400, "BadRequest".to_owned()));
    let (code, status) = kube.patch(WEB, "application/apply-patch+yaml", json!({})).await;
    assert_eq!((code, str(&status["reason"])), (415, "UnsupportedMediaType".to_owned()));
    assert_eq!(server.get_object("apps/v1", "deployments", "shop", "web").unwrap(), seeded);
}

#[tokio::test]
async fn status_changes_only_through_the_status_subresource() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);

    let (_, main) = kube.patch(WEB, MERGE, json!({"spec": {"replicas": 4}, "status": {"replicas": 99}})).await;
    assert_eq!((main["spec"]["replicas"].clone(), main["status"]["replicas"].clone()), (json!(4), json!(3)));

    let status_patch = json!({"spec": {"replicas": 1}, "status": {"updatedReplicas": 2}});
    let (code, after) = kube.patch(&format!("{WEB}/status"), MERGE, status_patch).await;
    assert_eq!(code, 200);
    assert_eq!((after["spec"]["replicas"].clone(), after["status"]["updatedReplicas"].clone()), (json!(4), json!(2)));
    assert_eq!(after["metadata"]["generation"], main["metadata"]["generation"]);

    let rollouts = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/checkout";
    server.put_object(objects::rollout("shop", "checkout", "checkout:1", 2));
    let (code, aborted) = kube.patch(&format!("{rollouts}/status"), MERGE, json!({"status": {"abort": true}})).await;
    assert_eq!(
        (code, aborted["status"]["abort"].clone(), aborted["metadata"]["generation"].clone()),
        (200, json!(true), json!(1))
    );
    let (code, _) = kube.get(&format!("{LEASES}/any/status")).await;
    assert_eq!(code, 404, "leases have no status subresource");
}

#[tokio::test]
async fn generation_moves_on_spec_changes_and_on_deployment_annotations_only() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);
    let generation = |v: &Value| v["metadata"]["generation"].as_i64().unwrap();

    let (_, d) = kube.patch(WEB, MERGE, json!({"metadata": {"labels": {"team": "a"}}})).await;
    assert_eq!(generation(&d), 1, "labels are metadata only");
    let (_, d) = kube.patch(&format!("{WEB}/status"), MERGE, json!({"status": {"replicas": 4}})).await;
    assert_eq!(generation(&d), 1, "status never moves the generation");
    let (_, d) = kube.patch(WEB, MERGE, json!({"spec": {"paused": true}})).await;
    assert_eq!(generation(&d), 2);
    let (_, d) = kube.patch(WEB, MERGE, json!({"metadata": {"annotations": {"x": "y"}}})).await;
    assert_eq!(generation(&d), 3, "the Deployment strategy bumps on annotation changes");
    let (_, same) = kube.patch(WEB, MERGE, json!({"spec": {"paused": true}})).await;
    assert_eq!((generation(&same), rv(&same)), (3, rv(&d)), "a no-op patch writes nothing");

    let rollouts = "/apis/argoproj.io/v1alpha1/namespaces/shop/rollouts/checkout";
    server.put_object(objects::rollout("shop", "checkout", "checkout:1", 2));
    let (_, r) = kube.patch(rollouts, MERGE, json!({"metadata": {"annotations": {"x": "y"}}})).await;
    assert_eq!(generation(&r), 1, "custom resources bump on spec only");
    let (_, r) = kube.patch(rollouts, MERGE, json!({"spec": {"paused": true}})).await;
    assert_eq!(generation(&r), 2);
}

#[tokio::test]
async fn label_selectors_filter_lists_with_equality_and_set_requirements() {
    let (server, kube) = started().await;
    for (name, labels) in [
        ("a", json!({"app": "web", "tier": "front"})),
        ("b", json!({"app": "api", "tier": "back"})),
        ("c", json!({"app": "db"})),
    ] {
        let mut d = objects::deployment("shop", name, "x:1", 1);
        d["metadata"]["labels"] = labels;
        server.put_object(d);
    }
    server.put_object(objects::deployment("other", "d", "x:1", 1));

    for (selector, expected) in [
        ("app=web", vec!["a"]),
        ("app==web", vec!["a"]),
        ("app!=web", vec!["b", "c"]),
        ("app in (web, api)", vec!["a", "b"]),
        ("app notin (web)", vec!["b", "c"]),
        ("tier", vec!["a", "b"]),
        ("!tier", vec!["c"]),
        ("tier,app!=api", vec!["a"]),
        ("", vec!["a", "b", "c"]),
    ] {
        let query: String = url::form_urlencoded::byte_serialize(selector.as_bytes()).collect();
        let (code, list) = kube.get(&format!("{DEPLOYMENTS}?labelSelector={query}")).await;
        assert_eq!(code, 200);
        assert_eq!(list["kind"], "DeploymentList");
        assert_eq!(list["apiVersion"], "apps/v1");
        assert_eq!(list["metadata"]["resourceVersion"], server.resource_version().to_string());
        let names: Vec<String> =
            list["items"].as_array().unwrap().iter().map(|i| str(&i["metadata"]["name"])).collect();
        assert_eq!(names, expected, "selector {selector:?}");
    }
    let (_, all) = kube.get("/apis/apps/v1/deployments?fieldSelector=metadata.name%3Dd").await;
    assert_eq!(all["items"][0]["metadata"]["namespace"], "other");
}

#[tokio::test]
async fn a_watch_from_the_list_version_sees_later_changes_in_order() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);
    let (_, list) = kube.get(DEPLOYMENTS).await;
    let from = rv(&list);
    let (_, paused) = kube.patch(WEB, MERGE, json!({"spec": {"paused": true}})).await;
    let (_, created) = kube.post(DEPLOYMENTS, objects::deployment("shop", "api", "api:1", 1)).await;

    let mut events =
        kube.watch(&format!("{DEPLOYMENTS}?watch=true&resourceVersion={from}&allowWatchBookmarks=true")).await;
    assert_eq!(events.next_summary().await, ("MODIFIED".into(), "web".into(), rv(&paused)));
    assert_eq!(events.next_summary().await, ("ADDED".into(), "api".into(), rv(&created)));

    let (_, resumed) = kube.patch(WEB, MERGE, json!({"spec": {"paused": false}})).await;
    assert_eq!(events.next_summary().await, ("MODIFIED".into(), "web".into(), rv(&resumed)));
    let (code, _) = kube.send(Method::DELETE, &format!("{DEPLOYMENTS}/api"), "", None).await;
    assert_eq!(code, 200);
    let (kind, name, deleted_rv) = events.next_summary().await;
    assert_eq!((kind.as_str(), name.as_str()), ("DELETED", "api"));
    assert!(deleted_rv.parse::<u64>().unwrap() > rv(&resumed).parse::<u64>().unwrap());
    server.send_bookmarks();
    let bookmark = events.next().await.unwrap();
    assert_eq!(
        (bookmark["type"].clone(), bookmark["object"]["metadata"]["resourceVersion"].clone()),
        (json!("BOOKMARK"), json!(deleted_rv))
    );
}

#[tokio::test]
async fn a_watch_without_a_version_starts_with_the_current_objects_and_respects_its_selector() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);
    server.seed_deployment("shop", "api", "api:1", 3);

    let mut events = kube.watch(&format!("{DEPLOYMENTS}?watch=1&labelSelector=app%3Dweb")).await;
    assert_eq!(events.next_summary().await.0, "ADDED");
    kube.patch(&format!("{DEPLOYMENTS}/api"), MERGE, json!({"spec": {"replicas": 1}})).await;
    kube.patch(WEB, MERGE, json!({"metadata": {"labels": {"app": "gone"}}})).await;
    assert_eq!(events.next_summary().await.0, "DELETED", "leaving the selector is a DELETED for this watch");
}

#[tokio::test]
async fn a_watch_from_a_compacted_version_gets_a_410_expired_error_event() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);
    let (_, list) = kube.get(DEPLOYMENTS).await;
    kube.patch(WEB, MERGE, json!({"spec": {"replicas": 2}})).await;
    server.compact();

    let mut events = kube.watch(&format!("{DEPLOYMENTS}?watch=true&resourceVersion={}", rv(&list))).await;
    let error = events.next().await.unwrap();

    assert_eq!(error["type"], "ERROR");
    assert_eq!((error["object"]["code"].clone(), error["object"]["reason"].clone()), (json!(410), json!("Expired")));
    assert!(events.next().await.is_none(), "the stream ends after the error");
}

#[tokio::test]
async fn watches_end_on_timeout_seconds_and_on_break_watches() {
    let (server, kube) = started().await;
    let mut short = kube.watch(&format!("{DEPLOYMENTS}?watch=true&timeoutSeconds=1")).await;
    assert!(short.next().await.is_none());

    let mut long = kube.watch(&format!("{DEPLOYMENTS}?watch=true")).await;
    eventually(Duration::from_secs(2), "the watch is open", || async { server.open_watches() == 1 }).await;
    server.break_watches();
    assert!(long.next().await.is_none());
    eventually(Duration::from_secs(2), "the watch is closed", || async { server.open_watches() == 0 }).await;
}

#[tokio::test]
async fn a_lease_is_taken_once_and_a_stale_renewal_conflicts() {
    let (server, kube) = started().await;
    let lease = objects::lease("shop", "guardian-leader", "guardian-a", 15);
    let (code, created) = kube.post(LEASES, lease.clone()).await;
    assert_eq!(code, 201);
    assert!(created["metadata"].get("generation").is_none());
    let (code, status) = kube.post(LEASES, objects::lease("shop", "guardian-leader", "guardian-b", 15)).await;
    assert_eq!((code, str(&status["reason"])), (409, "AlreadyExists".to_owned()));

    let path = format!("{LEASES}/guardian-leader");
    let mut renewal = created.clone();
    renewal["spec"]["renewTime"] = json!("2030-01-01T00:00:00.000000Z");
    let (code, renewed) = kube.put(&path, renewal).await;
    assert_eq!(code, 200);

    let mut takeover = created.clone();
    takeover["spec"]["holderIdentity"] = json!("guardian-b");
    let (code, status) = kube.put(&path, takeover).await;
    assert_eq!((code, str(&status["reason"])), (409, "Conflict".to_owned()));
    assert_eq!(server.get_object("coordination.k8s.io/v1", "leases", "shop", "guardian-leader").unwrap(), renewed);
}

#[tokio::test]
async fn injected_faults_answer_the_matching_requests_then_run_out() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);
    server.fail_next(1, Matcher::method("PATCH").path(WEB), 409);
    server.fail_next(2, Matcher::method("patch").path_prefix("/apis/apps/"), 500);

    let mut answers = Vec::new();
    for _ in 0..4 {
        let (code, body) = kube.patch(WEB, MERGE, json!({"spec": {"paused": true}})).await;
        answers.push((code, str(&body["reason"])));
    }
    let (code, _) = kube.get(WEB).await;

    assert_eq!(
        answers,
        [(409, "Conflict".into()), (500, "InternalError".into()), (500, "InternalError".into()), (200, String::new())],
        "the first armed fault that matches answers, and only its shot is used"
    );
    assert_eq!((code, server.pending_faults()), (200, 0));

    server.delay_next(1, Matcher::method("GET").path(WEB), Duration::from_secs(3));
    let impatient = Client::builder().no_proxy().timeout(Duration::from_millis(200)).build().unwrap();
    let timed_out = impatient.get(format!("{}{WEB}", server.url())).send().await;
    assert!(timed_out.unwrap_err().is_timeout());
}

#[tokio::test]
async fn the_request_log_holds_every_call_in_order_with_its_body() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);
    kube.get(&format!("{DEPLOYMENTS}?labelSelector=app%3Dweb")).await;
    kube.patch(WEB, MERGE, json!({"spec": {"paused": true}})).await;

    let log = server.requests();
    let calls: Vec<(&str, &str)> = log.iter().map(|r| (r.method.as_str(), r.path.as_str())).collect();
    assert_eq!(calls, [("GET", DEPLOYMENTS), ("PATCH", WEB)]);
    assert_eq!(log[0].param("labelSelector").as_deref(), Some("app=web"));
    assert_eq!((log[1].content_type.as_deref(), log[1].body.clone()), (Some(MERGE), json!({"spec": {"paused": true}})));
    assert_eq!(server.writes().len(), 1);

    server.clear_requests();
    assert!(server.requests().is_empty());
}

#[tokio::test]
async fn simulate_rollout_leaves_a_new_revision_mid_rollout_and_complete_rollout_settles_it() {
    let (server, _kube) = started().await;
    let seeded = server.seed_deployment("shop", "web", "web:1", 3);

    let rolling = server.simulate_rollout("shop", "web", "web:2");
    assert_eq!(rolling["metadata"]["generation"], 2);
    assert_eq!(rolling["metadata"]["annotations"][objects::REVISION], "2");
    assert_eq!(rolling["status"]["observedGeneration"], 2);
    assert!(rolling["status"]["updatedReplicas"].as_i64() < rolling["spec"]["replicas"].as_i64());
    let sets = server.replica_sets_of("shop", "web");
    let revisions: Vec<u64> = sets.iter().map(objects::revision_of).collect();
    assert_eq!(revisions, [1, 2]);
    assert!(sets.iter().all(|rs| rs["metadata"]["ownerReferences"][0]["uid"] == seeded["metadata"]["uid"]));
    let new_template = &sets[1]["spec"]["template"];
    assert_eq!(new_template["spec"]["containers"][0]["image"], "web:2");
    assert!(new_template["metadata"]["labels"][objects::POD_TEMPLATE_HASH].is_string());

    let done = server.complete_rollout("shop", "web");
    assert_eq!(done["status"], objects::settled_status(2, 3));
    let replicas: Vec<Value> =
        server.replica_sets_of("shop", "web").iter().map(|rs| rs["spec"]["replicas"].clone()).collect();
    assert_eq!(replicas, [json!(0), json!(3)]);
    assert!(server.requests().is_empty(), "controller writes are not client calls");
}

#[tokio::test]
async fn rolling_back_to_an_old_template_moves_its_replica_set_to_the_next_revision() {
    let (server, kube) = started().await;
    server.seed_deployment("shop", "web", "web:1", 3);
    server.simulate_rollout("shop", "web", "web:2");
    let old = objects::template_without_hash(&server.replica_sets_of("shop", "web")[0]);

    kube.patch(WEB, MERGE, json!({"spec": {"template": old}})).await;
    let rolled_back = server.sync_deployment("shop", "web");

    assert_eq!(rolled_back["metadata"]["annotations"][objects::REVISION], "3");
    let sets = server.replica_sets_of("shop", "web");
    assert_eq!(sets.len(), 2, "no new ReplicaSet for a known template");
    assert_eq!(sets[1]["spec"]["template"]["spec"]["containers"][0]["image"], "web:1");
}

#[tokio::test]
async fn the_kubeconfig_points_at_the_server_and_discovery_lists_the_resources() {
    let (server, kube) = started().await;
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(server.kubeconfig(dir.path())).unwrap();
    assert!(text.contains(&format!("server: {}", server.url())));

    let (_, apps) = kube.get("/apis/apps/v1").await;
    let names: Vec<String> = apps["resources"].as_array().unwrap().iter().map(|r| str(&r["name"])).collect();
    assert_eq!(names, ["deployments", "deployments/status", "replicasets", "replicasets/status"]);
    let (_, groups) = kube.get("/apis").await;
    assert_eq!(groups["groups"].as_array().unwrap().len(), 3);
}
