//! Owns `MemoryStore`: the `Store` contract kept in process memory, for the
//! demo and for tests that need a store without a database (paused-time
//! tests among them). It keeps the SQL backends' rules, including
//! millisecond timestamps, so the same contract tests pass against it.
//! Everything is lost at exit.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;

use crate::audit::ActionRecord;
use crate::config::Environment;
use crate::gate::{Backup, GateDecision};
use crate::incident::Incident;
use crate::migration::Migration;
use crate::notify::Delivery;
use crate::slo::MinuteRollup;
use crate::store::{Pruned, Result, Store};

#[derive(Debug, Default)]
pub struct MemoryStore {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    rollups: BTreeMap<(i64, String), MinuteRollup>,
    incidents: BTreeMap<String, Incident>,
    backups: BTreeMap<(&'static str, String), Backup>,
    migrations: BTreeMap<String, Migration>,
    deliveries: BTreeMap<(String, String), Delivery>,
    /// In write order, like the SQL tables' `seq`.
    gate_decisions: Vec<GateDecision>,
    actions: Vec<ActionRecord>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What SQL keeps of a timestamp: whole milliseconds.
fn ms(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

/// What SQL keeps of a latency: whole microseconds.
fn whole_micros(d: Duration) -> Duration {
    Duration::from_micros(u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

fn newest_first<T, K: Ord>(items: impl Iterator<Item = T>, key: impl Fn(&T) -> K, limit: Option<u32>) -> Vec<T> {
    let mut items: Vec<T> = items.collect();
    items.reverse(); // later writes first among equal keys
    items.sort_by_key(|item| std::cmp::Reverse(key(item)));
    items.truncate(limit.map_or(usize::MAX, |n| n as usize));
    items
}

#[async_trait]
impl Store for MemoryStore {
    async fn ping(&self) -> Result<()> {
        Ok(())
    }

    async fn save_rollups(&self, rows: &[MinuteRollup]) -> Result<()> {
        let mut s = self.state();
        for r in rows {
            s.rollups.insert((r.minute, r.check.clone()), r.clone());
        }
        Ok(())
    }

    async fn rollups_between(&self, from: i64, to: i64, hourly: bool) -> Result<Vec<MinuteRollup>> {
        let state = self.state();
        let rows = state.rollups.range((from, String::new())..(to, String::new())).map(|(_, r)| r.clone());
        if !hourly {
            return Ok(rows.collect());
        }
        let mut sums: BTreeMap<(i64, String), MinuteRollup> = BTreeMap::new();
        for r in rows {
            let hour = r.minute.div_euclid(60) * 60;
            let key = (hour, r.check.clone());
            let sum = sums.entry(key).or_insert(MinuteRollup { check: r.check, minute: hour, good: 0, total: 0 });
            sum.good += r.good;
            sum.total += r.total;
        }
        Ok(sums.into_values().collect())
    }

    async fn save_incident(&self, incident: &Incident) -> Result<()> {
        let mut i = incident.clone();
        i.started_at = ms(i.started_at);
        i.ended_at = i.ended_at.map(ms);
        i.worst_latency = whole_micros(i.worst_latency);
        i.p95_latency = whole_micros(i.p95_latency);
        self.state().incidents.insert(i.id.clone(), i);
        Ok(())
    }

    async fn incidents(&self, limit: u32) -> Result<Vec<Incident>> {
        let s = self.state();
        Ok(newest_first(s.incidents.values().cloned(), |i| (i.started_at, i.id.clone()), Some(limit)))
    }

    async fn record_backup(&self, backup: &Backup) -> Result<()> {
        let b = Backup { completed_at: ms(backup.completed_at), ..backup.clone() };
        self.state().backups.insert((b.environment.as_str(), b.id.clone()), b);
        Ok(())
    }

    async fn latest_backup(&self, environment: Environment) -> Result<Option<Backup>> {
        let s = self.state();
        let ok = s.backups.values().filter(|b| b.ok && b.environment == environment).cloned();
        Ok(newest_first(ok, |b| (b.completed_at, b.id.clone()), Some(1)).pop())
    }

    async fn save_migration(&self, migration: &Migration) -> Result<()> {
        let mut m = migration.clone();
        m.started_at = ms(m.started_at);
        m.finished_at = m.finished_at.map(ms);
        self.state().migrations.insert(m.id.clone(), m);
        Ok(())
    }

    async fn migrations(&self, open_only: bool) -> Result<Vec<Migration>> {
        let s = self.state();
        let wanted = s.migrations.values().filter(|m| !open_only || m.finished_at.is_none()).cloned();
        Ok(newest_first(wanted, |m| (m.started_at, m.id.clone()), None))
    }

    async fn record_gate_decision(&self, decision: &GateDecision) -> Result<()> {
        let d = GateDecision { evaluated_at: ms(decision.evaluated_at), ..decision.clone() };
        let mut s = self.state();
        if !s.gate_decisions.iter().any(|g| g.environment == d.environment && g.evaluated_at == d.evaluated_at) {
            s.gate_decisions.push(d);
        }
        Ok(())
    }

    async fn gate_decisions(&self, limit: u32) -> Result<Vec<GateDecision>> {
        let s = self.state();
        Ok(newest_first(s.gate_decisions.iter().cloned(), |d| d.evaluated_at, Some(limit)))
    }

    async fn log_action(&self, action: &ActionRecord) -> Result<()> {
        let mut s = self.state();
        if !s.actions.iter().any(|a| a.id == action.id) {
            s.actions.push(ActionRecord { at: ms(action.at), ..action.clone() });
        }
        Ok(())
    }

    async fn actions(&self, limit: u32) -> Result<Vec<ActionRecord>> {
        let s = self.state();
        Ok(newest_first(s.actions.iter().cloned(), |a| a.at, Some(limit)))
    }

    async fn save_delivery(&self, delivery: &Delivery) -> Result<()> {
        let mut s = self.state();
        let key = (delivery.key.clone(), delivery.channel.clone());
        if s.deliveries.get(&key).is_some_and(|stored| stored.state.is_final()) {
            return Ok(());
        }
        let d = Delivery {
            created_at: ms(delivery.created_at),
            next_attempt_at: ms(delivery.next_attempt_at),
            done_at: delivery.done_at.map(ms),
            ..delivery.clone()
        };
        s.deliveries.insert(key, d);
        Ok(())
    }

    async fn deliveries_since(&self, since: Timestamp) -> Result<Vec<Delivery>> {
        // SQL compares whole milliseconds on both sides.
        let since = ms(since);
        let s = self.state();
        let mut found: Vec<Delivery> = s.deliveries.values().filter(|d| d.created_at >= since).cloned().collect();
        found.sort_by(|a, b| (a.created_at, &a.key, &a.channel).cmp(&(b.created_at, &b.key, &b.channel)));
        Ok(found)
    }

    async fn prune(&self, before: Timestamp) -> Result<Pruned> {
        let mut s = self.state();
        let minute = before.as_second().div_euclid(60);
        let closed_before = |end: Option<Timestamp>| end.is_some_and(|t| t < before);
        let before_ms = ms(before);
        Ok(Pruned {
            rollups: retain(&mut s.rollups, |(m, _), _| *m >= minute),
            incidents: retain(&mut s.incidents, |_, i| !closed_before(i.ended_at)),
            backups: retain(&mut s.backups, |_, b| b.completed_at >= before),
            migrations: retain(&mut s.migrations, |_, m| !closed_before(m.finished_at)),
            deliveries: retain(&mut s.deliveries, |_, d| d.created_at >= before_ms),
            gate_decisions: retain_vec(&mut s.gate_decisions, |d| d.evaluated_at >= before),
            actions: retain_vec(&mut s.actions, |a| a.at >= before),
        })
    }
}

fn retain<K: Ord, V>(map: &mut BTreeMap<K, V>, keep: impl Fn(&K, &V) -> bool) -> u64 {
    let before = map.len();
    map.retain(|k, v| keep(k, v));
    (before - map.len()) as u64
}

fn retain_vec<T>(items: &mut Vec<T>, keep: impl Fn(&T) -> bool) -> u64 {
    let before = items.len();
    items.retain(keep);
    (before - items.len()) as u64
}
