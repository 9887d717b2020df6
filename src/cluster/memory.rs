//! An in-memory cluster with the rollout semantics the guard relies on:
//! revisions, a rollout in progress until completed, pause, and a rollback
//! that brings the previous template back as a new revision (as the
//! Deployment controller does). Every mutating call is recorded, so tests
//! can assert the exact calls with nothing extra.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use futures_util::stream::{self, BoxStream, StreamExt};
use jiff::Timestamp;
use tokio::sync::watch;

use super::{Cluster, Error, ROLLED_BACK_TO, Result, RolledBack, RolloutState, TargetEvent, TargetRef};

pub struct MemoryCluster {
    inner: Arc<Inner>,
}

struct Inner {
    targets: Mutex<BTreeMap<TargetRef, Workload>>,
    calls: Mutex<Vec<(tokio::time::Instant, String)>>,
    /// Bumped on every change, so watchers wake and compare.
    changes: watch::Sender<u64>,
}

impl Default for MemoryCluster {
    fn default() -> Self {
        let inner = Inner { targets: Mutex::default(), calls: Mutex::default(), changes: watch::Sender::new(0) };
        Self { inner: Arc::new(inner) }
    }
}

#[derive(Debug, Clone)]
struct Workload {
    /// Templates by revision; the newest revision is the one running.
    revisions: BTreeMap<u64, String>,
    rolling_out: bool,
    paused: bool,
    annotations: BTreeMap<String, String>,
}

impl Workload {
    fn current(&self) -> (u64, &str) {
        self.revisions.iter().next_back().map_or((0, ""), |(r, t)| (*r, t.as_str()))
    }

    fn state(&self) -> RolloutState {
        let (revision, template) = self.current();
        RolloutState {
            rolling_out: self.rolling_out,
            revision: Some(revision),
            template: template.to_string(),
            paused: self.paused,
            rolled_back_to: self.annotations.get(ROLLED_BACK_TO).cloned(),
        }
    }
}

impl MemoryCluster {
    pub fn new() -> Self {
        Self::default()
    }

    /// A settled workload running `template` at revision 1.
    pub fn add(&self, target: &TargetRef, template: &str) {
        let w = Workload {
            revisions: BTreeMap::from([(1, template.to_string())]),
            rolling_out: false,
            paused: false,
            annotations: BTreeMap::new(),
        };
        self.inner.lock_targets().insert(target.clone(), w);
        self.inner.changed();
    }

    /// A deploy: `template` becomes the next revision, rolling out.
    pub fn start_rollout(&self, target: &TargetRef, template: &str) -> Result<u64> {
        self.with(target, |w| {
            let next = w.current().0 + 1;
            w.revisions.insert(next, template.to_string());
            w.rolling_out = true;
            Ok(next)
        })
    }

    /// The controller finished: every replica runs the current revision.
    pub fn complete_rollout(&self, target: &TargetRef) -> Result<()> {
        self.with(target, |w| {
            w.rolling_out = false;
            Ok(())
        })
    }

    pub fn annotation(&self, target: &TargetRef, key: &str) -> Option<String> {
        self.inner.lock_targets().get(target)?.annotations.get(key).cloned()
    }

    /// Every pause and rollback asked of it, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls_at().into_iter().map(|(_, c)| c).collect()
    }

    /// The same, with when each was asked (for timings in the demo and benches).
    pub fn calls_at(&self) -> Vec<(tokio::time::Instant, String)> {
        self.inner.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, call: String) {
        self.inner.calls.lock().unwrap_or_else(|p| p.into_inner()).push((tokio::time::Instant::now(), call));
    }

    fn with<T>(&self, target: &TargetRef, f: impl FnOnce(&mut Workload) -> Result<T>) -> Result<T> {
        let done = {
            let mut targets = self.inner.lock_targets();
            let w = targets.get_mut(target).ok_or_else(|| Error::NotFound(target.clone()))?;
            f(w)
        };
        self.inner.changed();
        done
    }
}

impl Inner {
    fn lock_targets(&self) -> std::sync::MutexGuard<'_, BTreeMap<TargetRef, Workload>> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn changed(&self) {
        self.changes.send_modify(|v| *v = v.wrapping_add(1));
    }

    fn state(&self, target: &TargetRef) -> Result<RolloutState> {
        self.lock_targets().get(target).map(Workload::state).ok_or_else(|| Error::NotFound(target.clone()))
    }
}

#[async_trait]
impl Cluster for MemoryCluster {
    async fn rollout(&self, target: &TargetRef) -> Result<RolloutState> {
        self.inner.state(target)
    }

    async fn pause(&self, target: &TargetRef, reason: &str, at: Timestamp) -> Result<()> {
        self.record(format!("pause {target}"));
        self.with(target, |w| {
            w.paused = true;
            w.annotations.insert("guardian.blueocean.io/paused-at".into(), at.to_string());
            w.annotations.insert("guardian.blueocean.io/reason".into(), reason.to_string());
            Ok(())
        })
    }

    async fn roll_back(&self, target: &TargetRef, from_template: &str) -> Result<RolledBack> {
        self.record(format!("rollback {target}"));
        self.with(target, |w| {
            let (current, running) = w.current();
            let back_already = w.annotations.get(ROLLED_BACK_TO).is_some_and(|t| t == running);
            if running != from_template || back_already {
                return Err(Error::Conflict(target.clone()));
            }
            let previous = w.revisions.range(..current).next_back().map(|(r, t)| (*r, t.clone()));
            let Some((old, template)) = previous else {
                return Err(Error::NoPreviousRevision { target: target.clone(), current });
            };
            // The old template comes back as the newest revision, as the controller does it.
            w.revisions.remove(&old);
            w.revisions.insert(current + 1, template);
            w.paused = false;
            w.rolling_out = true;
            w.annotations.insert("guardian.blueocean.io/rolled-back-from".into(), current.to_string());
            w.annotations.insert(ROLLED_BACK_TO.into(), w.current().1.to_string());
            Ok(RolledBack { from_revision: current, to_revision: old })
        })
    }

    /// Emits each target's state first, then whenever it differs from the
    /// last one emitted.
    fn watch(&self, targets: Vec<TargetRef>) -> BoxStream<'static, TargetEvent> {
        let (inner, changes) = (self.inner.clone(), self.inner.changes.subscribe());
        let last: Vec<Option<Result<RolloutState>>> = vec![None; targets.len()];
        stream::unfold(
            (inner, changes, targets, last, true),
            |(inner, mut changes, targets, mut last, first)| async move {
                if !first && changes.changed().await.is_err() {
                    return None;
                }
                changes.borrow_and_update();
                let mut events = Vec::new();
                for (target, seen) in targets.iter().zip(last.iter_mut()) {
                    let state = inner.state(target);
                    if seen.as_ref() != Some(&state) {
                        *seen = Some(state.clone());
                        events.push(TargetEvent { target: target.clone(), state });
                    }
                }
                Some((stream::iter(events), (inner, changes, targets, last, false)))
            },
        )
        .flatten()
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TargetKind;

    fn dashboard() -> TargetRef {
        TargetRef {
            kind: TargetKind::Deployment,
            namespace: "blueocean-nextgen-prod".into(),
            name: "nextgen-dashboard".into(),
        }
    }

    #[tokio::test]
    async fn a_bad_rollout_is_paused_then_rolled_back_to_the_previous_template() {
        let c = MemoryCluster::new();
        let t = dashboard();
        c.add(&t, "dashboard:1.8.1");
        assert_eq!(c.start_rollout(&t, "dashboard:1.8.2").unwrap(), 2);
        let s = c.rollout(&t).await.unwrap();
        assert!(s.rolling_out && !s.paused && s.template == "dashboard:1.8.2");
        let at: Timestamp = "2026-11-26T12:00:00Z".parse().unwrap();
        c.pause(&t, "payments over budget", at).await.unwrap();
        assert!(c.rollout(&t).await.unwrap().paused);
        assert_eq!(c.annotation(&t, "guardian.blueocean.io/reason").as_deref(), Some("payments over budget"));
        let back = c.roll_back(&t, "dashboard:1.8.2").await.unwrap();
        assert_eq!(back, RolledBack { from_revision: 2, to_revision: 1 });
        let s = c.rollout(&t).await.unwrap();
        assert_eq!((s.template.as_str(), s.revision, s.paused), ("dashboard:1.8.1", Some(3), false));
        assert_eq!(c.annotation(&t, "guardian.blueocean.io/rolled-back-from").as_deref(), Some("2"));
        assert_eq!(s.rolled_back_to.as_deref(), Some("dashboard:1.8.1"));
        assert_eq!(
            c.calls(),
            [
                "pause blueocean-nextgen-prod/Deployment/nextgen-dashboard",
                "rollback blueocean-nextgen-prod/Deployment/nextgen-dashboard"
            ]
        );
    }

    #[tokio::test]
    async fn a_first_revision_cannot_be_rolled_back_and_unknown_targets_are_not_found() {
        let c = MemoryCluster::new();
        let t = dashboard();
        c.add(&t, "dashboard:1.8.1");
        assert_eq!(
            c.roll_back(&t, "dashboard:1.8.1").await,
            Err(Error::NoPreviousRevision { target: t.clone(), current: 1 })
        );
        assert_eq!(
            c.roll_back(&t, "dashboard:1.8.0").await,
            Err(Error::Conflict(t.clone())),
            "decided on another template"
        );
        let other = TargetRef { name: "nextgen-admin".into(), ..t };
        assert_eq!(c.rollout(&other).await, Err(Error::NotFound(other.clone())));
        assert!(!Error::NotFound(other.clone()).is_transient());
        assert!(Error::Conflict(other).is_transient());
    }

    #[tokio::test]
    async fn a_watch_sees_the_current_state_then_each_change() {
        let c = MemoryCluster::new();
        let t = dashboard();
        c.add(&t, "dashboard:1.8.1");
        let mut events = c.watch(vec![t.clone()]);
        let first = events.next().await.unwrap().state.unwrap();
        assert!(!first.rolling_out && first.template == "dashboard:1.8.1");
        c.start_rollout(&t, "dashboard:1.8.2").unwrap();
        let second = events.next().await.unwrap().state.unwrap();
        assert!(second.rolling_out && second.template == "dashboard:1.8.2");
        c.complete_rollout(&t).unwrap();
        assert!(!events.next().await.unwrap().state.unwrap().rolling_out);
    }
}
