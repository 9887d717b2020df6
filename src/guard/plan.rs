//! The rollback of a Deployment, as `kubectl rollout undo` does it: take the
//! ReplicaSet owned by the Deployment with the highest
//! `deployment.kubernetes.io/revision` below the current one, copy its pod
//! template without the `pod-template-hash` label into `spec.template`, set
//! `spec.paused` to false, and annotate where it came from. Replicas are
//! never touched: the HPA owns them. Pure: it returns the patch to send.

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

/// A rollback to send: the merge patch and the revisions it moves between.
#[derive(Debug, Clone, PartialEq)]
pub struct RollbackPlan {
    pub from_revision: u64,
    pub to_revision: u64,
    pub to_replica_set: String,
    /// A merge patch for the Deployment.
    pub patch: Value,
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
    let patch = json!({
        "metadata": { "annotations": { ROLLED_BACK_FROM: current.to_string() } },
        "spec": { "template": template, "paused": false },
    });
    Ok(RollbackPlan { from_revision: current, to_revision, to_replica_set: rs.name.clone(), patch })
}

fn revision_of(object: &Value) -> Option<u64> {
    object.pointer("/metadata/annotations")?.get(REVISION)?.as_str()?.parse().ok()
}

#[cfg(test)]
mod tests;
