//! Owns the HTTP API served on `listen`: health, readiness, metrics, status,
//! the gate, backups, migrations, incidents and actions. Handlers read shared state;
//! they never probe, and never wait on storage to answer the gate.
//!
//! Every request passes the per-client rate limit; every POST but the gate
//! needs the bearer token (the gate's POST only reads: it is Flagger's
//! webhook form, and Flagger cannot send headers).

mod actions;
mod auth;
mod backups;
mod body;
mod error;
mod gate;
mod health;
mod metrics;
mod migrations;
mod page;
mod status;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use auth::{ClientLimiter, load_token};
pub use error::ApiError;

use crate::clock::Clock;
use crate::config::{Config, Secret};
use crate::gatekeeper::Gatekeeper;
use crate::history::History;
use crate::metrics::Metrics;
use crate::probe::Board;
use crate::store::StoreWriter;

/// What the handlers read.
#[derive(Clone)]
pub struct ApiState {
    pub config: Arc<Config>,
    pub board: Arc<Board>,
    pub metrics: Arc<Metrics>,
    pub history: Arc<History>,
    pub gatekeeper: Arc<Gatekeeper>,
    pub writer: StoreWriter,
    pub targets: Arc<crate::targets::Targets>,
    pub baselines: Arc<crate::probe::Baselines>,
    /// Who may act; `None` when the guard is off.
    pub leadership: Option<Arc<dyn crate::leader::Leadership>>,
    /// Redis, when configured, and whether its lock decides who acts.
    pub redis: Option<RedisState>,
    /// The Kubernetes API's health, when the guard acts on a real cluster.
    pub kubernetes: Option<Arc<crate::cluster::ApiHealth>>,
    pub clock: Arc<dyn Clock>,
    pub token: Option<Arc<Secret>>,
    pub limiter: Arc<ClientLimiter>,
}

/// Redis as `/readyz` reports it.
#[derive(Clone)]
pub struct RedisState {
    pub coord: crate::coord::Coordinator,
    /// True when Kubernetes is off: without Redis no replica may act.
    pub holds_the_lock: bool,
}

pub fn router(state: ApiState) -> Router {
    Router::new()
        .route("/", get(page::page))
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/v1/status", get(status::status))
        .route("/api/v1/gate", get(gate::get_gate).post(gate::post_gate))
        .route("/api/v1/backups", post(backups::post_backup))
        .route("/api/v1/migrations", post(migrations::post_migration))
        .route("/api/v1/migrations/{id}/finish", post(migrations::finish_migration))
        .route("/api/v1/incidents", get(actions::incidents))
        .route("/api/v1/actions", get(actions::actions))
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::guard))
        .layer(DefaultBodyLimit::max(body::MAX_BODY))
        .layer(axum::middleware::from_fn(error::json_errors))
        .with_state(state)
}
