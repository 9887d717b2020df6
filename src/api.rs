//! Owns the HTTP API served on `listen`: health, readiness, metrics and the
//! JSON status. Handlers read shared state; they never probe or block.

mod health;
mod metrics;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use crate::config::Environment;
use crate::metrics::Metrics;
use crate::probe::Board;

/// What the handlers read.
#[derive(Clone)]
pub struct ApiState {
    pub environment: Environment,
    pub board: Arc<Board>,
    pub metrics: Arc<Metrics>,
    pub clock: Arc<dyn crate::clock::Clock>,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/status", get(status::status))
        .with_state(state)
}
