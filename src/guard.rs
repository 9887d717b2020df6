//! Owns the rollout guard's decisions: when a guarded workload is rolling
//! out (so the guard is armed), what to do about a breach or missing data,
//! and how a Deployment is rolled back to its previous revision. Pure: objects in, a decision or a patch out; the
//! Kubernetes I/O that feeds and applies them lives elsewhere.

mod decide;
mod plan;
mod rollout;

pub use decide::{Decision, TargetView, Trigger, decide};
pub use plan::{PlanError, ReplicaSetView, RollbackPlan, plan_rollback};
pub use rollout::DeploymentState;
