//! `/metrics` in the Prometheus text format.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::ApiState;

pub async fn metrics(State(state): State<ApiState>) -> impl IntoResponse {
    let body = state.metrics.render(&state.board);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body)
}
