//! Owns the rollout guard's decisions: when a guarded workload is rolling
//! out (so the guard is armed), and how a Deployment is rolled back to its
//! previous revision. Pure: objects in, a decision or a patch out; the
//! Kubernetes I/O that feeds and applies them lives elsewhere.

mod plan;
mod rollout;

pub use plan::{PlanError, ReplicaSetView, RollbackPlan, plan_rollback};
pub use rollout::DeploymentState;
