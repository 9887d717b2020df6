//! `/healthz` (the process serves) and `/readyz` (it has something true to
//! say, and somewhere to keep it).

use axum::extract::State;
use axum::http::StatusCode;

use super::ApiState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready while storage answers and every check has a fresh result; else 503
/// with every reason, one per line.
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, String) {
    let mut problems = Vec::new();
    let storage = state.writer.health();
    if !storage.reachable {
        let why = storage.last_error.as_deref().unwrap_or("no answer yet");
        problems.push(format!("storage unreachable ({why}); {} writes queued, none lost", storage.queued));
    }
    let waiting = state.board.without_fresh_result();
    if !waiting.is_empty() {
        problems.push(format!("no fresh result for {}", waiting.join(", ")));
    }
    if problems.is_empty() {
        (StatusCode::OK, "ready\n".into())
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", problems.join("\nnot ready: ")))
    }
}
