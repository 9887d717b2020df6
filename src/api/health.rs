//! `/healthz` (the process serves) and `/readyz` (it has something true to say).

use axum::extract::State;
use axum::http::StatusCode;

use super::ApiState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready once every check has a result; until then 503 with the reason.
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, String) {
    let waiting = state.board.without_result();
    if waiting.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: no result yet for {}\n", waiting.join(", ")))
    }
}
