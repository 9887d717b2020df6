//! Owns process shutdown: the signal future that ends `run`, `sim` and the
//! demo, and the grace period every drain is bounded by.

use std::time::Duration;

/// How long in-flight work gets after a stop signal. Kubernetes sends SIGKILL
/// 30 s after SIGTERM by default; SPEC asks for an exit within 5 s.
pub const GRACE: Duration = Duration::from_secs(4);

/// Completes on SIGTERM or SIGINT and logs which one arrived.
pub async fn signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (term, int) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()));
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
                    _ = int.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "cannot install signal handlers; waiting for Ctrl-C");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!(signal = "Ctrl-C", "shutting down");
    }
}
