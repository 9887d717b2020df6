//! Owns the one `Store` implementation, for `sqlite://` and `postgres://`
//! alike. Both go through sqlx's `Any` driver with the same statements:
//! `$N` placeholders (which sqlx's SQLite driver binds by number too) and
//! `ON CONFLICT` upserts (which both databases speak). Only the pool set-up
//! and the migration directory differ per backend (`connect`).

mod connect;
mod rows;

use async_trait::async_trait;
use jiff::Timestamp;
use sqlx::AnyPool;
use sqlx::any::AnyRow;

use crate::audit::ActionRecord;
use crate::config::Environment;
use crate::gate::{Backup, GateDecision};
use crate::incident::Incident;
use crate::migration::Migration;
use crate::notify::Delivery;
use crate::slo::MinuteRollup;
use crate::store::{Error, Pruned, Result, Store};

use rows::{count, flag, micros, millis};

const SAVE_ROLLUP: &str = "INSERT INTO rollups (check_name, minute, good, total) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (check_name, minute) DO UPDATE SET good = excluded.good, total = excluded.total";
const ROLLUPS_BETWEEN: &str = "SELECT check_name, minute, good, total FROM rollups \
     WHERE minute >= $1 AND minute < $2 ORDER BY minute, check_name";
const HOURLY_ROLLUPS_BETWEEN: &str = "SELECT check_name, (minute / 60) * 60 AS minute, \
     CAST(SUM(good) AS BIGINT) AS good, CAST(SUM(total) AS BIGINT) AS total FROM rollups \
     WHERE minute >= $1 AND minute < $2 GROUP BY check_name, minute / 60 ORDER BY 2, 1";
const SAVE_INCIDENT: &str = "INSERT INTO incidents (id, check_name, started_at_ms, ended_at_ms, \
     worst_latency_us, p95_latency_us, probes_total, probes_bad, revenue_at_risk_eur, reason) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (id) DO UPDATE SET \
     check_name = excluded.check_name, started_at_ms = excluded.started_at_ms, ended_at_ms = excluded.ended_at_ms, \
     worst_latency_us = excluded.worst_latency_us, p95_latency_us = excluded.p95_latency_us, \
     probes_total = excluded.probes_total, probes_bad = excluded.probes_bad, \
     revenue_at_risk_eur = excluded.revenue_at_risk_eur, reason = excluded.reason";
const INCIDENTS: &str = "SELECT id, check_name, started_at_ms, ended_at_ms, worst_latency_us, p95_latency_us, \
     probes_total, probes_bad, revenue_at_risk_eur, reason FROM incidents \
     ORDER BY started_at_ms DESC, id DESC LIMIT $1";
const RECORD_BACKUP: &str = "INSERT INTO backups (environment, id, completed_at_ms, ok) VALUES ($1, $2, $3, $4) \
     ON CONFLICT (environment, id) DO UPDATE SET completed_at_ms = excluded.completed_at_ms, ok = excluded.ok";
const LATEST_BACKUP: &str = "SELECT environment, id, completed_at_ms, ok FROM backups \
     WHERE environment = $1 AND ok = 1 ORDER BY completed_at_ms DESC, id DESC LIMIT 1";
const SAVE_MIGRATION: &str = "INSERT INTO migrations (id, target, description, on_breach, started_at_ms, \
     finished_at_ms) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET target = excluded.target, \
     description = excluded.description, on_breach = excluded.on_breach, started_at_ms = excluded.started_at_ms, \
     finished_at_ms = excluded.finished_at_ms";
const MIGRATIONS: &str = "SELECT id, target, description, on_breach, started_at_ms, finished_at_ms \
     FROM migrations ORDER BY started_at_ms DESC, id DESC";
const OPEN_MIGRATIONS: &str = "SELECT id, target, description, on_breach, started_at_ms, finished_at_ms \
     FROM migrations WHERE finished_at_ms IS NULL ORDER BY started_at_ms DESC, id DESC";
const RECORD_GATE_DECISION: &str = "INSERT INTO gate_decisions (environment, evaluated_at_ms, go, reasons) \
     VALUES ($1, $2, $3, $4) ON CONFLICT (environment, evaluated_at_ms) DO NOTHING";
const GATE_DECISIONS: &str = "SELECT environment, evaluated_at_ms, go, reasons FROM gate_decisions \
     ORDER BY evaluated_at_ms DESC, seq DESC LIMIT $1";
const LOG_ACTION: &str = "INSERT INTO actions (id, at_ms, target, action, outcome, incident, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING";
const ACTIONS: &str = "SELECT id, at_ms, target, action, outcome, incident, detail FROM actions \
     ORDER BY at_ms DESC, seq DESC LIMIT $1";
// The WHERE makes a final row (delivered, abandoned) immune to a late, stale write.
const SAVE_DELIVERY: &str = "INSERT INTO deliveries (key, channel, payload, created_at_ms, state, attempts, \
     next_attempt_at_ms, last_error, done_at_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) \
     ON CONFLICT (key, channel) DO UPDATE SET payload = excluded.payload, created_at_ms = excluded.created_at_ms, \
     state = excluded.state, attempts = excluded.attempts, next_attempt_at_ms = excluded.next_attempt_at_ms, \
     last_error = excluded.last_error, done_at_ms = excluded.done_at_ms WHERE deliveries.state = 'pending'";
const DELIVERIES_SINCE: &str = "SELECT key, channel, payload, created_at_ms, state, attempts, next_attempt_at_ms, \
     last_error, done_at_ms FROM deliveries WHERE created_at_ms >= $1 ORDER BY created_at_ms, key, channel";
const PRUNE_ROLLUPS: &str = "DELETE FROM rollups WHERE minute < $1";
const PRUNE_INCIDENTS: &str = "DELETE FROM incidents WHERE ended_at_ms IS NOT NULL AND ended_at_ms < $1";
const PRUNE_GATE_DECISIONS: &str = "DELETE FROM gate_decisions WHERE evaluated_at_ms < $1";
const PRUNE_ACTIONS: &str = "DELETE FROM actions WHERE at_ms < $1";
const PRUNE_BACKUPS: &str = "DELETE FROM backups WHERE completed_at_ms < $1";
const PRUNE_MIGRATIONS: &str = "DELETE FROM migrations WHERE finished_at_ms IS NOT NULL AND finished_at_ms < $1";
const PRUNE_DELIVERIES: &str = "DELETE FROM deliveries WHERE created_at_ms < $1";

/// Storage on SQLite or PostgreSQL through one pool of sqlx's `Any` driver.
#[derive(Debug, Clone)]
pub(crate) struct SqlStore {
    pool: AnyPool,
}

impl SqlStore {
    pub(crate) async fn open(url: &str) -> Result<Self> {
        Ok(Self { pool: connect::open_pool(url).await? })
    }

    async fn fetch<T>(&self, op: &'static str, query: Query<'_>, row: fn(&AnyRow) -> Result<T>) -> Result<Vec<T>> {
        let rows = query.fetch_all(&self.pool).await.map_err(|source| Error::Query { op, source })?;
        rows.iter().map(row).collect()
    }

    async fn execute(&self, op: &'static str, query: Query<'_>) -> Result<u64> {
        let done = query.execute(&self.pool).await.map_err(|source| Error::Query { op, source })?;
        Ok(done.rows_affected())
    }
}

type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

fn limit(n: u32) -> i64 {
    i64::from(n)
}

#[async_trait]
impl Store for SqlStore {
    async fn ping(&self) -> Result<()> {
        self.execute("ping", sqlx::query("SELECT 1")).await.map(drop)
    }

    async fn save_rollups(&self, rows: &[MinuteRollup]) -> Result<()> {
        let op = "save_rollups";
        let mut tx = self.pool.begin().await.map_err(|source| Error::Query { op, source })?;
        for r in rows {
            let q = sqlx::query(SAVE_ROLLUP).bind(&r.check).bind(r.minute).bind(count(r.good)).bind(count(r.total));
            q.execute(&mut *tx).await.map_err(|source| Error::Query { op, source })?;
        }
        tx.commit().await.map_err(|source| Error::Query { op, source })
    }

    async fn rollups_between(&self, from: i64, to: i64, hourly: bool) -> Result<Vec<MinuteRollup>> {
        let sql = if hourly { HOURLY_ROLLUPS_BETWEEN } else { ROLLUPS_BETWEEN };
        self.fetch("rollups_between", sqlx::query(sql).bind(from).bind(to), rows::rollup).await
    }

    async fn save_incident(&self, i: &Incident) -> Result<()> {
        let q = sqlx::query(SAVE_INCIDENT)
            .bind(&i.id)
            .bind(&i.check)
            .bind(millis(i.started_at))
            .bind(i.ended_at.map(millis))
            .bind(micros(i.worst_latency))
            .bind(micros(i.p95_latency))
            .bind(count(i.probes_total))
            .bind(count(i.probes_bad))
            .bind(i.revenue_at_risk_eur)
            .bind(&i.reason);
        self.execute("save_incident", q).await.map(drop)
    }

    async fn incidents(&self, n: u32) -> Result<Vec<Incident>> {
        self.fetch("incidents", sqlx::query(INCIDENTS).bind(limit(n)), rows::incident).await
    }

    async fn record_backup(&self, b: &Backup) -> Result<()> {
        let q = sqlx::query(RECORD_BACKUP)
            .bind(b.environment.as_str())
            .bind(&b.id)
            .bind(millis(b.completed_at))
            .bind(flag(b.ok));
        self.execute("record_backup", q).await.map(drop)
    }

    async fn latest_backup(&self, environment: Environment) -> Result<Option<Backup>> {
        let q = sqlx::query(LATEST_BACKUP).bind(environment.as_str());
        Ok(self.fetch("latest_backup", q, rows::backup).await?.into_iter().next())
    }

    async fn save_migration(&self, m: &Migration) -> Result<()> {
        let q = sqlx::query(SAVE_MIGRATION)
            .bind(&m.id)
            .bind(&m.target)
            .bind(&m.description)
            .bind(m.on_breach.as_str())
            .bind(millis(m.started_at))
            .bind(m.finished_at.map(millis));
        self.execute("save_migration", q).await.map(drop)
    }

    async fn migrations(&self, open_only: bool) -> Result<Vec<Migration>> {
        let q = sqlx::query(if open_only { OPEN_MIGRATIONS } else { MIGRATIONS });
        self.fetch("migrations", q, rows::migration).await
    }

    async fn record_gate_decision(&self, d: &GateDecision) -> Result<()> {
        let q = sqlx::query(RECORD_GATE_DECISION)
            .bind(d.environment.as_str())
            .bind(millis(d.evaluated_at))
            .bind(flag(d.go))
            .bind(rows::reasons_json(&d.reasons)?);
        self.execute("record_gate_decision", q).await.map(drop)
    }

    async fn gate_decisions(&self, n: u32) -> Result<Vec<GateDecision>> {
        self.fetch("gate_decisions", sqlx::query(GATE_DECISIONS).bind(limit(n)), rows::gate_decision).await
    }

    async fn log_action(&self, a: &ActionRecord) -> Result<()> {
        let q = sqlx::query(LOG_ACTION)
            .bind(&a.id)
            .bind(millis(a.at))
            .bind(&a.target)
            .bind(&a.action)
            .bind(&a.outcome)
            .bind(a.incident.as_deref())
            .bind(&a.detail);
        self.execute("log_action", q).await.map(drop)
    }

    async fn actions(&self, n: u32) -> Result<Vec<ActionRecord>> {
        self.fetch("actions", sqlx::query(ACTIONS).bind(limit(n)), rows::action).await
    }

    async fn save_delivery(&self, d: &Delivery) -> Result<()> {
        let q = sqlx::query(SAVE_DELIVERY)
            .bind(&d.key)
            .bind(&d.channel)
            .bind(&d.payload)
            .bind(millis(d.created_at))
            .bind(d.state.as_str())
            .bind(i64::from(d.attempts))
            .bind(millis(d.next_attempt_at))
            .bind(d.last_error.as_deref())
            .bind(d.done_at.map(millis));
        self.execute("save_delivery", q).await.map(drop)
    }

    async fn deliveries_since(&self, since: Timestamp) -> Result<Vec<Delivery>> {
        self.fetch("deliveries_since", sqlx::query(DELIVERIES_SINCE).bind(millis(since)), rows::delivery).await
    }

    async fn prune(&self, before: Timestamp) -> Result<Pruned> {
        let (ms, minute) = (millis(before), before.as_second().div_euclid(60));
        let op = "prune";
        let mut tx = self.pool.begin().await.map_err(|source| Error::Query { op, source })?;
        let mut delete = async |sql: &'static str, bound: i64| -> Result<u64> {
            let done = sqlx::query(sql).bind(bound).execute(&mut *tx).await;
            Ok(done.map_err(|source| Error::Query { op, source })?.rows_affected())
        };
        let pruned = Pruned {
            rollups: delete(PRUNE_ROLLUPS, minute).await?,
            incidents: delete(PRUNE_INCIDENTS, ms).await?,
            gate_decisions: delete(PRUNE_GATE_DECISIONS, ms).await?,
            actions: delete(PRUNE_ACTIONS, ms).await?,
            backups: delete(PRUNE_BACKUPS, ms).await?,
            migrations: delete(PRUNE_MIGRATIONS, ms).await?,
            deliveries: delete(PRUNE_DELIVERIES, ms).await?,
        };
        tx.commit().await.map_err(|source| Error::Query { op, source })?;
        Ok(pruned)
    }
}
