//! Builds a running Guardian from a `Config`: the one place that picks the
//! clock, storage, prober and observers, wires them, and starts and drains
//! the tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::{self, ApiState, ClientLimiter};
use crate::clock::Clock;
use crate::config::{Config, Env};
use crate::gatekeeper::Gatekeeper;
use crate::history::History;
use crate::metrics::{Metrics, MetricsError};
use crate::probe::{Board, HostLimiter, Observers, ProbeObserver, Prober, Scheduler};
use crate::store::{self, LazyStore, QueueConfig, Store, StoreWriter};

/// How long start-up waits for storage before starting without it.
const STORAGE_AT_START: Duration = Duration::from_secs(5);

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
    pub history: Arc<History>,
    pub gatekeeper: Arc<Gatekeeper>,
    pub writer: StoreWriter,
    limiter: Arc<HostLimiter>,
    api_limiter: Arc<ClientLimiter>,
    api_token: Option<Arc<crate::config::Secret>>,
}

/// A started guardian: stop it with the token given to `start`, then `drain`.
pub struct Running {
    tracker: TaskTracker,
    failed: CancellationToken,
    writer: StoreWriter,
}

impl App {
    /// Opens storage (or goes on without it, retrying) and wires the rest;
    /// stored history is restored by `start`. `env` supplies the API token.
    pub async fn build(config: Config, clock: Arc<dyn Clock>, env: &dyn Env) -> Result<Self, AppError> {
        let store = open_store(&config).await;
        let writer = StoreWriter::new(store.clone(), clock.clone(), QueueConfig::default());
        let config = Arc::new(config);
        let board = Arc::new(Board::new(&config.checks, clock.clone()));
        let history = Arc::new(History::new(&config, clock.clone(), writer.clone()));
        let gatekeeper =
            Arc::new(Gatekeeper::new(config.clone(), board.clone(), history.clone(), clock.clone(), writer.clone()));
        Ok(Self {
            metrics: Arc::new(Metrics::new(&config)?),
            prober: Arc::new(Prober::new(clock.clone())?),
            limiter: Arc::new(HostLimiter::per_second(config.probing.per_host_per_second)),
            api_token: api::load_token(config.api_token_env.as_deref(), env),
            api_limiter: Arc::new(ClientLimiter::per_second(config.api_requests_per_second)),
            config,
            clock,
            board,
            history,
            gatekeeper,
            writer,
        })
    }

    pub fn api_state(&self) -> ApiState {
        ApiState {
            config: self.config.clone(),
            board: self.board.clone(),
            metrics: self.metrics.clone(),
            history: self.history.clone(),
            gatekeeper: self.gatekeeper.clone(),
            writer: self.writer.clone(),
            clock: self.clock.clone(),
            token: self.api_token.clone(),
            limiter: self.api_limiter.clone(),
        }
    }

    fn observers(&self) -> Arc<dyn ProbeObserver> {
        Arc::new(Observers(vec![self.board.clone(), self.metrics.clone(), self.history.clone()]))
    }

    /// Starts probing, persisting and serving the API on `listener` until `stop` fires.
    pub fn start(&self, listener: TcpListener, stop: CancellationToken) -> Running {
        let (tracker, failed) = (TaskTracker::new(), CancellationToken::new());
        let scheduler =
            Scheduler::new(&self.config.checks, self.prober.clone(), self.limiter.clone(), self.observers());
        let probing = tokio::spawn(scheduler.run(stop.clone(), tracker.clone()));
        tracker.spawn(watch_scheduler(probing, stop.clone(), failed.clone()));
        tracker.spawn(self.history.clone().persist_loop(stop.clone()));
        tracker.spawn(self.writer.clone().run(stop.clone()));
        tracker.spawn(self.history.clone().prune_loop(self.writer.store().clone(), stop.clone()));
        tracker.spawn(self.gatekeeper.clone().record_loop(stop.clone()));
        tracker.spawn(self.api_limiter.clone().forget_loop(stop.clone()));
        let (history, gatekeeper, store) = (self.history.clone(), self.gatekeeper.clone(), self.writer.store().clone());
        let restoring = stop.clone();
        tracker.spawn(async move {
            history.restore_loop(store.clone(), restoring).await;
            gatekeeper.restore(store.as_ref()).await;
        });
        let router = api::router(self.api_state()).into_make_service_with_connect_info::<SocketAddr>();
        tracker.spawn(async move {
            let serve = axum::serve(listener, router).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::error!(error = %e, "API server stopped");
            }
        });
        if self.api_token.is_none() {
            tracing::warn!("no API token configured: POST endpoints answer 403");
        }
        Running { tracker, failed, writer: self.writer.clone() }
    }
}

/// Storage as configured; if it does not answer at start, a store that keeps
/// trying, so probing and the gate start anyway.
async fn open_store(config: &Config) -> Arc<dyn Store> {
    let url = config.storage_url.expose();
    match tokio::time::timeout(STORAGE_AT_START, store::open(url)).await {
        Ok(Ok(store)) => {
            tracing::info!(storage = %config.storage_url, "storage ready");
            store
        }
        Ok(Err(e)) => {
            tracing::warn!(storage = %config.storage_url, error = %e, "storage unavailable at start; writes are queued");
            Arc::new(LazyStore::new(url))
        }
        Err(_) => {
            tracing::warn!(storage = %config.storage_url, "storage did not answer at start; writes are queued");
            Arc::new(LazyStore::new(url))
        }
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

    /// Waits for every task to end, then writes what is queued, all within
    /// `grace`; returns whether everything finished.
    pub async fn drain(self, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        self.tracker.close();
        let tasks = tokio::time::timeout_at(deadline, self.tracker.wait()).await.is_ok();
        let left = self.writer.drain(deadline).await;
        if left > 0 {
            tracing::warn!(left, "storage writes still queued at shutdown");
        }
        tasks && left == 0
    }
}
