//! Owns persistence: the `Store` trait (domain words only), the sqlx backend
//! that serves both `sqlite://` and `postgres://` through one code path (`sql`,
//! with its migrations under `migrations/`), an in-memory store for the demo
//! and tests (`memory`), and the write queue that keeps probing and the gate
//! going while storage is down (`queue`: `StoreWriter`, `StoreHealth`).

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::audit::ActionRecord;
use crate::config::Environment;
use crate::gate::{Backup, GateDecision};
use crate::incident::Incident;
use crate::migration::Migration;
use crate::notify::Delivery;
use crate::slo::MinuteRollup;

mod lazy;
pub mod memory;
mod queue;
mod sql;

pub use lazy::LazyStore;
pub use queue::{Backoff, QueueConfig, StoreHealth, StoreWriter, Write};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open storage {url}: {source}")]
    Open { url: String, source: sqlx::Error },
    #[error("cannot migrate storage {url}: {source}")]
    Migrate { url: String, source: sqlx::migrate::MigrateError },
    #[error("storage {op} failed: {source}")]
    Query { op: &'static str, source: sqlx::Error },
    #[error("storage holds a bad {what} row: {detail}")]
    BadRow { what: &'static str, detail: String },
    #[error("unsupported storage URL {0:?}: use sqlite://PATH or postgres://…")]
    Unsupported(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// How many rows a prune removed, by kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub rollups: u64,
    pub incidents: u64,
    pub gate_decisions: u64,
    pub actions: u64,
    pub backups: u64,
    pub migrations: u64,
    pub deliveries: u64,
}

/// Everything Guardian keeps across restarts. Writes are idempotent (upserts
/// by key or inserts that ignore a known id), so a retried write is harmless.
/// Timestamps are kept to the millisecond and latencies to the microsecond.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Reachability, for `/readyz`.
    async fn ping(&self) -> Result<()>;
    /// Upserts absolute per-minute counts for (check, minute).
    async fn save_rollups(&self, rows: &[MinuteRollup]) -> Result<()>;
    /// Every roll-up from `minute` (unix minutes) on.
    async fn rollups_since(&self, minute: i64) -> Result<Vec<MinuteRollup>> {
        self.rollups_between(minute, i64::MAX, false).await
    }
    /// Roll-ups with `from <= minute < to`. With `hourly`, summed per check
    /// and hour (each row's `minute` is its hour's first minute), so a long
    /// window restores in 60 times fewer rows.
    async fn rollups_between(&self, from: i64, to: i64, hourly: bool) -> Result<Vec<MinuteRollup>>;
    /// Upserts by incident id.
    async fn save_incident(&self, incident: &Incident) -> Result<()>;
    /// Newest first.
    async fn incidents(&self, limit: u32) -> Result<Vec<Incident>>;
    /// Upserts by (environment, id).
    async fn record_backup(&self, backup: &Backup) -> Result<()>;
    /// The newest successful backup of that environment.
    async fn latest_backup(&self, environment: Environment) -> Result<Option<Backup>>;
    /// Upserts by migration id.
    async fn save_migration(&self, migration: &Migration) -> Result<()>;
    /// Newest first; only unfinished ones when `open_only`.
    async fn migrations(&self, open_only: bool) -> Result<Vec<Migration>>;
    /// Inserts unless that environment already has a decision at that millisecond.
    async fn record_gate_decision(&self, decision: &GateDecision) -> Result<()>;
    /// Newest first.
    async fn gate_decisions(&self, limit: u32) -> Result<Vec<GateDecision>>;
    /// Inserts unless an action with this id is already logged.
    async fn log_action(&self, action: &ActionRecord) -> Result<()>;
    /// Newest first.
    async fn actions(&self, limit: u32) -> Result<Vec<ActionRecord>>;
    /// Upserts by (key, channel) while the stored row is pending; a delivered
    /// or abandoned row is final and a later save leaves it as it is, so a
    /// stale retry landing late cannot send it again.
    async fn save_delivery(&self, delivery: &Delivery) -> Result<()>;
    /// Every delivery created at or after `since`, oldest first (then by key and channel).
    async fn deliveries_since(&self, since: Timestamp) -> Result<Vec<Delivery>>;
    /// Deletes everything older than `before` (open incidents and migrations
    /// are kept; deliveries go by creation, whatever their state).
    async fn prune(&self, before: Timestamp) -> Result<Pruned>;
}

/// Opens `sqlite://PATH` (created if missing, WAL mode; `sqlite::memory:` for
/// tests) or `postgres://…` (fails within seconds when unreachable), and
/// brings its schema up to date.
pub async fn open(url: &str) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(sql::SqlStore::open(url).await?))
}
