//! `/healthz` (the process serves) and `/readyz` (it has something true to say).

use axum::extract::State;
use axum::http::StatusCode;

use super::ApiState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready while every check has a fresh result; else 503 naming the others.
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, String) {
    let waiting = state.board.without_fresh_result();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: no fresh result for {}\n", waiting.join(", ")))
    }
}
