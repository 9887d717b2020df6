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
    /// Guarded targets and their rollout state (filled by the guard).
    pub targets: Vec<serde_json::Value>,
    pub incidents: Vec<Incident>,
    pub revenue_at_risk_eur: f64,
    pub gate: GateBody,
    pub storage: StoreHealth,
}

pub async fn status(State(state): State<ApiState>) -> Json<StatusBody> {
    let env = state.config.environment;
    Json(StatusBody {
        environment: env.as_str(),
        generated_at: state.clock.now(),
        checks: state.board.snapshot(),
        slos: state.history.slo_status(),
        targets: Vec::new(),
        incidents: state.history.open_incidents(),
        revenue_at_risk_eur: state.history.revenue_at_risk(),
        gate: state.gatekeeper.decide(env, None).body(),
        storage: state.writer.health(),
    })
}
