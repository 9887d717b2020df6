//! `/healthz` (the process serves) and `/readyz` (it has something true to
//! say, and somewhere to keep it).

use axum::extract::State;
use axum::http::StatusCode;

use super::ApiState;

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready while storage answers, Redis answers when its lock elects the
/// leader, the Kubernetes API answers when the guard acts on a cluster
/// (`cluster::health` has the rule), and every check has a fresh result;
/// else 503 with every reason, one per line. What is degraded but not
/// unready follows as `note:` lines.
pub async fn readyz(State(state): State<ApiState>) -> (StatusCode, String) {
    let (mut problems, mut notes) = (Vec::new(), Vec::new());
    let storage = state.writer.health();
    if !storage.reachable {
        let why = storage.last_error.as_deref().unwrap_or("no answer yet");
        problems.push(format!("storage unreachable ({why}); {} writes queued, none lost", storage.queued));
    }
    if let Some(redis) = &state.redis {
        let health = redis.coord.health();
        if !health.reachable {
            let why = health.last_error.as_deref().unwrap_or("no answer yet");
            if redis.holds_the_lock {
                // No lock, no guard: not ready, so deploys wait for a guardian that can act.
                problems.push(format!(
                    "redis unreachable ({why}); no replica acts without a valid lock; probing and the gate go on"
                ));
            } else {
                // The Lease still elects: the guard acts, only replicas may both send a notification.
                notes.push(format!("redis unreachable ({why}); notifications are not deduplicated across replicas"));
            }
        }
    }
    if let Some(kube) = &state.kubernetes
        && let crate::cluster::Health { up: false, why } = kube.health()
    {
        // The guard can neither pause nor roll back: deploys wait for a guardian that can act.
        let why = why.unwrap_or_default();
        problems.push(format!(
            "kubernetes API server unreachable ({why}); the guard cannot pause or roll back; probing and the gate go on"
        ));
    }
    let failing = state.metrics.notify.failing();
    if !failing.is_empty() {
        // A guardian that cannot notify still guards: degraded, not unready.
        let channels: Vec<String> = failing.iter().map(|(c, n)| format!("{c} {n}")).collect();
        notes.push(format!("notifications waiting for receivers that fail: {}", channels.join(", ")));
    }
    let waiting = state.board.without_fresh_result();
    if !waiting.is_empty() {
        problems.push(format!("no fresh result for {}", waiting.join(", ")));
    }
    if problems.is_empty() {
        let notes: String = notes.iter().map(|n| format!("note: {n}\n")).collect();
        (StatusCode::OK, format!("ready\n{notes}"))
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", problems.join("\nnot ready: ")))
    }
}
