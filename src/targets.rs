//! Owns the live view of the guarded targets: their rollout state as the
//! cluster pushes it (a watch, not polling), the migrations declared on
//! them, and so whether each is armed. Arming has effects elsewhere, all
//! applied here so they never disagree: the checks that guard an armed
//! target get confirmation probes and `no_drop` baselines, the gate hears
//! which targets are rolling out, and the metrics say so.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use futures_util::StreamExt;
use jiff::Timestamp;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::cluster::{Cluster, RolloutState, TargetEvent, TargetRef};
use crate::config::{Config, TargetKind};
use crate::gatekeeper::Gatekeeper;
use crate::metrics::Metrics;
use crate::migration::{Migration, OnBreach};
use crate::probe::{Baselines, Confirmations};
use crate::store::{Store, StoreWriter};

/// How often migrations declared or finished on other replicas are read.
const SYNC_EVERY: std::time::Duration = std::time::Duration::from_secs(2);
/// A migration nobody finished (the deploy script died) disarms after this:
/// an armed target left forever would blame the next unrelated breach on it.
pub const MIGRATION_MAX_AGE: jiff::SignedDuration = jiff::SignedDuration::from_hours(6);

pub struct Targets {
    book: Mutex<BTreeMap<TargetRef, Live>>,
    /// Finished here: storage may still show them open until the queued write lands.
    finished_here: Mutex<std::collections::HashSet<String>>,
    clock: Arc<dyn Clock>,
    effects: Effects,
}

/// Where arming shows.
pub struct Effects {
    pub confirmations: Arc<Confirmations>,
    pub baselines: Arc<Baselines>,
    pub gatekeeper: Arc<Gatekeeper>,
    pub metrics: Arc<Metrics>,
    pub writer: StoreWriter,
}

#[derive(Debug, Clone)]
struct Live {
    checks: Vec<String>,
    state: Option<RolloutState>,
    /// Why the state is unknown, when it is.
    unknown: Option<String>,
    migrations: Vec<Migration>,
    armed_since: Option<Timestamp>,
}

impl Live {
    fn armed(&self) -> bool {
        self.state.as_ref().is_some_and(|s| s.rolling_out) || !self.migrations.is_empty()
    }

    /// The strictest breach policy of the open migrations: one declared
    /// `pause` means rolling back would make things worse.
    fn on_breach(&self) -> Option<OnBreach> {
        let policies = self.migrations.iter().map(|m| m.on_breach);
        policies.reduce(|a, b| if a == OnBreach::Pause || b == OnBreach::Pause { OnBreach::Pause } else { a })
    }
}

/// A target as the guard and `/api/v1/status` see it.
#[derive(Debug, Clone, Serialize)]
pub struct TargetStatus {
    pub target: String,
    pub checks: Vec<String>,
    pub armed: bool,
    pub armed_since: Option<Timestamp>,
    pub rolling_out: Option<bool>,
    pub paused: Option<bool>,
    pub revision: Option<u64>,
    pub template: Option<String>,
    pub rolled_back_to: Option<String>,
    /// Why the rollout state is not known, when it is not.
    pub state_unknown: Option<String>,
    pub migrations: Vec<Migration>,
    /// The longest a breach of its checks can take to be confirmed.
    pub detection_bound_seconds: f64,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MigrationError {
    #[error("{target:?} is not a guarded target; guard.targets has: {known}")]
    UnknownTarget { target: String, known: String },
    #[error("no migration {0:?}")]
    Unknown(String),
}

impl Targets {
    pub fn new(config: &Config, clock: Arc<dyn Clock>, effects: Effects) -> Self {
        let book = config
            .guard
            .targets
            .iter()
            .map(|t| {
                let live = Live {
                    checks: t.checks.clone(),
                    state: None,
                    unknown: Some("not seen yet".into()),
                    migrations: Vec::new(),
                    armed_since: None,
                };
                (TargetRef::of(t), live)
            })
            .collect();
        Self { book: Mutex::new(book), finished_here: Mutex::default(), clock, effects }
    }

    pub fn refs(&self) -> Vec<TargetRef> {
        self.lock().keys().cloned().collect()
    }

    /// Follows the cluster's watch until `stop`.
    pub async fn watch_loop(self: Arc<Self>, cluster: Arc<dyn Cluster>, stop: CancellationToken) {
        let refs = self.refs();
        if refs.is_empty() {
            return;
        }
        let mut events = cluster.watch(refs);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                next = events.next() => match next {
                    Some(event) => self.apply(event),
                    None => {
                        tracing::error!("the cluster watch ended; rollout states are no longer followed");
                        return;
                    }
                },
            }
        }
    }

    /// Takes one observation of a target.
    pub fn apply(&self, event: TargetEvent) {
        self.update(|book| {
            let Some(live) = book.get_mut(&event.target) else { return };
            match event.state {
                Ok(state) => {
                    let changed = live.state.as_ref().is_none_or(|s| s.rolling_out != state.rolling_out);
                    if changed {
                        tracing::info!(target = %event.target, rolling_out = state.rolling_out,
                            revision = ?state.revision, paused = state.paused, "rollout state");
                    }
                    live.state = Some(state);
                    live.unknown = None;
                }
                // Keep the last known state: a watch that hiccups must not disarm a rollout.
                Err(e) => {
                    if live.unknown.is_none() {
                        tracing::warn!(target = %event.target, error = %e, "rollout state unknown");
                    }
                    if matches!(e, crate::cluster::Error::NotFound(_)) {
                        live.state = None;
                    }
                    live.unknown = Some(e.to_string());
                }
            }
        });
    }

    /// Arms `migration.target` until the migration is finished.
    pub fn declare(&self, migration: Migration) -> Result<(), MigrationError> {
        let target = self.resolve(&migration.target)?;
        self.effects.writer.enqueue(migration.clone());
        tracing::info!(migration = %migration.id, target = %target, on_breach = migration.on_breach.as_str(),
            "migration declared");
        self.update(|book| {
            if let Some(live) = book.get_mut(&target) {
                live.migrations.retain(|m| m.id != migration.id);
                live.migrations.push(migration);
            }
        });
        Ok(())
    }

    /// Disarms what the migration armed; finishing twice is harmless.
    pub fn finish(&self, id: &str) -> Result<Migration, MigrationError> {
        let now = self.clock.now();
        let mut finished = None;
        self.update(|book| {
            for live in book.values_mut() {
                if let Some(i) = live.migrations.iter().position(|m| m.id == id) {
                    let mut m = live.migrations.remove(i);
                    m.finished_at = Some(now);
                    finished = Some(m);
                }
            }
        });
        let m = finished.ok_or_else(|| MigrationError::Unknown(id.to_string()))?;
        self.finished_here.lock().unwrap_or_else(|p| p.into_inner()).insert(m.id.clone());
        tracing::info!(migration = %m.id, target = %m.target, "migration finished");
        self.effects.writer.enqueue(m.clone());
        Ok(m)
    }

    /// Follows migrations through storage until `stop`, so a migration
    /// declared or finished on any replica arms or disarms every replica
    /// (within `SYNC_EVERY`), and expires those older than `MIGRATION_MAX_AGE`.
    /// Its first round, at start, reads back migrations left open before a restart.
    pub async fn sync_loop(self: Arc<Self>, store: Arc<dyn Store>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(SYNC_EVERY);
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.sync(store.as_ref()).await {
                Ok(()) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %e, "cannot read migrations from storage; this replica keeps its own");
                }
                Err(_) => {}
            }
        }
    }

    /// One round of `sync_loop`.
    pub async fn sync(&self, store: &dyn Store) -> crate::store::Result<()> {
        let stored = store.migrations(false).await?;
        let now = self.clock.now();
        let finished: std::collections::HashSet<&str> =
            stored.iter().filter(|m| m.finished_at.is_some()).map(|m| m.id.as_str()).collect();
        let known: std::collections::HashSet<String> =
            self.lock().values().flat_map(|l| l.migrations.iter().map(|m| m.id.clone())).collect();
        let elsewhere: Vec<&Migration> = {
            let mut here = self.finished_here.lock().unwrap_or_else(|p| p.into_inner());
            // Once storage shows it finished, it needs no more remembering.
            here.retain(|id| !finished.contains(id.as_str()));
            stored
                .iter()
                .filter(|m| m.finished_at.is_none() && !known.contains(&m.id) && !here.contains(&m.id))
                .collect()
        };
        if known.iter().any(|id| finished.contains(id.as_str())) || !elsewhere.is_empty() {
            self.update(|book| {
                for live in book.values_mut() {
                    live.migrations.retain(|m| !finished.contains(m.id.as_str()));
                }
                for m in &elsewhere {
                    if let Some(live) = self.resolve_in(book, &m.target).and_then(|t| book.get_mut(&t)) {
                        tracing::info!(migration = %m.id, target = %m.target, "migration declared on another replica");
                        live.migrations.push((*m).clone());
                    }
                }
            });
        }
        let expired: Vec<String> = self
            .lock()
            .values()
            .flat_map(|l| l.migrations.iter())
            .filter(|m| now.duration_since(m.started_at) > MIGRATION_MAX_AGE)
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::warn!(migration = %id, "migration never finished; disarming it after {MIGRATION_MAX_AGE:#}");
            let _ = self.finish(&id);
        }
        Ok(())
    }

    /// Finishes a migration this replica does not hold (declared on another):
    /// recorded in storage, which every replica follows.
    pub async fn finish_stored(&self, store: &dyn Store, id: &str) -> crate::store::Result<Option<Migration>> {
        let stored = store.migrations(false).await?;
        let Some(mut m) = stored.into_iter().find(|m| m.id == id) else { return Ok(None) };
        if m.finished_at.is_none() {
            m.finished_at = Some(self.clock.now());
            store.save_migration(&m).await?;
            tracing::info!(migration = %m.id, target = %m.target, "migration finished (declared on another replica)");
        }
        Ok(Some(m))
    }

    fn resolve_in(&self, book: &BTreeMap<TargetRef, Live>, text: &str) -> Option<TargetRef> {
        let parts: Vec<&str> = text.split('/').collect();
        match parts.as_slice() {
            [ns, kind, name] => {
                book.keys().find(|t| t.namespace == *ns && t.name == *name && kind_matches(t.kind, kind)).cloned()
            }
            _ => None,
        }
    }

    /// `NAMESPACE/KIND/NAME` to a guarded target (the kind in any case).
    pub fn resolve(&self, text: &str) -> Result<TargetRef, MigrationError> {
        let book = self.lock();
        let parts: Vec<&str> = text.split('/').collect();
        let found = match parts.as_slice() {
            [ns, kind, name] => {
                book.keys().find(|t| t.namespace == *ns && t.name == *name && kind_matches(t.kind, kind)).cloned()
            }
            _ => None,
        };
        found.ok_or_else(|| MigrationError::UnknownTarget {
            target: text.to_string(),
            known: if book.is_empty() {
                "nothing".into()
            } else {
                book.keys().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            },
        })
    }

    /// Armed targets that `check` guards, with when they armed and their
    /// migrations' breach policy.
    pub fn armed_for(&self, check: &str) -> Vec<(TargetRef, Timestamp, Option<OnBreach>)> {
        let book = self.lock();
        let armed = book.iter().filter(|(_, l)| l.checks.iter().any(|c| c == check));
        armed.filter_map(|(t, l)| l.armed_since.map(|since| (t.clone(), since, l.on_breach()))).collect()
    }

    /// Every armed target with its checks and arming time.
    pub fn armed(&self) -> Vec<(TargetRef, Vec<String>, Timestamp)> {
        let book = self.lock();
        book.iter().filter_map(|(t, l)| l.armed_since.map(|s| (t.clone(), l.checks.clone(), s))).collect()
    }

    /// What the target's open migrations say a breach should do (`None`: none open).
    pub fn on_breach(&self, target: &TargetRef) -> Option<OnBreach> {
        self.lock().get(target).and_then(Live::on_breach)
    }

    pub fn status(&self, config: &Config) -> Vec<TargetStatus> {
        let bound = |checks: &[String]| {
            let each = config.checks.iter().filter(|c| checks.contains(&c.name));
            each.map(|c| crate::guard::check_detection_bound(config, c)).max().unwrap_or_default()
        };
        let book = self.lock();
        book.iter()
            .map(|(t, l)| TargetStatus {
                target: t.to_string(),
                checks: l.checks.clone(),
                armed: l.armed(),
                armed_since: l.armed_since,
                rolling_out: l.state.as_ref().map(|s| s.rolling_out),
                paused: l.state.as_ref().map(|s| s.paused),
                revision: l.state.as_ref().and_then(|s| s.revision),
                template: l.state.as_ref().map(|s| s.template.clone()),
                rolled_back_to: l.state.as_ref().and_then(|s| s.rolled_back_to.clone()),
                state_unknown: l.unknown.clone(),
                migrations: l.migrations.clone(),
                detection_bound_seconds: bound(&l.checks).as_secs_f64(),
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<TargetRef, Live>> {
        self.book.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Changes the book, then re-applies arming everywhere it shows.
    fn update(&self, change: impl FnOnce(&mut BTreeMap<TargetRef, Live>)) {
        let now = self.clock.now();
        let mut book = self.lock();
        change(&mut book);
        let mut rolling = Vec::new();
        for (t, live) in book.iter_mut() {
            let armed = live.armed();
            match (armed, live.armed_since) {
                (true, None) => {
                    live.armed_since = Some(now);
                    tracing::info!(target = %t, "guard armed");
                }
                (false, Some(_)) => {
                    live.armed_since = None;
                    tracing::info!(target = %t, "guard disarmed");
                }
                _ => {}
            }
            let rolling_out = live.state.as_ref().is_some_and(|s| s.rolling_out);
            self.effects.metrics.guard.set_rolling_out(t, rolling_out);
            if rolling_out {
                rolling.push(t.to_string());
            }
        }
        let mut checks: BTreeMap<&str, bool> = BTreeMap::new();
        for live in book.values() {
            for c in &live.checks {
                *checks.entry(c.as_str()).or_default() |= live.armed_since.is_some();
            }
        }
        for (check, armed) in checks {
            self.effects.confirmations.set_armed(check, armed);
            if armed {
                self.effects.baselines.arm(check);
            } else {
                self.effects.baselines.disarm(check);
            }
        }
        drop(book);
        self.effects.gatekeeper.set_rollouts_in_progress(rolling);
    }
}

fn kind_matches(kind: TargetKind, text: &str) -> bool {
    let name = match kind {
        TargetKind::Deployment => "deployment",
        TargetKind::Rollout => "rollout",
    };
    text.eq_ignore_ascii_case(name)
}
