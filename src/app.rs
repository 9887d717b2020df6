//! Builds a running Guardian from a `Config`: the one place that picks the
//! clock, prober and observers, wires them, and starts and drains the tasks.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, ApiState};
use crate::clock::Clock;
use crate::config::Config;
use crate::metrics::{Metrics, MetricsError};
use crate::probe::{Board, HostLimiter, Observers, ProbeObserver, Prober, Scheduler};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Http(#[from] crate::probe::http::BuildError),
}

/// Everything a guardian shares between its loops and its API.
pub struct App {
    pub config: Arc<Config>,
    pub clock: Arc<dyn Clock>,
    pub board: Arc<Board>,
    pub metrics: Arc<Metrics>,
    pub prober: Arc<Prober>,
    limiter: Arc<HostLimiter>,
}

/// A started guardian: stop it with the token given to `start`, then `drain`.
pub struct Running {
    tracker: TaskTracker,
    failed: CancellationToken,
}

impl App {
    pub fn build(config: Config, clock: Arc<dyn Clock>) -> Result<Self, AppError> {
        let prober = Arc::new(Prober::new(clock.clone())?);
        Ok(Self {
            board: Arc::new(Board::new(&config.checks, clock.clone())),
            metrics: Arc::new(Metrics::new(&config)?),
            limiter: Arc::new(HostLimiter::per_second(config.probing.per_host_per_second)),
            config: Arc::new(config),
            clock,
            prober,
        })
    }

    pub fn api_state(&self) -> ApiState {
        ApiState {
            environment: self.config.environment,
            board: self.board.clone(),
            metrics: self.metrics.clone(),
            clock: self.clock.clone(),
        }
    }

    fn observers(&self) -> Arc<dyn ProbeObserver> {
        Arc::new(Observers(vec![self.board.clone(), self.metrics.clone()]))
    }

    /// Starts probing and serving the API on `listener` until `stop` fires.
    pub fn start(&self, listener: TcpListener, stop: CancellationToken) -> Running {
        let (tracker, failed) = (TaskTracker::new(), CancellationToken::new());
        let scheduler =
            Scheduler::new(&self.config.checks, self.prober.clone(), self.limiter.clone(), self.observers());
        let probing = tokio::spawn(scheduler.run(stop.clone(), tracker.clone()));
        tracker.spawn(watch_scheduler(probing, stop.clone(), failed.clone()));
        let router = api::router(self.api_state());
        tracker.spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "API server stopped");
            }
        });
        Running { tracker, failed }
    }
}

/// A guardian that stopped probing must not go on saying all is well: if the
/// scheduler ends or panics before the stop signal, stop everything.
async fn watch_scheduler(probing: tokio::task::JoinHandle<()>, stop: CancellationToken, failed: CancellationToken) {
    let ended = probing.await;
    if stop.is_cancelled() {
        return;
    }
    match ended {
        Ok(()) => tracing::error!("the probe scheduler stopped on its own; shutting down"),
        Err(e) => tracing::error!(error = %e, "the probe scheduler crashed; shutting down"),
    }
    failed.cancel();
    stop.cancel();
}

impl Running {
    /// Completes if the guardian failed on its own (it then stops by itself).
    pub async fn failed(&self) {
        self.failed.cancelled().await
    }

    /// Waits for every task to end, at most `grace`; returns whether all did.
    pub async fn drain(self, grace: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(grace, self.tracker.wait()).await.is_ok()
    }
}
