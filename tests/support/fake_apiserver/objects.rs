//! Realistic objects to seed the fake with: what `kubectl get -o json` shows for a settled workload.

use serde_json::{Value, json};

/// The revision annotation the deployment controller writes on Deployments and their ReplicaSets.
pub const REVISION: &str = "deployment.kubernetes.io/revision";
/// The label that ties a ReplicaSet and its pods to one pod template.
pub const POD_TEMPLATE_HASH: &str = "pod-template-hash";

/// A Deployment of one container (`name`, with `image`) at generation 1 and revision 1, fully rolled out.
pub fn deployment(ns: &str, name: &str, image: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": name,
            "namespace": ns,
            "generation": 1,
            "labels": {"app": name},
            "annotations": {REVISION: "1"},
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
            "revisionHistoryLimit": 10,
            "progressDeadlineSeconds": 600,
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
        "status": settled_status(1, replicas),
    })
}

/// The status of a Deployment whose rollout is complete.
pub fn settled_status(observed_generation: i64, replicas: i64) -> Value {
    json!({
        "observedGeneration": observed_generation,
        "replicas": replicas,
        "updatedReplicas": replicas,
        "readyReplicas": replicas,
        "availableReplicas": replicas,
    })
}

/// The ReplicaSet the deployment controller makes for `deployment`'s current template at `revision`, owned by it
/// (the Deployment must carry its `uid`, so pass the stored object).
pub fn replica_set(deployment: &Value, revision: u64, replicas: i64) -> Value {
    let meta = &deployment["metadata"];
    let name = meta["name"].as_str().unwrap_or("");
    let mut template = deployment["spec"]["template"].clone();
    let hash = template_hash(&template);
    template["metadata"]["labels"][POD_TEMPLATE_HASH] = json!(hash);
    let mut selector = deployment["spec"]["selector"].clone();
    selector["matchLabels"][POD_TEMPLATE_HASH] = json!(hash);
    json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {
            "name": format!("{name}-{hash}"),
            "namespace": meta["namespace"],
            "generation": 1,
            "labels": template["metadata"]["labels"],
            "annotations": {
                REVISION: revision.to_string(),
                "deployment.kubernetes.io/desired-replicas": deployment["spec"]["replicas"].to_string(),
                "deployment.kubernetes.io/max-replicas": deployment["spec"]["replicas"].to_string(),
            },
            "ownerReferences": [{
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": name,
                "uid": meta["uid"],
                "controller": true,
                "blockOwnerDeletion": true,
            }],
        },
        "spec": {"replicas": replicas, "selector": selector, "template": template},
        "status": replica_set_status(replicas, replicas),
    })
}

pub fn replica_set_status(replicas: i64, available: i64) -> Value {
    json!({
        "observedGeneration": 1,
        "replicas": replicas,
        "fullyLabeledReplicas": replicas,
        "readyReplicas": available,
        "availableReplicas": available,
    })
}

/// An Argo Rollout (canary) of one container, healthy at generation 1.
pub fn rollout(ns: &str, name: &str, image: &str, replicas: i64) -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Rollout",
        "metadata": {"name": name, "namespace": ns, "generation": 1, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "strategy": {"canary": {"steps": [{"setWeight": 20}, {"pause": {}}, {"setWeight": 100}]}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": name, "image": image}]},
            },
        },
        "status": {
            "observedGeneration": "1",
            "phase": "Healthy",
            "replicas": replicas,
            "updatedReplicas": replicas,
            "readyReplicas": replicas,
            "availableReplicas": replicas,
        },
    })
}

/// A Lease held by `holder`.
pub fn lease(ns: &str, name: &str, holder: &str, duration_seconds: i64) -> Value {
    let now = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
    json!({
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "holderIdentity": holder,
            "leaseDurationSeconds": duration_seconds,
            "acquireTime": now,
            "renewTime": now,
            "leaseTransitions": 0,
        },
    })
}

/// A stable hash of a pod template, encoded like the controller's (FNV-1a, safe alphabet).
pub fn template_hash(template: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u32 = 0x811c_9dc5;
    for byte in template.to_string().bytes() {
        hash = (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193);
    }
    hash.to_string().bytes().map(|b| char::from(ALPHABET[usize::from(b) % ALPHABET.len()])).collect()
}

/// The template a ReplicaSet was made from: its own, without the `pod-template-hash` label.
pub fn template_without_hash(replica_set: &Value) -> Value {
    let mut template = replica_set["spec"]["template"].clone();
    if let Some(labels) = template["metadata"]["labels"].as_object_mut() {
        labels.remove(POD_TEMPLATE_HASH);
    }
    template
}

/// The revision annotation of a Deployment or ReplicaSet, 0 when absent.
pub fn revision_of(object: &Value) -> u64 {
    object["metadata"]["annotations"][REVISION].as_str().and_then(|r| r.parse().ok()).unwrap_or(0)
}
