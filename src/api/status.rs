//! `/api/v1/status`: every check's latest state as JSON.

use axum::Json;
use axum::extract::State;
use serde::Serialize;

use super::ApiState;
use crate::probe::CheckStatus;

#[derive(Debug, Serialize)]
pub struct StatusBody {
    pub environment: &'static str,
    pub generated_at: jiff::Timestamp,
    pub checks: Vec<CheckStatus>,
}

pub async fn status(State(state): State<ApiState>) -> Json<StatusBody> {
    Json(StatusBody {
        environment: state.environment.as_str(),
        generated_at: state.clock.now(),
        checks: state.board.snapshot(),
    })
}
