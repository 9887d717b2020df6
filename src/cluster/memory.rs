//! An in-memory cluster with the rollout semantics the guard relies on:
//! revisions, a rollout in progress until completed, pause, and a rollback
//! that brings the previous template back as a new revision (as the
//! Deployment controller does). Every mutating call is recorded, so tests
//! can assert the exact calls with nothing extra.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use jiff::Timestamp;

use super::{Cluster, Error, Result, RolledBack, RolloutState, TargetRef};

#[derive(Default)]
pub struct MemoryCluster {
    targets: Mutex<BTreeMap<TargetRef, Workload>>,
    calls: Mutex<Vec<String>>,
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
        self.lock_targets().insert(target.clone(), w);
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
        self.lock_targets().get(target)?.annotations.get(key).cloned()
    }

    /// Every pause and rollback asked of it, in order.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, call: String) {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).push(call);
    }

    fn lock_targets(&self) -> std::sync::MutexGuard<'_, BTreeMap<TargetRef, Workload>> {
        self.targets.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn with<T>(&self, target: &TargetRef, f: impl FnOnce(&mut Workload) -> Result<T>) -> Result<T> {
        let mut targets = self.lock_targets();
        let w = targets.get_mut(target).ok_or_else(|| Error::NotFound(target.clone()))?;
        f(w)
    }
}

#[async_trait]
impl Cluster for MemoryCluster {
    async fn rollout(&self, target: &TargetRef) -> Result<RolloutState> {
        self.with(target, |w| {
            let (revision, template) = w.current();
            Ok(RolloutState {
                rolling_out: w.rolling_out,
                revision: Some(revision),
                template: template.to_string(),
                paused: w.paused,
            })
        })
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

    async fn roll_back(&self, target: &TargetRef) -> Result<RolledBack> {
        self.record(format!("rollback {target}"));
        self.with(target, |w| {
            let (current, _) = w.current();
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
            Ok(RolledBack { from_revision: current, to_revision: old })
        })
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
        let back = c.roll_back(&t).await.unwrap();
        assert_eq!(back, RolledBack { from_revision: 2, to_revision: 1 });
        let s = c.rollout(&t).await.unwrap();
        assert_eq!((s.template.as_str(), s.revision, s.paused), ("dashboard:1.8.1", Some(3), false));
        assert_eq!(c.annotation(&t, "guardian.blueocean.io/rolled-back-from").as_deref(), Some("2"));
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
        assert_eq!(c.roll_back(&t).await, Err(Error::NoPreviousRevision { target: t.clone(), current: 1 }));
        let other = TargetRef { name: "nextgen-admin".into(), ..t };
        assert_eq!(c.rollout(&other).await, Err(Error::NotFound(other.clone())));
        assert!(!Error::NotFound(other.clone()).is_transient());
        assert!(Error::Conflict(other).is_transient());
    }
}
