//! Builds a running Guardian from a `Config`: the one place that picks the
//! clock, storage, prober and observers, wires them, and starts and drains
//! the tasks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::actuator::{self, Actuator};
use crate::api::{self, ApiState, ClientLimiter};
use crate::clock::Clock;
use crate::cluster::{ApiHealth, Cluster, KubeCluster, MemoryCluster, TargetRef};
use crate::config::{Config, Env, GuardMode};
use crate::coord::{self, Coordinator};
use crate::evidence::{Evidence, Judges};
use crate::gatekeeper::Gatekeeper;
use crate::history::History;
use crate::leader::{Leadership, LeaseElector, LeaseTiming, LockTiming, RedisLock, Solo};
use crate::metrics::{Metrics, MetricsError};
use crate::notify::{Composer, Courier, CourierParts, LogNotifier, Notifier, Notifiers};
use crate::probe::{Board, Confirmations, HostLimiter, Observers, ProbeObserver, Prober, Scheduler};
use crate::store::{self, LazyStore, QueueConfig, Store, StoreWriter};
use crate::targets::{self, Targets};

/// How often `guardian_redis_up` is refreshed.
const REDIS_CHECK_EVERY: Duration = Duration::from_secs(2);
/// How long start-up waits for storage before starting without it.
const STORAGE_AT_START: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    #[error(transparent)]
    Http(#[from] crate::probe::http::BuildError),
    // kube's message already carries its causes: printed once, not as a chain.
    #[error("guard.mode is kubernetes but no Kubernetes API is configured (in-cluster or $KUBECONFIG): {0}")]
    Kubernetes(kube::Error),
    #[error("redis.url: {0}")]
    Redis(#[from] coord::CoordError),
    #[error("notify: {0}")]
    Notify(#[from] crate::notify::CourierError),
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
    pub targets: Arc<Targets>,
    /// The guard at work; `None` when `guard.mode` is off.
    pub guard: Option<Guard>,
    /// Who may act and notify: the Lease in Kubernetes, else the Redis lock, else this replica alone.
    pub leadership: Arc<dyn Leadership>,
    /// Sends notifications; `None` when `notify` names no channel.
    pub courier: Option<Arc<Courier>>,
    coord: Option<Coordinator>,
    redis_lock: Option<Arc<RedisLock>>,
    confirmations: Arc<Confirmations>,
    limiter: Arc<HostLimiter>,
    api_limiter: Arc<ClientLimiter>,
    api_token: Option<Arc<crate::config::Secret>>,
}

/// The acting side of the guard.
pub struct Guard {
    pub cluster: Arc<dyn Cluster>,
    /// The same cluster when `guard.mode` is simulated, to play rollouts on.
    pub simulated: Option<Arc<MemoryCluster>>,
    pub leadership: Arc<dyn Leadership>,
    elector: Option<Arc<LeaseElector>>,
    pub actuator: Arc<Actuator>,
    evidence: Arc<Evidence>,
    /// The Kubernetes API and its health; `None` when simulated.
    kube: Option<KubeApi>,
}

/// The Kubernetes API the guard talks to, and how well it answers.
struct KubeApi {
    client: kube::Client,
    health: Arc<ApiHealth>,
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
        let metrics = Arc::new(Metrics::new(&config)?);
        let prober = Arc::new(Prober::new(clock.clone())?);
        let g = &config.guard;
        let confirmations = Arc::new(Confirmations::new(&config.checks, g.confirm_interval, g.breach_max_bad));
        let effects = targets::Effects {
            confirmations: confirmations.clone(),
            baselines: prober.baselines().clone(),
            gatekeeper: gatekeeper.clone(),
            metrics: metrics.clone(),
            writer: writer.clone(),
        };
        let targets = Arc::new(Targets::new(&config, clock.clone(), effects));
        let identity = env.var("HOSTNAME").unwrap_or_else(|| format!("guardian-{:08x}", rand::random::<u32>()));
        let coord = match &config.redis_url {
            Some(url) => {
                let prefix =
                    config.redis_key_prefix.clone().unwrap_or_else(|| coord::default_prefix(config.environment));
                Some(Coordinator::new(url.expose(), prefix)?)
            }
            None => None,
        };
        let cluster = match g.mode {
            GuardMode::Off => None,
            mode => Some(connect_cluster(&config, mode, &clock, &identity, &metrics).await?),
        };
        let elector = cluster.as_ref().and_then(|(_, _, e, _)| e.clone());
        let (leadership, redis_lock): (Arc<dyn Leadership>, _) = match (&elector, &coord) {
            (Some(e), _) => (e.clone(), None),
            (None, Some(c)) => {
                let l = &config.guard.lease;
                let timing = LockTiming { ttl: l.duration, renew_every: l.renew_every, retry_every: l.renew_every / 2 };
                tracing::info!(%identity, "leader election through a Redis lock");
                let lock = Arc::new(RedisLock::new(c.clone(), &identity, timing, clock.clone()));
                (lock.clone(), Some(lock))
            }
            (None, None) => (Arc::new(Solo::new()), None),
        };
        let composer =
            Composer::new(config.clone(), gatekeeper.clone(), history.clone(), targets.clone(), clock.clone());
        let courier = Courier::new(CourierParts {
            config: config.clone(),
            composer,
            leadership: leadership.clone(),
            coord: coord.clone(),
            identity,
            writer: writer.clone(),
            metrics: metrics.clone(),
            clock: clock.clone(),
        })?;
        let courier = courier.has_channels().then_some(courier);
        let log: Arc<dyn Notifier> = LogNotifier::new(writer.clone());
        let notifier: Arc<dyn Notifier> = match &courier {
            Some(c) => {
                history.listen(c.clone());
                Arc::new(Notifiers(vec![log, c.clone()]))
            }
            None => log,
        };
        let guard = match cluster {
            None => None,
            Some((cluster, simulated, elector, kube)) => {
                let judges = Arc::new(Judges::new(&config));
                let actuator = Arc::new(Actuator::new(actuator::Parts {
                    config: config.clone(),
                    cluster: cluster.clone(),
                    targets: targets.clone(),
                    leadership: leadership.clone(),
                    history: history.clone(),
                    notifier,
                    metrics: metrics.clone(),
                    writer: writer.clone(),
                    clock: clock.clone(),
                    judges: judges.clone(),
                }));
                let evidence =
                    Arc::new(Evidence::new(&config, judges, targets.clone(), actuator.clone(), clock.clone()));
                Some(Guard { cluster, simulated, leadership: leadership.clone(), elector, actuator, evidence, kube })
            }
        };
        Ok(Self {
            leadership,
            courier,
            coord,
            redis_lock,
            metrics,
            prober,
            targets,
            guard,
            confirmations,
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
            targets: self.targets.clone(),
            baselines: self.prober.baselines().clone(),
            leadership: self.guard.as_ref().map(|g| g.leadership.clone()),
            kubernetes: self.guard.as_ref().and_then(|g| g.kube.as_ref()).map(|k| k.health.clone()),
            redis: self.coord.clone().map(|coord| api::RedisState { coord, holds_the_lock: self.redis_lock.is_some() }),
            clock: self.clock.clone(),
            token: self.api_token.clone(),
            limiter: self.api_limiter.clone(),
        }
    }

    fn observers(&self) -> Arc<dyn ProbeObserver> {
        let mut all: Vec<Arc<dyn ProbeObserver>> = vec![self.board.clone(), self.metrics.clone(), self.history.clone()];
        // After history: an incident is open by the time the guard acts on the same probe.
        if let Some(g) = &self.guard {
            all.push(g.evidence.clone());
        }
        Arc::new(Observers(all))
    }

    /// Starts probing, persisting and serving the API on `listener` until `stop` fires.
    pub fn start(&self, listener: TcpListener, stop: CancellationToken) -> Running {
        let (tracker, failed) = (TaskTracker::new(), CancellationToken::new());
        let scheduler =
            Scheduler::new(&self.config.checks, self.prober.clone(), self.limiter.clone(), self.observers())
                .with_confirmations(self.confirmations.clone());
        let probing = tokio::spawn(scheduler.run(stop.clone(), tracker.clone()));
        tracker.spawn(watch_scheduler(probing, stop.clone(), failed.clone()));
        tracker.spawn(self.history.clone().persist_loop(stop.clone()));
        tracker.spawn(self.writer.clone().run(stop.clone()));
        tracker.spawn(self.history.clone().prune_loop(self.writer.store().clone(), stop.clone()));
        tracker.spawn(self.gatekeeper.clone().record_loop(stop.clone()));
        tracker.spawn(self.api_limiter.clone().forget_loop(stop.clone()));
        let (history, gatekeeper, store) = (self.history.clone(), self.gatekeeper.clone(), self.writer.store().clone());
        let actuator = self.guard.as_ref().map(|g| g.actuator.clone());
        let restoring = stop.clone();
        tracker.spawn(async move {
            history.restore_loop(store.clone(), restoring).await;
            gatekeeper.restore(store.as_ref()).await;
            if let Some(a) = actuator
                && let Err(e) = a.reconcile(store.as_ref()).await
            {
                tracing::warn!(error = %e, "cannot reconcile actions left half-done");
            }
        });
        if let Some(g) = &self.guard {
            self.start_guard(g, &stop, &tracker);
        }
        self.start_coordination(&stop, &tracker);
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

impl App {
    /// The Redis lock (when it decides who leads), the notifier, and the
    /// `guardian_redis_up` gauge, refreshed every `REDIS_CHECK_EVERY`.
    fn start_coordination(&self, stop: &CancellationToken, tracker: &TaskTracker) {
        if let Some(lock) = &self.redis_lock {
            tracker.spawn(lock.clone().run(stop.clone()));
            if self.guard.is_none() {
                self.watch_leadership(stop, tracker);
            }
        }
        if let Some(courier) = &self.courier {
            courier.start(self.writer.store().clone(), stop, tracker);
        }
        let Some(coord) = self.coord.clone() else { return };
        let (metrics, stop, lock_pings) = (self.metrics.clone(), stop.clone(), self.redis_lock.is_some());
        tracker.spawn(async move {
            loop {
                // The lock calls Redis every renewal; without it, a ping keeps the health true.
                if !lock_pings {
                    let _ = coord.ping().await;
                }
                metrics.notify.set_redis_up(coord.health().reachable);
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(REDIS_CHECK_EVERY) => {}
                }
            }
        });
    }

    fn start_guard(&self, g: &Guard, stop: &CancellationToken, tracker: &TaskTracker) {
        tracker.spawn(self.targets.clone().watch_loop(g.cluster.clone(), stop.clone()));
        tracker.spawn(self.targets.clone().sync_loop(self.writer.store().clone(), stop.clone()));
        tracker.spawn(g.evidence.clone().stale_loop(stop.clone()));
        g.actuator.start(stop, tracker);
        if let Some(elector) = &g.elector {
            tracker.spawn(elector.clone().run(stop.clone()));
        }
        if let Some(k) = &g.kube {
            tracker.spawn(k.health.clone().probe_loop(k.client.clone(), stop.clone()));
        }
        self.watch_leadership(stop, tracker);
    }

    /// Keeps `guardian_leader` true to this replica's leadership.
    fn watch_leadership(&self, stop: &CancellationToken, tracker: &TaskTracker) {
        let (mut changes, metrics, stop) = (self.leadership.changes(), self.metrics.clone(), stop.clone());
        tracker.spawn(async move {
            loop {
                let leader = *changes.borrow_and_update();
                metrics.guard.set_leader(leader);
                tokio::select! {
                    () = stop.cancelled() => return,
                    changed = changes.changed() => if changed.is_err() { return },
                }
            }
        });
    }
}

type Connected = (Arc<dyn Cluster>, Option<Arc<MemoryCluster>>, Option<Arc<LeaseElector>>, Option<KubeApi>);

/// The cluster the guard acts on. Simulated: in memory, each target settled
/// on a `NAME:stable` template (who leads is then up to Redis, or this
/// replica alone). Kubernetes: kube-rs configured the usual way, leadership
/// through a Lease named after the environment in the guardian's own namespace,
/// every call of the guard's counted in the API's health (`guardian_kubernetes_up`).
async fn connect_cluster(
    config: &Config,
    mode: GuardMode,
    clock: &Arc<dyn Clock>,
    identity: &str,
    metrics: &Arc<Metrics>,
) -> Result<Connected, AppError> {
    if mode == GuardMode::Simulated {
        let memory = Arc::new(MemoryCluster::new());
        for t in &config.guard.targets {
            memory.add(&TargetRef::of(t), &format!("{}:stable", t.name));
        }
        return Ok((memory.clone(), Some(memory), None, None));
    }
    let client = kube::Client::try_default().await.map_err(AppError::Kubernetes)?;
    let namespace = client.default_namespace().to_string();
    let l = &config.guard.lease;
    let lease = l.name.clone().unwrap_or_else(|| format!("guardian-{}", config.environment.as_str()));
    // A follower looks again (and a failed call is retried) twice per renewal.
    let timing = LeaseTiming { lease_duration: l.duration, renew_every: l.renew_every, retry_every: l.renew_every / 2 };
    tracing::info!(%namespace, %lease, %identity, "leader election through a Lease");
    let elector = Arc::new(LeaseElector::new(client.clone(), &namespace, &lease, identity, timing, clock.clone()));
    let health = Arc::new(ApiHealth::new(metrics.clone()));
    let cluster = KubeCluster::from_client(client.clone()).with_health(health.clone());
    Ok((Arc::new(cluster), None, Some(elector), Some(KubeApi { client, health })))
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
