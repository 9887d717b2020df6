//! `/metrics` in the Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiState;
use crate::metrics::Sources;

/// Rendering is CPU work that grows with checks (tens of ms at 1,000): it runs
/// on the blocking pool so probe tasks are not delayed and mismeasured.
pub async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || {
        let sources = Sources {
            board: &state.board,
            history: &state.history,
            gatekeeper: &state.gatekeeper,
            writer: &state.writer,
            environment: state.config.environment,
        };
        state.metrics.render(&sources)
    })
    .await
    .unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
