//! SPEC's rolling-out rule for a Deployment. Rule: it is rolling out while
//! `metadata.generation > status.observedGeneration` (the controller has not
//! seen the change yet), or `status.updatedReplicas < spec.replicas` (new
//! pods still to come), or `status.replicas > status.updatedReplicas` (old
//! pods still running). Why all three: each alone misses a phase of a
//! rollout. Missing status fields count as zero, as the API server omits them.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeploymentState {
    pub generation: i64,
    pub observed_generation: i64,
    pub spec_replicas: i64,
    pub replicas: i64,
    pub updated_replicas: i64,
}

impl DeploymentState {
    /// Reads the fields from a Deployment object as the API returns it.
    /// `spec.replicas` defaults to 1, as the API server defaults it.
    pub fn from_object(deployment: &Value) -> Self {
        let int = |pointer: &str, default: i64| deployment.pointer(pointer).and_then(Value::as_i64).unwrap_or(default);
        Self {
            generation: int("/metadata/generation", 0),
            observed_generation: int("/status/observedGeneration", 0),
            spec_replicas: int("/spec/replicas", 1),
            replicas: int("/status/replicas", 0),
            updated_replicas: int("/status/updatedReplicas", 0),
        }
    }

    pub fn is_rolling_out(&self) -> bool {
        self.generation > self.observed_generation
            || self.updated_replicas < self.spec_replicas
            || self.replicas > self.updated_replicas
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn state(generation: i64, observed: i64, spec: i64, replicas: i64, updated: i64) -> DeploymentState {
        DeploymentState {
            generation,
            observed_generation: observed,
            spec_replicas: spec,
            replicas,
            updated_replicas: updated,
        }
    }

    #[test]
    fn each_phase_of_a_rollout_counts_as_rolling_out() {
        let table = [
            ("settled", state(4, 4, 5, 5, 5), false),
            ("change not yet observed", state(5, 4, 5, 5, 5), true),
            ("new pods still coming", state(5, 5, 5, 6, 3), true),
            ("old pods still running", state(5, 5, 5, 7, 5), true),
            ("scaled down, settled", state(6, 6, 3, 3, 3), false),
            ("scaled to zero", state(2, 2, 0, 0, 0), false),
        ];
        for (name, s, want) in table {
            assert_eq!(s.is_rolling_out(), want, "{name}");
        }
    }

    #[test]
    fn missing_fields_read_as_the_api_server_defaults_them() {
        let fresh = json!({"metadata": {"generation": 1}, "spec": {}, "status": {}});
        let s = DeploymentState::from_object(&fresh);
        assert_eq!(s, state(1, 0, 1, 0, 0));
        assert!(s.is_rolling_out(), "a brand-new Deployment is rolling out until observed");
        let done = json!({"metadata": {"generation": 3}, "spec": {"replicas": 2},
            "status": {"observedGeneration": 3, "replicas": 2, "updatedReplicas": 2}});
        assert!(!DeploymentState::from_object(&done).is_rolling_out());
    }
}
