//! `/api/v1/status`: every check, every SLO, every guarded target, open
//! incidents, the gate of this environment and storage health, as JSON.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::ApiState;
use crate::gate::GateBody;
use crate::incident::Incident;
use crate::probe::CheckStatus;
use crate::slo::SloStatus;
use crate::store::StoreHealth;

#[derive(Debug, Serialize)]
pub struct StatusBody {
    pub environment: &'static str,
    pub generated_at: jiff::Timestamp,
    pub checks: Vec<CheckStatus>,
    pub slos: Vec<SloStatus>,
    /// Guarded targets: rollout state, arming, migrations, detection bound.
    pub targets: Vec<crate::targets::TargetStatus>,
    /// The longest a breach of each check can take to be confirmed, in seconds.
    pub detection_bounds: std::collections::BTreeMap<String, f64>,
    /// The guard's mode, whether this replica may act, and who leads.
    pub guard: GuardStatus,
    /// `no_drop` baselines taken when targets armed.
    pub baselines: Vec<Baseline>,
    pub incidents: Vec<Incident>,
    pub revenue_at_risk_eur: f64,
    pub gate: GateBody,
    pub storage: StoreHealth,
}

#[derive(Debug, Serialize)]
pub struct GuardStatus {
    pub mode: &'static str,
    pub dry_run: bool,
    pub leader: bool,
    pub holder: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Baseline {
    pub check: String,
    pub path: String,
    pub value: f64,
}

pub async fn status(State(state): State<ApiState>) -> Json<StatusBody> {
    Json(build(&state))
}

/// What `/api/v1/status` and the status page show.
pub fn build(state: &ApiState) -> StatusBody {
    let env = state.config.environment;
    StatusBody {
        environment: env.as_str(),
        generated_at: state.clock.now(),
        checks: state.board.snapshot(),
        slos: state.history.slo_status(),
        targets: state.targets.status(&state.config),
        detection_bounds: state
            .config
            .checks
            .iter()
            .map(|c| (c.name.clone(), crate::guard::check_detection_bound(&state.config, c).as_secs_f64()))
            .collect(),
        guard: GuardStatus {
            mode: match state.config.guard.mode {
                crate::config::GuardMode::Kubernetes => "kubernetes",
                crate::config::GuardMode::Simulated => "simulated",
                crate::config::GuardMode::Off => "off",
            },
            dry_run: state.config.guard.dry_run,
            leader: state.leadership.as_ref().is_some_and(|l| l.is_leader()),
            holder: state.leadership.as_ref().and_then(|l| l.holder()),
        },
        baselines: state
            .baselines
            .snapshot()
            .into_iter()
            .map(|(check, path, value)| Baseline { check, path, value })
            .collect(),
        incidents: state.history.open_incidents(),
        revenue_at_risk_eur: state.history.revenue_at_risk(),
        gate: state.gatekeeper.decide(env, None).body(),
        storage: state.writer.health(),
    }
}
