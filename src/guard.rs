//! Owns the rollout guard's decisions: when a guarded workload is rolling
//! out (so the guard is armed), what to do about a breach or missing data,
//! and how a Deployment is rolled back to its previous revision. Pure: objects in, a decision or a patch out; the
//! Kubernetes I/O that feeds and applies them lives elsewhere.

mod decide;
mod judge;
mod plan;
mod rollout;

pub use decide::{Decision, TargetView, Trigger, decide};
pub use judge::{CheckJudge, Standing, Verdict, detection_bound};
pub use plan::{PlanError, ReplicaSetView, RollbackPlan, plan_rollback};
pub use rollout::DeploymentState;

/// The detection bound of `check` under `config`: with confirmation probes
/// when a guard target watches it (guard on), else at its own interval.
pub fn check_detection_bound(config: &crate::config::Config, check: &crate::config::Check) -> std::time::Duration {
    let g = &config.guard;
    let guarded = g.mode != crate::config::GuardMode::Off && g.targets.iter().any(|t| t.checks.contains(&check.name));
    detection_bound(check.interval, check.budget, g.breach_max_bad, g.confirm_interval, guarded)
}
