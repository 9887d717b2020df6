//! Owns the writes waiting for storage and how they coalesce: a roll-up per
//! (check, minute), an incident or migration per id and a delivery per (key,
//! channel) (each holds absolute values, so the newest replaces the rest), and
//! backups, gate decisions and actions in the order they came. A delivery in
//! a final state is never replaced, as in the store: a stale retry queued
//! after it must not win the coalescing. A write leaves only once it is
//! stored: the flusher works on copies and marks them done, and a newer write
//! that arrived meanwhile (a higher version) is kept.

use std::collections::{BTreeMap, VecDeque};

use crate::audit::ActionRecord;
use crate::gate::{Backup, GateDecision};
use crate::incident::Incident;
use crate::migration::Migration;
use crate::notify::Delivery;
use crate::slo::MinuteRollup;
use crate::store::Write;

#[derive(Debug)]
struct Versioned<T> {
    version: u64,
    value: T,
}

/// One call to the store, built from queued writes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Op {
    /// (version, roll-up) pairs, written in one call.
    Rollups(Vec<(u64, MinuteRollup)>),
    Incident(u64, Incident),
    Migration(u64, Migration),
    Delivery(u64, Delivery),
    /// The oldest queued backup, gate decision or action.
    Append(Ordered),
}

/// A write kept in order rather than coalesced.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ordered {
    Backup(Backup),
    GateDecision(GateDecision),
    Action(ActionRecord),
}

#[derive(Debug, Default)]
pub(super) struct Pending {
    version: u64,
    rollups: BTreeMap<(String, i64), Versioned<MinuteRollup>>,
    incidents: BTreeMap<String, Versioned<Incident>>,
    migrations: BTreeMap<String, Versioned<Migration>>,
    deliveries: BTreeMap<(String, String), Versioned<Delivery>>,
    /// Versioned too, so `take` can interleave them with deliveries in queue order.
    appends: VecDeque<Versioned<Ordered>>,
}

impl Pending {
    pub(super) fn push(&mut self, write: Write) {
        self.version += 1;
        let version = self.version;
        match write {
            Write::Rollup(r) => {
                self.rollups.insert((r.check.clone(), r.minute), Versioned { version, value: r });
            }
            Write::Incident(i) => {
                self.incidents.insert(i.id.clone(), Versioned { version, value: i });
            }
            Write::Migration(m) => {
                self.migrations.insert(m.id.clone(), Versioned { version, value: m });
            }
            Write::Delivery(d) => self.push_delivery(d, version),
            Write::Backup(b) => self.appends.push_back(Versioned { version, value: Ordered::Backup(b) }),
            Write::GateDecision(d) => self.appends.push_back(Versioned { version, value: Ordered::GateDecision(d) }),
            Write::Action(a) => self.appends.push_back(Versioned { version, value: Ordered::Action(a) }),
        }
    }

    fn push_delivery(&mut self, d: Delivery, version: u64) {
        let key = (d.key.clone(), d.channel.clone());
        if self.deliveries.get(&key).is_some_and(|queued| queued.value.state.is_final()) {
            return;
        }
        self.deliveries.insert(key, Versioned { version, value: d });
    }

    pub(super) fn len(&self) -> usize {
        self.rollups.len() + self.incidents.len() + self.migrations.len() + self.deliveries.len() + self.appends.len()
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Copies of up to `max` queued writes as store calls: appends (the audit
    /// log, backups, gate answers) and notification deliveries, oldest first,
    /// then migrations, incidents, then roll-ups (one call). After an outage
    /// the few writes that matter most land first; a day of roll-ups waits
    /// behind them, not in front. They stay queued until `done`.
    pub(super) fn take(&self, max: usize) -> Vec<Op> {
        let mut ops = self.audit_like(max);
        let mut room = max.saturating_sub(count_writes(&ops));
        let migrations = self.migrations.values().take(room).map(|v| Op::Migration(v.version, v.value.clone()));
        ops.extend(migrations);
        room = max.saturating_sub(count_writes(&ops));
        let incidents = self.incidents.values().take(room).map(|v| Op::Incident(v.version, v.value.clone()));
        ops.extend(incidents);
        room = max.saturating_sub(count_writes(&ops));
        let rollups: Vec<_> = self.rollups.values().take(room).map(|v| (v.version, v.value.clone())).collect();
        if !rollups.is_empty() {
            ops.push(Op::Rollups(rollups));
        }
        ops
    }

    /// Appends and deliveries merged in the order queued (a coalesced delivery
    /// by its newest write), at most `max`.
    fn audit_like(&self, max: usize) -> Vec<Op> {
        let mut deliveries: Vec<&Versioned<Delivery>> = self.deliveries.values().collect();
        deliveries.sort_unstable_by_key(|d| d.version);
        let (mut appends, mut deliveries) = (self.appends.iter().peekable(), deliveries.into_iter().peekable());
        let mut ops = Vec::new();
        while ops.len() < max {
            let append_next = match (appends.peek(), deliveries.peek()) {
                (None, None) => break,
                (Some(a), Some(d)) => a.version < d.version,
                (a, _) => a.is_some(),
            };
            let op = if append_next {
                appends.next().map(|a| Op::Append(a.value.clone()))
            } else {
                deliveries.next().map(|d| Op::Delivery(d.version, d.value.clone()))
            };
            ops.extend(op);
        }
        ops
    }

    /// Forgets the writes of `op`, now stored, unless a newer one replaced them.
    /// Appends must be marked done in the order `take` gave them.
    pub(super) fn done(&mut self, op: &Op) {
        match op {
            Op::Rollups(rows) => {
                for (version, r) in rows {
                    remove_if(&mut self.rollups, &(r.check.clone(), r.minute), *version);
                }
            }
            Op::Incident(version, i) => remove_if(&mut self.incidents, &i.id, *version),
            Op::Migration(version, m) => remove_if(&mut self.migrations, &m.id, *version),
            Op::Delivery(version, d) => remove_if(&mut self.deliveries, &(d.key.clone(), d.channel.clone()), *version),
            Op::Append(_) => {
                self.appends.pop_front();
            }
        }
    }
}

fn count_writes(ops: &[Op]) -> usize {
    ops.iter().map(|op| if let Op::Rollups(rows) = op { rows.len() } else { 1 }).sum()
}

fn remove_if<K: Ord, T>(map: &mut BTreeMap<K, Versioned<T>>, key: &K, version: u64) {
    if map.get(key).is_some_and(|v| v.version == version) {
        map.remove(key);
    }
}

#[cfg(test)]
mod tests;
