//! `/metrics` in the Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiState;

/// Rendering is CPU work that grows with checks (tens of ms at 1,000): it runs
/// on the blocking pool so probe tasks are not delayed and mismeasured.
pub async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let body = tokio::task::spawn_blocking(move || state.metrics.render(&state.board)).await.unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
