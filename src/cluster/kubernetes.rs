//! The `Cluster` on a real Kubernetes API through kube-rs, configured the
//! usual way (in-cluster, else `$KUBECONFIG`). Objects are handled as JSON
//! so the pure guard code (`guard::DeploymentState`, `guard::plan_rollback`)
//! reads exactly what the API returns.
//!
//! Deployments: pause is a merge patch of `spec.paused` plus annotations;
//! rollback is `kubectl rollout undo`'s patch, sent with the
//! `resourceVersion` it was planned from, so a concurrent change is a 409
//! (re-read and decide again), never a blind overwrite. Argo Rollouts:
//! pause is `spec.paused: true`; rollback is `status.abort: true` on the
//! status subresource. Replicas are never touched. kube-rs itself retries
//! 429/503/504 a few times; other failures come back as `Unavailable`, a
//! 409 as `Conflict`, for the caller's back-off.

use async_trait::async_trait;
use jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use serde_json::{Value, json};

use super::{Cluster, Error, Result, RolledBack, RolloutState, TargetRef};
use crate::config::TargetKind;
use crate::guard::{DeploymentState, ReplicaSetView, plan_rollback};

pub struct KubeCluster {
    client: kube::Client,
}

impl KubeCluster {
    /// In-cluster service account, else `$KUBECONFIG` / `~/.kube/config`.
    pub async fn connect() -> Result<Self, kube::Error> {
        Ok(Self { client: kube::Client::try_default().await? })
    }

    pub fn from_client(client: kube::Client) -> Self {
        Self { client }
    }

    fn api(&self, target: &TargetRef, kind: Kind) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &target.namespace, &kind.resource())
    }

    async fn get(&self, target: &TargetRef) -> Result<Value> {
        let kind = Kind::of(target.kind);
        let obj = self.api(target, kind).get(&target.name).await.map_err(|e| error(target, e))?;
        serde_json::to_value(&obj).map_err(|e| unavailable(target, e.to_string()))
    }

    async fn patch(&self, target: &TargetRef, kind: Kind, status: bool, body: &Value) -> Result<()> {
        let api = self.api(target, kind);
        let params = PatchParams::default();
        let sent = if status {
            api.patch_status(&target.name, &params, &Patch::Merge(body)).await
        } else {
            api.patch(&target.name, &params, &Patch::Merge(body)).await
        };
        sent.map(|_| ()).map_err(|e| error(target, e))
    }

    async fn replica_sets(&self, target: &TargetRef, deployment: &Value) -> Result<Vec<ReplicaSetView>> {
        let labels = deployment.pointer("/spec/selector/matchLabels").and_then(Value::as_object);
        let selector: Vec<String> =
            labels.into_iter().flatten().filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))).collect();
        let api = self.api(target, Kind::ReplicaSet);
        let list = api.list(&ListParams::default().labels(&selector.join(","))).await.map_err(|e| error(target, e))?;
        let values = list.items.iter().filter_map(|rs| serde_json::to_value(rs).ok());
        Ok(values.map(|v| ReplicaSetView::from_object(&v)).collect())
    }
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn rollout(&self, target: &TargetRef) -> Result<RolloutState> {
        let obj = self.get(target).await?;
        Ok(match target.kind {
            TargetKind::Deployment => deployment_state(&obj),
            TargetKind::Rollout => argo_state(&obj),
        })
    }

    async fn pause(&self, target: &TargetRef, reason: &str, at: Timestamp) -> Result<()> {
        let body = json!({
            "metadata": {"annotations": {
                "guardian.blueocean.io/paused-at": at.to_string(),
                "guardian.blueocean.io/reason": reason,
            }},
            "spec": {"paused": true},
        });
        self.patch(target, Kind::of(target.kind), false, &body).await
    }

    async fn roll_back(&self, target: &TargetRef) -> Result<RolledBack> {
        let obj = self.get(target).await?;
        if target.kind == TargetKind::Rollout {
            self.patch(target, Kind::Rollout, true, &json!({"status": {"abort": true}})).await?;
            let revision = revision(&obj).unwrap_or(0);
            return Ok(RolledBack { from_revision: revision, to_revision: revision.saturating_sub(1) });
        }
        let sets = self.replica_sets(target, &obj).await?;
        let plan = plan_rollback(&obj, &sets).map_err(|e| match e {
            crate::guard::PlanError::NoPreviousRevision { current } => {
                Error::NoPreviousRevision { target: target.clone(), current }
            }
            other => unavailable(target, other.to_string()),
        })?;
        let mut body = plan.patch.clone();
        // Planned from this version: if the Deployment changed since, the API answers 409.
        body["metadata"]["resourceVersion"] = obj.pointer("/metadata/resourceVersion").cloned().unwrap_or(Value::Null);
        self.patch(target, Kind::Deployment, false, &body).await?;
        Ok(RolledBack { from_revision: plan.from_revision, to_revision: plan.to_revision })
    }
}

fn deployment_state(obj: &Value) -> RolloutState {
    let mut template = obj.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove("pod-template-hash");
    }
    RolloutState {
        rolling_out: DeploymentState::from_object(obj).is_rolling_out(),
        revision: revision(obj),
        template: fingerprint(&template),
        paused: obj.pointer("/spec/paused").and_then(Value::as_bool).unwrap_or(false),
    }
}

/// An Argo Rollout is rolling out while its current pod hash is not the stable one.
fn argo_state(obj: &Value) -> RolloutState {
    let text = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    let (current, stable) = (text("/status/currentPodHash"), text("/status/stableRS"));
    RolloutState {
        rolling_out: !current.is_empty() && current != stable,
        revision: revision(obj),
        template: current,
        paused: obj.pointer("/spec/paused").and_then(Value::as_bool).unwrap_or(false),
    }
}

fn revision(obj: &Value) -> Option<u64> {
    let annotations = obj.pointer("/metadata/annotations")?;
    let text = annotations
        .get("deployment.kubernetes.io/revision")
        .or_else(|| annotations.get("rollout.argoproj.io/revision"))?;
    text.as_str()?.parse().ok()
}

/// A stable identity for a pod template (FNV-1a over its JSON, whose keys
/// serde_json keeps sorted): the same code gives the same value across
/// restarts and builds.
fn fingerprint(template: &Value) -> String {
    let text = template.to_string();
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Deployment,
    ReplicaSet,
    Rollout,
}

impl Kind {
    fn of(kind: TargetKind) -> Self {
        match kind {
            TargetKind::Deployment => Self::Deployment,
            TargetKind::Rollout => Self::Rollout,
        }
    }

    fn resource(self) -> ApiResource {
        let (group, version, kind, plural) = match self {
            Self::Deployment => ("apps", "v1", "Deployment", "deployments"),
            Self::ReplicaSet => ("apps", "v1", "ReplicaSet", "replicasets"),
            Self::Rollout => ("argoproj.io", "v1alpha1", "Rollout", "rollouts"),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural)
    }
}

fn error(target: &TargetRef, e: kube::Error) -> Error {
    match &e {
        kube::Error::Api(status) if status.code == 404 => Error::NotFound(target.clone()),
        kube::Error::Api(status) if status.code == 409 => Error::Conflict(target.clone()),
        _ => unavailable(target, e.to_string()),
    }
}

fn unavailable(target: &TargetRef, detail: String) -> Error {
    Error::Unavailable { target: target.clone(), detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_ignores_the_pod_template_hash_and_follows_the_image() {
        let dep = |image: &str, hash: &str| {
            json!({"spec": {"template": {"metadata": {"labels": {"app": "d", "pod-template-hash": hash}},
                "spec": {"containers": [{"image": image}]}}}})
        };
        let a = deployment_state(&dep("d:1.8.1", "aaa")).template;
        assert_eq!(a, deployment_state(&dep("d:1.8.1", "bbb")).template);
        assert_ne!(a, deployment_state(&dep("d:1.8.2", "aaa")).template);
        assert_eq!(a.len(), 16);
    }
}
