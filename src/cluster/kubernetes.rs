//! The `Cluster` on a real Kubernetes API through kube-rs, configured the
//! usual way (in-cluster, else `$KUBECONFIG`). Objects are handled as JSON
//! so the pure guard code (`guard::DeploymentState`, `guard::plan_rollback`)
//! reads exactly what the API returns.
//!
//! Deployments: pause is a merge patch of `spec.paused` plus annotations;
//! rollback is `kubectl rollout undo`'s change as a JSON Patch (the old pod
//! template replaces `spec.template` whole), sent with the
//! `resourceVersion` it was planned from, so a concurrent change is a 409
//! (re-read and decide again), never a blind overwrite. Argo Rollouts:
//! pause is `spec.paused: true`; rollback is `status.abort: true` on the
//! status subresource. Replicas are never touched. kube-rs itself retries
//! 429/503/504 a few times; other failures come back as `Unavailable`, a
//! 409 as `Conflict`, for the caller's back-off.

use std::sync::Arc;

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use jiff::Timestamp;
use kube::api::{Api, ApiResource, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::GroupVersionKind;
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::{Value, json};

use super::health::{ApiHealth, Call, classify_watch};
use super::{Cluster, Error, ROLLED_BACK_TO, Result, RolledBack, RolloutState, TargetEvent, TargetRef};
use crate::config::TargetKind;
use crate::guard::{DeploymentState, ReplicaSetView, plan_rollback};

/// Set by the rollback plan (`guard::plan_rollback`): the revision rolled back from.
const ROLLED_BACK_FROM: &str = "guardian.blueocean.io/rolled-back-from";

pub struct KubeCluster {
    client: kube::Client,
    /// Told how every call ended, when the API's health is followed.
    health: Option<Arc<ApiHealth>>,
}

impl KubeCluster {
    /// In-cluster service account, else `$KUBECONFIG` / `~/.kube/config`.
    pub async fn connect() -> Result<Self, kube::Error> {
        Ok(Self::from_client(kube::Client::try_default().await?))
    }

    pub fn from_client(client: kube::Client) -> Self {
        Self { client, health: None }
    }

    /// Every call's end is recorded in `health`.
    pub fn with_health(mut self, health: Arc<ApiHealth>) -> Self {
        self.health = Some(health);
        self
    }

    async fn tracked<T>(
        &self,
        call: Call,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        match &self.health {
            Some(h) => h.track(call, fut).await,
            None => fut.await,
        }
    }

    fn api(&self, target: &TargetRef, kind: Kind) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &target.namespace, &kind.resource())
    }

    async fn get(&self, target: &TargetRef) -> Result<Value> {
        let kind = Kind::of(target.kind);
        let api = self.api(target, kind);
        let obj = self.tracked(Call::Get, api.get(&target.name)).await.map_err(|e| error(target, e))?;
        serde_json::to_value(&obj).map_err(|e| unavailable(target, e.to_string()))
    }

    async fn patch(&self, target: &TargetRef, kind: Kind, status: bool, body: &Value) -> Result<()> {
        let api = self.api(target, kind);
        let params = PatchParams::default();
        let patch = Patch::Merge(body);
        let sent = if status {
            self.tracked(Call::Patch, api.patch_status(&target.name, &params, &patch)).await
        } else {
            self.tracked(Call::Patch, api.patch(&target.name, &params, &patch)).await
        };
        sent.map(|_| ()).map_err(|e| error(target, e))
    }

    async fn replica_sets(&self, target: &TargetRef, deployment: &Value) -> Result<Vec<ReplicaSetView>> {
        let labels = deployment.pointer("/spec/selector/matchLabels").and_then(Value::as_object);
        let selector: Vec<String> =
            labels.into_iter().flatten().filter_map(|(k, v)| v.as_str().map(|v| format!("{k}={v}"))).collect();
        let api = self.api(target, Kind::ReplicaSet);
        let params = ListParams::default().labels(&selector.join(","));
        let list = self.tracked(Call::List, api.list(&params)).await.map_err(|e| error(target, e))?;
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

    async fn roll_back(&self, target: &TargetRef, from_template: &str) -> Result<RolledBack> {
        let obj = self.get(target).await?;
        let now = match target.kind {
            TargetKind::Deployment => deployment_state(&obj),
            TargetKind::Rollout => argo_state(&obj),
        };
        // Decided on what ran then: if that changed, or the way back is already under way, decide again.
        if now.template != from_template || now.rolled_back_to.as_deref() == Some(now.template.as_str()) {
            return Err(Error::Conflict(target.clone()));
        }
        if target.kind == TargetKind::Rollout {
            self.patch(target, Kind::Rollout, true, &json!({"status": {"abort": true}})).await?;
            let revision = revision(&obj).unwrap_or(0);
            return Ok(RolledBack { from_revision: revision, to_revision: revision.saturating_sub(1) });
        }
        let sets = self.replica_sets(target, &obj).await?;
        let mut plan = plan_rollback(&obj, &sets).map_err(|e| match e {
            crate::guard::PlanError::NoPreviousRevision { current } => {
                Error::NoPreviousRevision { target: target.clone(), current }
            }
            other => unavailable(target, other.to_string()),
        })?;
        plan.annotations.insert(ROLLED_BACK_TO.into(), fingerprint(&plan.template));
        // A JSON Patch, as `kubectl rollout undo` replaces `spec.template` whole: a merge patch would keep keys
        // only the newer template has. It sets the resourceVersion the plan was made from: if the Deployment
        // changed since, the API answers 409 (re-read and decide again).
        let ops = serde_json::from_value(plan.json_patch()).map_err(|e| unavailable(target, e.to_string()))?;
        let api = self.api(target, Kind::Deployment);
        let patch = Patch::<()>::Json(ops);
        self.tracked(Call::Patch, api.patch(&target.name, &PatchParams::default(), &patch))
            .await
            .map_err(|e| error(target, e))?;
        Ok(RolledBack { from_revision: plan.from_revision, to_revision: plan.to_revision })
    }

    async fn rolled_back(&self, target: &TargetRef) -> Result<Option<RolledBack>> {
        if target.kind != TargetKind::Deployment {
            return Ok(None);
        }
        let obj = self.get(target).await?;
        let state = deployment_state(&obj);
        if state.rolled_back_to.as_deref() != Some(state.template.as_str()) {
            return Ok(None);
        }
        let from = obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(ROLLED_BACK_FROM))
            .and_then(Value::as_str)
            .and_then(|r| r.parse().ok());
        let Some(from_revision) = from else { return Ok(None) };
        let uid = obj.pointer("/metadata/uid").and_then(Value::as_str);
        let sets = self.replica_sets(target, &obj).await?;
        let running = sets
            .iter()
            .filter(|rs| uid.is_some() && rs.owner_uid.as_deref() == uid)
            .filter(|rs| template_fingerprint(rs.template.clone()) == state.template)
            .filter_map(|rs| rs.revision)
            .max();
        Ok(running.map(|to_revision| RolledBack { from_revision, to_revision }))
    }

    /// One kube-runtime watcher per target (a field selector on its name):
    /// list, then watch, re-listing after a 410 and backing off on errors.
    fn watch(&self, targets: Vec<TargetRef>) -> BoxStream<'static, TargetEvent> {
        let streams = targets.into_iter().map(|target| {
            let api = self.api(&target, Kind::of(target.kind));
            let config = watcher::Config::default().fields(&format!("metadata.name={}", target.name));
            // Whether the current (re-)list has shown the object: a list that ends
            // without it means it was deleted while the watch was down.
            let mut listed = false;
            // The last state sent: a write that leaves the rollout state as it was
            // (status churn while pods become ready, the same object re-listed) is
            // no change, as in the memory backend.
            let mut last: Option<Result<RolloutState>> = None;
            let health = self.health.clone();
            watcher::watcher(api, config)
                .default_backoff()
                .filter_map(move |event| {
                    if let Some(h) = &health {
                        match event.as_ref().err().map(|e| (classify_watch(e), e)) {
                            Some((Some(failure), e)) => h.failed(Call::Watch, failure, &e.to_string()),
                            _ => h.answered(),
                        }
                    }
                    let target = target.clone();
                    let event = match event {
                        Ok(watcher::Event::Init) => {
                            listed = false;
                            None
                        }
                        Ok(watcher::Event::InitDone) if listed => None,
                        Ok(watcher::Event::InitDone) => {
                            Some(TargetEvent { state: Err(Error::NotFound(target.clone())), target })
                        }
                        Ok(watcher::Event::InitApply(obj)) => {
                            listed = true;
                            Some(to_event(target, Ok(watcher::Event::Apply(obj))))
                        }
                        other => Some(to_event(target, other)),
                    };
                    let event = event.filter(|e| last.as_ref() != Some(&e.state));
                    if let Some(e) = &event {
                        last = Some(e.state.clone());
                    }
                    async move { event }
                })
                .boxed()
        });
        stream::select_all(streams).boxed()
    }
}

/// A target event from a watcher event (list bookkeeping is handled by the caller).
fn to_event(target: TargetRef, event: Result<watcher::Event<DynamicObject>, watcher::Error>) -> TargetEvent {
    let state = match event {
        Ok(watcher::Event::Apply(obj) | watcher::Event::InitApply(obj)) => match serde_json::to_value(&obj) {
            Ok(v) => Ok(match target.kind {
                TargetKind::Deployment => deployment_state(&v),
                TargetKind::Rollout => argo_state(&v),
            }),
            Err(e) => Err(unavailable(&target, e.to_string())),
        },
        Ok(watcher::Event::Delete(_)) => Err(Error::NotFound(target.clone())),
        Ok(watcher::Event::Init | watcher::Event::InitDone) => Err(unavailable(&target, "listing".into())),
        Err(e) => Err(unavailable(&target, format!("watch failed: {e}"))),
    };
    TargetEvent { target, state }
}

/// The identity of a pod template, whoever holds it (a Deployment or its
/// ReplicaSet): the controller's `pod-template-hash` label left out.
fn template_fingerprint(mut template: Value) -> String {
    if let Some(labels) = template.pointer_mut("/metadata/labels").and_then(Value::as_object_mut) {
        labels.remove("pod-template-hash");
    }
    fingerprint(&template)
}

fn deployment_state(obj: &Value) -> RolloutState {
    let template = obj.pointer("/spec/template").cloned().unwrap_or(Value::Null);
    RolloutState {
        rolling_out: DeploymentState::from_object(obj).is_rolling_out(),
        revision: revision(obj),
        template: template_fingerprint(template),
        paused: obj.pointer("/spec/paused").and_then(Value::as_bool).unwrap_or(false),
        rolled_back_to: obj
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(ROLLED_BACK_TO))
            .and_then(Value::as_str)
            .map(String::from),
    }
}

/// An Argo Rollout is rolling out while its current pod hash is not the stable one.
fn argo_state(obj: &Value) -> RolloutState {
    let text = |p: &str| obj.pointer(p).and_then(Value::as_str).unwrap_or_default().to_string();
    let (current, stable) = (text("/status/currentPodHash"), text("/status/stableRS"));
    // An aborted Rollout runs its stable pods again: that is Argo's rollback.
    let aborted = obj.pointer("/status/abort").and_then(Value::as_bool).unwrap_or(false);
    RolloutState {
        rolling_out: !current.is_empty() && current != stable,
        revision: revision(obj),
        rolled_back_to: aborted.then(|| current.clone()),
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
        // 429 is retried by kube-rs itself first; any other 4xx will not change by trying again.
        kube::Error::Api(status) if (400..500).contains(&status.code) && status.code != 429 => {
            Error::Rejected { target: target.clone(), detail: e.to_string() }
        }
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
