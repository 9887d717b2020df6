//! Owns process shutdown: the signal future that ends `run`, `sim` and the
//! demo, and the grace period every drain is bounded by.

use std::time::Duration;

/// How long in-flight work gets after a stop signal. Kubernetes sends SIGKILL
/// 30 s after SIGTERM by default; SPEC asks for an exit within 5 s.
pub const GRACE: Duration = Duration::from_secs(4);

/// Completes on SIGTERM or SIGINT and logs which one arrived. The handlers
/// are installed when this is called, not when it is first awaited: call it
/// before announcing readiness, or a signal sent right after the announcement
/// kills the process instead of stopping it cleanly.
pub fn signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let handlers = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    };
    async move {
        #[cfg(unix)]
        match handlers {
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
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!(signal = "Ctrl-C", "shutting down");
        }
    }
}
