//! The rollback of a Deployment, as `kubectl rollout undo` does it: take the
//! ReplicaSet owned by the Deployment with the highest
//! `deployment.kubernetes.io/revision` below the current one, copy its pod
//! template without the `pod-template-hash` label into `spec.template`, set
//! `spec.paused` to false, and annotate where it came from. Replicas are
//! never touched: the HPA owns them. Pure: it returns the plan, and the
//! RFC 6902 JSON Patch to send, which replaces `spec.template` whole (a merge
//! patch would keep keys only the newer template has, such as the
//! `kubectl.kubernetes.io/restartedAt` annotation of `kubectl rollout
//! restart` or an added env var) and carries the `resourceVersion` the plan
//! was made from, so a Deployment changed since is a 409, not an overwrite.

use std::collections::BTreeMap;

use serde_json::{Value, json};

const REVISION: &str = "deployment.kubernetes.io/revision";
const HASH_LABEL: &str = "pod-template-hash";
pub const ROLLED_BACK_FROM: &str = "guardian.blueocean.io/rolled-back-from";

/// What the plan needs of one ReplicaSet.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaSetView {
    pub name: String,
    pub owner_uid: Option<String>,
    pub revision: Option<u64>,
    pub template: Value,
}

impl ReplicaSetView {
    pub fn from_object(rs: &Value) -> Self {
        let owner_uid = rs
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|refs| refs.iter().find(|r| r["controller"] == true || r["kind"] == "Deployment"))
            .and_then(|r| r["uid"].as_str())
            .map(String::from);
        Self {
            name: rs.pointer("/metadata/name").and_then(Value::as_str).unwrap_or_default().to_string(),
            owner_uid,
            revision: revision_of(rs),
            template: rs.pointer("/spec/template").cloned().unwrap_or(Value::Null),
        }
    }
}

/// A rollback to send: the revisions it moves between, the template it puts
/// back and the annotations it adds; [`RollbackPlan::json_patch`] is the body.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPlan {
    pub from_revision: u64,
    pub to_revision: u64,
    pub to_replica_set: String,
    /// The `resourceVersion` of the Deployment the plan was made from.
    pub resource_version: Option<String>,
    /// The pod template to put back, whole, without `pod-template-hash`.
    pub template: Value,
    /// Annotations to add to the Deployment (`rolled-back-from`; the caller
    /// may add more, such as `rolled-back-to`).
    pub annotations: BTreeMap<String, String>,
    /// Whether the Deployment has a `metadata.annotations` map to add into.
    pub has_annotations: bool,
}

impl RollbackPlan {
    /// The RFC 6902 JSON Patch (`application/json-patch+json`) for the
    /// Deployment: `resourceVersion` as planned (a 409 if it changed since),
    /// `spec.template` replaced whole, `spec.paused` false and the
    /// annotations. Nothing else, replicas least of all.
    pub fn json_patch(&self) -> Value {
        let mut ops = Vec::new();
        if let Some(rv) = &self.resource_version {
            ops.push(json!({"op": "replace", "path": "/metadata/resourceVersion", "value": rv}));
        }
        ops.push(json!({"op": "replace", "path": "/spec/template", "value": self.template}));
        ops.push(json!({"op": "add", "path": "/spec/paused", "value": false}));
        if self.has_annotations {
            for (key, value) in &self.annotations {
                let path = format!("/metadata/annotations/{}", escape(key));
                ops.push(json!({"op": "add", "path": path, "value": value}));
            }
        } else if !self.annotations.is_empty() {
            ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": self.annotations}));
        }
        Value::Array(ops)
    }
}

/// One JSON Pointer token (RFC 6901): `~` is `~0`, `/` is `~1`.
fn escape(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error("the Deployment has no {REVISION} annotation yet: nothing to roll back from")]
    NoCurrentRevision,
    #[error("no ReplicaSet owned by the Deployment has a revision below {current}: nothing to roll back to")]
    NoPreviousRevision { current: u64 },
    #[error("ReplicaSet {0} has no pod template")]
    NoTemplate(String),
}

/// Plans the rollback of `deployment` given the ReplicaSets in its namespace.
pub fn plan_rollback(deployment: &Value, replica_sets: &[ReplicaSetView]) -> Result<RollbackPlan, PlanError> {
    let current = revision_of(deployment).ok_or(PlanError::NoCurrentRevision)?;
    let uid = deployment.pointer("/metadata/uid").and_then(Value::as_str);
    let previous = replica_sets
        .iter()
        .filter(|rs| uid.is_some() && rs.owner_uid.as_deref() == uid)
        .filter_map(|rs| rs.revision.filter(|r| *r < current).map(|r| (r, rs)))
        .max_by_key(|(r, _)| *r)
        .ok_or(PlanError::NoPreviousRevision { current })?;
    let (to_revision, rs) = previous;
    let mut template = rs.template.clone();
    if !template.is_object() {
        return Err(PlanError::NoTemplate(rs.name.clone()));
    }
    if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove(HASH_LABEL);
    }
    Ok(RollbackPlan {
        from_revision: current,
        to_revision,
        to_replica_set: rs.name.clone(),
        resource_version: deployment.pointer("/metadata/resourceVersion").and_then(Value::as_str).map(String::from),
        template,
        annotations: BTreeMap::from([(ROLLED_BACK_FROM.to_string(), current.to_string())]),
        has_annotations: deployment.pointer("/metadata/annotations").is_some_and(Value::is_object),
    })
}

fn revision_of(object: &Value) -> Option<u64> {
    object.pointer("/metadata/annotations")?.get(REVISION)?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests;
