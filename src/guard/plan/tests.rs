use serde_json::json;

use super::*;

fn deployment(revision: Option<u64>) -> Value {
    let mut annotations = serde_json::Map::new();
    if let Some(r) = revision {
        annotations.insert(REVISION.into(), json!(r.to_string()));
    }
    json!({
        "metadata": {"name": "nextgen-dashboard", "namespace": "blueocean-nextgen-prod", "uid": "dep-uid",
            "resourceVersion": "4711", "annotations": annotations},
        "spec": {"replicas": 7, "paused": true, "template": {"metadata": {"labels": {"app": "nextgen-dashboard"}},
            "spec": {"containers": [{"name": "app", "image": "registry.digitalocean.com/blueocean/nextgen-dashboard:1.8.2"}]}}}
    })
}

fn rs(name: &str, owner: &str, revision: u64, image: &str) -> Value {
    json!({
        "metadata": {"name": name, "annotations": {REVISION: revision.to_string()},
            "ownerReferences": [{"kind": "Deployment", "name": "nextgen-dashboard", "uid": owner, "controller": true}]},
        "spec": {"replicas": 0, "template": {
            "metadata": {"labels": {"app": "nextgen-dashboard", HASH_LABEL: format!("h{revision}")}},
            "spec": {"containers": [{"name": "app", "image": format!("registry.digitalocean.com/blueocean/nextgen-dashboard:{image}")}]}}}
    })
}

fn views(objects: &[Value]) -> Vec<ReplicaSetView> {
    objects.iter().map(ReplicaSetView::from_object).collect()
}

#[test]
fn the_previous_revision_s_template_comes_back_without_its_hash_and_unpaused() {
    let sets = views(&[
        rs("dash-a", "dep-uid", 3, "1.8.0"),
        rs("dash-b", "dep-uid", 4, "1.8.1"),
        rs("dash-c", "dep-uid", 5, "1.8.2"),
        rs("other", "other-uid", 4, "9.9.9"),
    ]);
    let plan = plan_rollback(&deployment(Some(5)), &sets).unwrap();
    assert_eq!((plan.from_revision, plan.to_revision, plan.to_replica_set.as_str()), (5, 4, "dash-b"));
    let template = json!({
        "metadata": {"labels": {"app": "nextgen-dashboard"}},
        "spec": {"containers": [{"name": "app", "image": "registry.digitalocean.com/blueocean/nextgen-dashboard:1.8.1"}]}});
    assert_eq!(plan.template, template);
    assert_eq!(plan.resource_version.as_deref(), Some("4711"));
    assert_eq!(
        plan.json_patch(),
        json!([
            {"op": "replace", "path": "/metadata/resourceVersion", "value": "4711"},
            {"op": "replace", "path": "/spec/template", "value": template},
            {"op": "add", "path": "/spec/paused", "value": false},
            {"op": "add", "path": "/metadata/annotations/guardian.blueocean.io~1rolled-back-from", "value": "5"},
        ])
    );
    let ops = plan.json_patch();
    let paths: Vec<&str> = ops.as_array().unwrap().iter().filter_map(|op| op["path"].as_str()).collect();
    assert!(!paths.iter().any(|p| p.contains("replicas")), "replicas are the HPA's: {paths:?}");
}

#[test]
fn annotations_are_escaped_or_added_as_a_map_when_there_is_none() {
    let sets = views(&[rs("dash-b", "dep-uid", 4, "1.8.1")]);
    let mut plan = plan_rollback(&deployment(Some(5)), &sets).unwrap();
    plan.annotations.insert("example.com/a~b".into(), "x".into());
    let ops = plan.json_patch();
    let paths: Vec<&str> = ops.as_array().unwrap().iter().filter_map(|op| op["path"].as_str()).collect();
    assert!(paths.contains(&"/metadata/annotations/example.com~1a~0b"), "{paths:?}");
    plan.has_annotations = false;
    let ops = plan.json_patch();
    assert_eq!(
        ops.as_array().unwrap().last().unwrap(),
        &json!({"op": "add", "path": "/metadata/annotations",
            "value": {ROLLED_BACK_FROM: "5", "example.com/a~b": "x"}})
    );
}

#[test]
fn revisions_compare_as_numbers_and_skip_gaps() {
    let sets = views(&[rs("r9", "dep-uid", 9, "a"), rs("r10", "dep-uid", 10, "b"), rs("r12", "dep-uid", 12, "c")]);
    assert_eq!(plan_rollback(&deployment(Some(12)), &sets).unwrap().to_revision, 10);
}

#[test]
fn without_a_previous_revision_there_is_no_plan() {
    let sets = views(&[rs("dash-a", "dep-uid", 1, "1.0.0"), rs("other", "other-uid", 0, "x")]);
    assert_eq!(plan_rollback(&deployment(Some(1)), &sets), Err(PlanError::NoPreviousRevision { current: 1 }));
    assert_eq!(plan_rollback(&deployment(None), &sets), Err(PlanError::NoCurrentRevision));
    let msg = PlanError::NoPreviousRevision { current: 1 }.to_string();
    assert!(msg.contains("nothing to roll back to"), "{msg}");
}

#[test]
fn replica_sets_of_another_deployment_are_never_used() {
    let sets = views(&[rs("foreign", "someone-else", 4, "evil")]);
    assert_eq!(plan_rollback(&deployment(Some(5)), &sets), Err(PlanError::NoPreviousRevision { current: 5 }));
}
