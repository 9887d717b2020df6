//! Owns talking to the cluster about guarded targets: the `Cluster` trait
//! in domain words (rollout state, pause, roll back) and its backends.
//! `memory` keeps the same rollout semantics in memory, for the demo's
//! simulated mode and for guard tests; the Kubernetes backend (kube-rs)
//! implements the same trait.

mod health;
mod kubernetes;
mod memory;

use async_trait::async_trait;
use futures_util::stream::BoxStream;
use jiff::Timestamp;

pub use health::{ApiHealth, ApiObserver, Call, Failure, Health};
pub use kubernetes::KubeCluster;
pub use memory::MemoryCluster;

use crate::config::{Target, TargetKind};

/// A guarded workload: `NAMESPACE/KIND/NAME`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetRef {
    pub kind: TargetKind,
    pub namespace: String,
    pub name: String,
}

impl TargetRef {
    pub fn of(target: &Target) -> Self {
        Self { kind: target.kind, namespace: target.namespace.clone(), name: target.name.clone() }
    }
}

impl std::fmt::Display for TargetRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            TargetKind::Deployment => "Deployment",
            TargetKind::Rollout => "Rollout",
        };
        write!(f, "{}/{kind}/{}", self.namespace, self.name)
    }
}

/// What the guard needs to know about a target now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RolloutState {
    pub rolling_out: bool,
    /// `deployment.kubernetes.io/revision`, when known.
    pub revision: Option<u64>,
    /// Identity of the running pod template: two states with the same one
    /// run the same code, whatever their revision numbers.
    pub template: String,
    pub paused: bool,
    /// The template Guardian last rolled this target back to (recorded on the
    /// object itself, so it survives restarts and storage outages).
    pub rolled_back_to: Option<String>,
}

/// One observation of a watched target: its state now, or why it is unknown
/// (`NotFound` when it was deleted).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetEvent {
    pub target: TargetRef,
    pub state: Result<RolloutState>,
}

/// Annotation holding the template identity Guardian rolled back to.
pub const ROLLED_BACK_TO: &str = "guardian.blueocean.io/rolled-back-to";

/// A rollback that was applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RolledBack {
    pub from_revision: u64,
    pub to_revision: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    #[error("{0} does not exist")]
    NotFound(TargetRef),
    #[error("{0} changed while being updated (conflict); re-read and decide again")]
    Conflict(TargetRef),
    #[error("{target} has no previous revision to roll back to (revision {current})")]
    NoPreviousRevision { target: TargetRef, current: u64 },
    #[error("the cluster did not answer about {target}: {detail}")]
    Unavailable { target: TargetRef, detail: String },
    /// Not sent: this replica no longer leads. Retried only while it leads again.
    #[error("not acting on {target}: {detail}")]
    NotLeader { target: TargetRef, detail: String },
    /// Refused for good (403 forbidden by RBAC, 422 invalid): retrying cannot help.
    #[error("the cluster refused the change to {target}: {detail}")]
    Rejected { target: TargetRef, detail: String },
}

impl Error {
    /// Worth trying again after a back-off (a conflict is retried by re-deciding).
    pub fn is_transient(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Conflict(_) | Self::NotLeader { .. })
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[async_trait]
pub trait Cluster: Send + Sync + 'static {
    async fn rollout(&self, target: &TargetRef) -> Result<RolloutState>;
    /// Pauses the rollout and says why, and when.
    async fn pause(&self, target: &TargetRef, reason: &str, at: Timestamp) -> Result<()>;
    /// Rolls back from `from_template` — the template the decision saw
    /// running — to the previous revision (unpausing it); replicas
    /// untouched. If the target runs something else by now, or already shows
    /// a rollback to what it runs (a person's `kubectl rollout undo`, another
    /// replica), nothing is sent: `Conflict`, to read again and decide again.
    async fn roll_back(&self, target: &TargetRef, from_template: &str) -> Result<RolledBack>;
    /// When the target runs a template Guardian rolled it back to: the
    /// revision it was rolled back from, and the revision the cluster gives
    /// the template it runs now (the old one's, or the next one once the
    /// controller renumbered it). `None` when it shows no rollback of
    /// Guardian's, or the backend cannot tell. Read-only; for the books after
    /// a restart.
    async fn rolled_back(&self, _target: &TargetRef) -> Result<Option<RolledBack>> {
        Ok(None)
    }
    /// Every change of the targets' rollout state, starting with the current
    /// state of each; pushed by the cluster, not polled. Ends only when the
    /// backend is dropped.
    fn watch(&self, targets: Vec<TargetRef>) -> BoxStream<'static, TargetEvent>;
}
