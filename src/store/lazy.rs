//! A store that opens itself on first use and keeps trying until it can:
//! Guardian starts and probes even when its database is down at boot, and
//! the write queue fills in once the database comes up.

use std::sync::Arc;

use async_trait::async_trait;
use jiff::Timestamp;
use tokio::sync::OnceCell;

use super::{Pruned, Result, Store};
use crate::audit::ActionRecord;
use crate::config::Environment;
use crate::gate::{Backup, GateDecision};
use crate::incident::Incident;
use crate::migration::Migration;
use crate::notify::Delivery;
use crate::slo::MinuteRollup;

pub struct LazyStore {
    url: String,
    inner: OnceCell<Arc<dyn Store>>,
}

impl LazyStore {
    pub fn new(url: &str) -> Self {
        Self { url: url.to_string(), inner: OnceCell::new() }
    }

    async fn get(&self) -> Result<&Arc<dyn Store>> {
        self.inner.get_or_try_init(|| super::open(&self.url)).await
    }
}

#[async_trait]
impl Store for LazyStore {
    async fn ping(&self) -> Result<()> {
        self.get().await?.ping().await
    }
    async fn save_rollups(&self, rows: &[MinuteRollup]) -> Result<()> {
        self.get().await?.save_rollups(rows).await
    }
    async fn rollups_between(&self, from: i64, to: i64, hourly: bool) -> Result<Vec<MinuteRollup>> {
        self.get().await?.rollups_between(from, to, hourly).await
    }
    async fn save_incident(&self, incident: &Incident) -> Result<()> {
        self.get().await?.save_incident(incident).await
    }
    async fn incidents(&self, limit: u32) -> Result<Vec<Incident>> {
        self.get().await?.incidents(limit).await
    }
    async fn record_backup(&self, backup: &Backup) -> Result<()> {
        self.get().await?.record_backup(backup).await
    }
    async fn latest_backup(&self, environment: Environment) -> Result<Option<Backup>> {
        self.get().await?.latest_backup(environment).await
    }
    async fn save_migration(&self, migration: &Migration) -> Result<()> {
        self.get().await?.save_migration(migration).await
    }
    async fn migrations(&self, open_only: bool) -> Result<Vec<Migration>> {
        self.get().await?.migrations(open_only).await
    }
    async fn record_gate_decision(&self, decision: &GateDecision) -> Result<()> {
        self.get().await?.record_gate_decision(decision).await
    }
    async fn gate_decisions(&self, limit: u32) -> Result<Vec<GateDecision>> {
        self.get().await?.gate_decisions(limit).await
    }
    async fn log_action(&self, action: &ActionRecord) -> Result<()> {
        self.get().await?.log_action(action).await
    }
    async fn actions(&self, limit: u32) -> Result<Vec<ActionRecord>> {
        self.get().await?.actions(limit).await
    }
    async fn save_delivery(&self, delivery: &Delivery) -> Result<()> {
        self.get().await?.save_delivery(delivery).await
    }
    async fn deliveries_since(&self, since: Timestamp) -> Result<Vec<Delivery>> {
        self.get().await?.deliveries_since(since).await
    }
    async fn prune(&self, before: Timestamp) -> Result<Pruned> {
        self.get().await?.prune(before).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn it_fails_while_storage_is_unreachable_and_opens_once_it_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("not-yet").join("g.db");
        let lazy = LazyStore::new(&format!("sqlite://{}", missing.display()));
        assert!(lazy.ping().await.is_err(), "the directory does not exist yet");
        std::fs::create_dir_all(missing.parent().unwrap()).unwrap();
        lazy.ping().await.unwrap();
        assert!(lazy.actions(10).await.unwrap().is_empty());
    }
}
