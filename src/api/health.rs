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
    if let Some(redis) = &state.redis {
        let health = redis.coord.health();
        if !health.reachable {
            let why = health.last_error.as_deref().unwrap_or("no answer yet");
            let effect = if redis.holds_the_lock {
                "no replica acts without a valid lock; probing and the gate go on"
            } else {
                "notifications are not deduplicated across replicas; probing, the gate and the guard go on"
            };
            problems.push(format!("redis unreachable ({why}); {effect}"));
        }
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
