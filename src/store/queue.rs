//! Owns the write queue that keeps Guardian going while storage is down.
//!
//! Hot paths (probe observers, the gate, the guard) hand writes to a
//! cloneable `StoreWriter` without waiting; one background task (`run`)
//! flushes them in batches every `flush_every`, or at once when `batch` are
//! waiting. A failed flush is retried after an exponential back-off with
//! jitter (`retry`), and nothing leaves the queue before it is stored, so an
//! outage of any length loses no write; coalescing (`pending`) keeps the
//! queue to one roll-up per check and minute, and one delivery per
//! notification and channel, meanwhile. `health` says whether storage
//! answered last time, for `/readyz` and metrics; at shutdown, `drain`
//! flushes what is left until a deadline.

mod pending;
mod retry;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::audit::ActionRecord;
use crate::clock::Clock;
use crate::gate::{Backup, GateDecision};
use crate::incident::Incident;
use crate::migration::Migration;
use crate::notify::Delivery;
use crate::slo::MinuteRollup;
use crate::store::{Error, Store};

pub use retry::Backoff;

use pending::{Op, Ordered, Pending};

/// One write for the store.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Coalesced by (check, minute); the newest replaces older ones.
    Rollup(MinuteRollup),
    /// Coalesced by id.
    Incident(Incident),
    /// Coalesced by id.
    Migration(Migration),
    /// Coalesced by (key, channel): the newest replaces older ones, unless the
    /// queued one is final (delivered or abandoned), which nothing replaces.
    /// Stored as early as actions.
    Delivery(Delivery),
    /// Backups, gate decisions and actions are written in the order queued.
    Backup(Backup),
    GateDecision(GateDecision),
    Action(ActionRecord),
}

/// How the queue flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Pause between flushes while storage answers.
    pub flush_every: Duration,
    /// Most writes per flush; this many waiting triggers a flush at once.
    pub batch: usize,
    /// Waits between failed flushes.
    pub retry: Backoff,
    /// With nothing to write, storage is pinged this often so `health` stays true.
    pub ping_every: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        Self {
            // Roll-ups change every probe; a second of delay costs nothing and batches them.
            flush_every: Duration::from_secs(1),
            batch: 500,
            // 100-200 ms after a blip, and never more than 10 s once storage is back.
            retry: Backoff { base: Duration::from_millis(200), cap: Duration::from_secs(10) },
            ping_every: Duration::from_secs(10),
        }
    }
}

/// What `/readyz` and metrics say about storage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoreHealth {
    /// Whether storage answered the last write or ping (false before the first).
    pub reachable: bool,
    /// The last failure, kept after recovery for whoever looks later.
    pub last_error: Option<String>,
    /// Writes waiting to be stored.
    pub queued: usize,
    /// When storage last answered.
    pub last_ok: Option<Timestamp>,
    /// Writes the database refused for good (bad data), logged and given up.
    pub dropped: u64,
}

/// A cloneable handle on the write queue.
#[derive(Clone)]
pub struct StoreWriter {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: QueueConfig,
    pending: Mutex<Pending>,
    health: Mutex<Health>,
    /// Wakes `run` when a full batch is waiting.
    wake: Notify,
    /// One flush at a time: `run`, `flush_now` and `drain` share the queue.
    flushing: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct Health {
    reachable: bool,
    last_error: Option<String>,
    last_ok: Option<Timestamp>,
    last_contact: Option<Instant>,
    dropped: u64,
}

impl StoreWriter {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, mut config: QueueConfig) -> Self {
        config.batch = config.batch.max(1);
        let inner = Inner {
            store,
            clock,
            config,
            pending: Mutex::default(),
            health: Mutex::default(),
            wake: Notify::new(),
            flushing: tokio::sync::Mutex::new(()),
        };
        Self { inner: Arc::new(inner) }
    }

    /// Queues a write; never blocks on storage.
    pub fn enqueue(&self, write: impl Into<Write>) {
        let queued = {
            let mut pending = lock(&self.inner.pending);
            pending.push(write.into());
            pending.len()
        };
        if queued >= self.inner.config.batch {
            self.inner.wake.notify_one();
        }
    }

    pub fn health(&self) -> StoreHealth {
        let queued = lock(&self.inner.pending).len();
        let h = lock(&self.inner.health);
        StoreHealth {
            reachable: h.reachable,
            last_error: h.last_error.clone(),
            queued,
            last_ok: h.last_ok,
            dropped: h.dropped,
        }
    }

    /// The store behind the queue, for reads.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    /// Writes everything queued now, once; the first storage failure is returned
    /// and the writes it stopped stay queued.
    pub async fn flush_now(&self) -> Result<(), Error> {
        let _one = self.inner.flushing.lock().await;
        let queued = lock(&self.inner.pending).len();
        for _ in 0..queued.div_ceil(self.inner.config.batch) {
            self.inner.flush_batch().await?;
        }
        Ok(())
    }

    /// Flushes, retrying with back-off, until nothing is queued or `deadline`
    /// passes; returns how many writes are still queued (0 = all stored).
    pub async fn drain(&self, deadline: Instant) -> usize {
        let mut failures = 0;
        loop {
            match tokio::time::timeout_at(deadline, self.flush_now()).await {
                Ok(Ok(())) if self.queued() == 0 => return 0,
                Ok(Ok(())) => failures = 0,
                Ok(Err(_)) => {
                    failures += 1;
                    let wake = Instant::now() + self.inner.config.retry.delay(failures, rand::random());
                    if wake >= deadline {
                        return self.queued();
                    }
                    tokio::time::sleep_until(wake).await;
                }
                Err(_) => return self.queued(),
            }
        }
    }

    /// The background flusher; returns when `stop` is cancelled (then call `drain`).
    pub async fn run(self, stop: CancellationToken) {
        let mut failures = 0u32;
        let mut wait = Duration::ZERO;
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => return,
                () = tokio::time::sleep(wait) => {}
                () = self.inner.wake.notified(), if failures == 0 => {}
            }
            match self.inner.tick().await {
                Ok(()) if self.queued() >= self.inner.config.batch => (failures, wait) = (0, Duration::ZERO),
                Ok(()) => (failures, wait) = (0, self.inner.config.flush_every),
                Err(_) => {
                    failures = failures.saturating_add(1);
                    wait = self.inner.config.retry.delay(failures, rand::random());
                }
            }
        }
    }

    fn queued(&self) -> usize {
        lock(&self.inner.pending).len()
    }
}

impl Inner {
    /// One flush by `run`: a batch when writes wait, else a ping when one is due.
    async fn tick(&self) -> Result<(), Error> {
        let _one = self.flushing.lock().await;
        if !lock(&self.pending).is_empty() {
            return self.flush_batch().await;
        }
        let last = lock(&self.health).last_contact;
        if last.is_some_and(|at| at.elapsed() < self.config.ping_every) {
            return Ok(());
        }
        let answer = self.store.ping().await;
        self.observe(answer.as_ref().err());
        answer
    }

    /// Stores up to one batch, in order, stopping at the first failure worth retrying.
    async fn flush_batch(&self) -> Result<(), Error> {
        let ops = lock(&self.pending).take(self.config.batch);
        for op in ops {
            match self.apply(&op).await {
                Err(e) if retry::is_permanent(&e) => self.settle_refused(op, e).await?,
                Err(e) => return Err(e),
                Ok(()) => lock(&self.pending).done(&op),
            }
        }
        Ok(())
    }

    /// The database refused `op` for good: retry its roll-ups one by one so only
    /// the bad ones are given up.
    async fn settle_refused(&self, op: Op, error: Error) -> Result<(), Error> {
        let Op::Rollups(rows) = op else {
            self.give_up(&op, &error);
            return Ok(());
        };
        if rows.len() == 1 {
            self.give_up(&Op::Rollups(rows), &error);
            return Ok(());
        }
        for row in rows {
            let one = Op::Rollups(vec![row]);
            match self.apply(&one).await {
                Ok(()) => lock(&self.pending).done(&one),
                Err(e) if retry::is_permanent(&e) => self.give_up(&one, &e),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn give_up(&self, op: &Op, error: &Error) {
        tracing::error!(write = ?op, error = %error, "storage refused a write for good; dropping it");
        lock(&self.pending).done(op);
        lock(&self.health).dropped += 1;
    }

    async fn apply(&self, op: &Op) -> Result<(), Error> {
        let store = &self.store;
        let result = match op {
            Op::Rollups(rows) => store.save_rollups(&rows.iter().map(|(_, r)| r.clone()).collect::<Vec<_>>()).await,
            Op::Incident(_, i) => store.save_incident(i).await,
            Op::Migration(_, m) => store.save_migration(m).await,
            Op::Delivery(_, d) => store.save_delivery(d).await,
            Op::Append(Ordered::Backup(b)) => store.record_backup(b).await,
            Op::Append(Ordered::GateDecision(d)) => store.record_gate_decision(d).await,
            Op::Append(Ordered::Action(a)) => store.log_action(a).await,
        };
        let refused = result.as_ref().err().filter(|e| retry::is_permanent(e));
        self.observe(if refused.is_some() { None } else { result.as_ref().err() });
        result
    }

    /// Records that storage answered (`None`, or a refusal of the data) or not.
    fn observe(&self, failure: Option<&Error>) {
        let mut h = lock(&self.health);
        h.last_contact = Some(Instant::now());
        match failure {
            None => {
                if !h.reachable && h.last_error.is_some() {
                    tracing::info!("storage answers again");
                }
                h.reachable = true;
                h.last_ok = Some(self.clock.now());
            }
            Some(e) => {
                if h.reachable || h.last_error.is_none() {
                    tracing::warn!(error = %e, "storage unreachable; writes are queued and retried");
                }
                h.reachable = false;
                h.last_error = Some(e.to_string());
            }
        }
    }
}

impl std::fmt::Debug for StoreWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreWriter").field("health", &self.health()).finish_non_exhaustive()
    }
}

impl From<MinuteRollup> for Write {
    fn from(r: MinuteRollup) -> Self {
        Self::Rollup(r)
    }
}

impl From<Incident> for Write {
    fn from(i: Incident) -> Self {
        Self::Incident(i)
    }
}

impl From<Migration> for Write {
    fn from(m: Migration) -> Self {
        Self::Migration(m)
    }
}

impl From<Delivery> for Write {
    fn from(d: Delivery) -> Self {
        Self::Delivery(d)
    }
}

impl From<Backup> for Write {
    fn from(b: Backup) -> Self {
        Self::Backup(b)
    }
}

impl From<GateDecision> for Write {
    fn from(d: GateDecision) -> Self {
        Self::GateDecision(d)
    }
}

impl From<ActionRecord> for Write {
    fn from(a: ActionRecord) -> Self {
        Self::Action(a)
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests;
