//! Storage: one contract test body run against SQLite, PostgreSQL and the
//! in-memory store; data surviving a restart; the write queue against a store
//! that fails; and a real PostgreSQL outage that loses no record.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up panics on failure by design

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use guardian::audit::ActionRecord;
use guardian::clock::ManualClock;
use guardian::config::Environment;
use guardian::gate::{Backup, GateDecision, Reason};
use guardian::incident::Incident;
use guardian::migration::{Migration, OnBreach};
use guardian::notify::{Delivery, DeliveryState};
use guardian::slo::MinuteRollup;
use guardian::store::memory::MemoryStore;
use guardian::store::{self, Backoff, Pruned, QueueConfig, Store, StoreWriter};
use jiff::{SignedDuration, Timestamp};
use sqlx::Connection;
use support::eventually::eventually;
use support::postgres;
use tokio_util::sync::CancellationToken;

// ---- fixtures: everything happens around 2026-11-26T10:00:00Z ----

fn t(minutes: i64) -> Timestamp {
    let base: Timestamp = "2026-11-26T10:00:00Z".parse().unwrap();
    base + SignedDuration::from_mins(minutes)
}

fn minute(minutes: i64) -> i64 {
    t(minutes).as_second() / 60
}

fn rollup(check: &str, at: i64, good: u64, total: u64) -> MinuteRollup {
    MinuteRollup { check: check.into(), minute: minute(at), good, total }
}

fn incident(id: &str, started: i64, ended: Option<i64>) -> Incident {
    Incident {
        id: id.into(),
        check: "payments-health".into(),
        started_at: t(started),
        ended_at: ended.map(t),
        worst_latency: Duration::from_micros(4_250_123),
        p95_latency: Duration::from_millis(3_100),
        probes_total: 12,
        probes_bad: 7,
        revenue_at_risk_eur: 87.5,
        reason: "payments 4.25s > 3s budget".into(),
    }
}

fn backup(environment: Environment, id: &str, at: i64, ok: bool) -> Backup {
    Backup { environment, id: id.into(), completed_at: t(at), ok }
}

fn migration(id: &str, started: i64, finished: Option<i64>) -> Migration {
    Migration {
        id: id.into(),
        target: "blueocean-nextgen-prod/Deployment/nextgen-dashboard".into(),
        description: "add invoices.currency".into(),
        on_breach: OnBreach::Pause,
        started_at: t(started),
        finished_at: finished.map(t),
    }
}

fn decision(environment: Environment, at: i64, reasons: &[&'static str]) -> GateDecision {
    let reasons: Vec<Reason> =
        reasons.iter().map(|code| Reason { code, message: format!("{code} because…") }).collect();
    GateDecision { environment, go: reasons.is_empty(), reasons, evaluated_at: t(at) }
}

fn action(id: &str, at: i64, outcome: &str) -> ActionRecord {
    ActionRecord {
        id: id.into(),
        at: t(at),
        target: "blueocean-nextgen-prod/Deployment/nextgen-dashboard".into(),
        action: "rollback".into(),
        outcome: outcome.into(),
        incident: Some("i1".into()),
        detail: format!("{outcome}: revision 7 → 6"),
    }
}

fn delivery(key: &str, channel: &str, created: i64, state: DeliveryState) -> Delivery {
    Delivery {
        key: key.into(),
        channel: channel.into(),
        payload: format!(r#"{{"key":"{key}","summary":"payments-health over its 3s budget"}}"#),
        created_at: t(created),
        state,
        attempts: 0,
        next_attempt_at: t(created),
        last_error: None,
        done_at: state.is_final().then(|| t(created + 1)),
    }
}

fn ids<T>(items: &[T], id: impl Fn(&T) -> String) -> Vec<String> {
    items.iter().map(id).collect()
}

// ---- the contract: one body for every backend ----

async fn contract(s: &dyn Store) {
    s.ping().await.unwrap();
    rollups_upsert_by_check_and_minute(s).await;
    incidents_upsert_by_id_newest_first(s).await;
    latest_backup_is_the_newest_ok_one_of_that_environment(s).await;
    migrations_upsert_and_filter_open_ones(s).await;
    gate_decisions_are_recorded_once_newest_first(s).await;
    actions_are_logged_once_newest_first(s).await;
    deliveries_round_trip_field_by_field(s).await;
    a_pending_delivery_is_replaced_by_a_later_save(s).await;
    a_final_delivery_is_never_changed_by_a_later_save(s).await;
    each_channel_of_a_notification_is_its_own_delivery(s).await;
    deliveries_since_filters_by_creation_and_orders_oldest_first(s).await;
    prune_drops_old_rows_but_keeps_open_incidents_and_migrations(s).await;
    rollups_between_keep_their_range_and_sum_by_hour(s).await; // last: its rows would change the prune counts
}

async fn rollups_upsert_by_check_and_minute(s: &dyn Store) {
    let rows = [rollup("a", -1, 1, 2), rollup("b", -1, 2, 2), rollup("a", 0, 3, 3)];
    s.save_rollups(&rows).await.unwrap();
    s.save_rollups(&rows).await.unwrap();
    s.save_rollups(&[]).await.unwrap();
    assert_eq!(s.rollups_since(0).await.unwrap(), rows, "a retried save is one row each, oldest minute first");
    s.save_rollups(&[rollup("a", 0, 5, 6)]).await.unwrap();
    assert_eq!(s.rollups_since(minute(0)).await.unwrap(), [rollup("a", 0, 5, 6)], "absolute counts replace");
}

async fn rollups_between_keep_their_range_and_sum_by_hour(s: &dyn Store) {
    let h = (minute(0).div_euclid(60) + 100) * 60; // an hour of its own, clear of other rows
    let r = |m: i64, good: u64, total: u64| MinuteRollup { check: "hourly".into(), minute: m, good, total };
    let rows = [r(h, 1, 2), r(h + 30, 3, 4), r(h + 59, 5, 6), r(h + 61, 7, 8), r(h + 120, 9, 9)];
    s.save_rollups(&rows).await.unwrap();
    assert_eq!(s.rollups_between(h, h + 120, false).await.unwrap(), rows[..4], "`to` is excluded");
    let hourly = s.rollups_between(h, h + 120, true).await.unwrap();
    assert_eq!(hourly, [r(h, 9, 12), r(h + 60, 7, 8)], "summed per check and hour");
    assert_eq!(s.rollups_between(h + 1, h + 60, true).await.unwrap(), [r(h, 8, 10)], "only rows in range are summed");
}

async fn incidents_upsert_by_id_newest_first(s: &dyn Store) {
    s.save_incident(&incident("old-open", -120, None)).await.unwrap();
    s.save_incident(&incident("closed", -60, Some(-30))).await.unwrap();
    s.save_incident(&incident("i1", 0, None)).await.unwrap();
    s.save_incident(&incident("i1", 0, None)).await.unwrap();
    s.save_incident(&incident("i1", 0, Some(20))).await.unwrap();
    let all = s.incidents(10).await.unwrap();
    assert_eq!(ids(&all, |i| i.id.clone()), ["i1", "closed", "old-open"]);
    assert_eq!(all[0], incident("i1", 0, Some(20)), "every field round-trips");
    assert_eq!(s.incidents(1).await.unwrap().len(), 1);
}

async fn latest_backup_is_the_newest_ok_one_of_that_environment(s: &dyn Store) {
    assert_eq!(s.latest_backup(Environment::Prod).await.unwrap(), None);
    s.record_backup(&backup(Environment::Prod, "b-old", -120, true)).await.unwrap();
    s.record_backup(&backup(Environment::Prod, "b1", 0, true)).await.unwrap();
    s.record_backup(&backup(Environment::Prod, "b1", 0, true)).await.unwrap();
    s.record_backup(&backup(Environment::Prod, "b-failed", 10, false)).await.unwrap();
    s.record_backup(&backup(Environment::StagingShared, "b-staging", 20, true)).await.unwrap();
    assert_eq!(s.latest_backup(Environment::Prod).await.unwrap(), Some(backup(Environment::Prod, "b1", 0, true)));
    let staging = s.latest_backup(Environment::StagingShared).await.unwrap();
    assert_eq!(staging.map(|b| b.id).as_deref(), Some("b-staging"));
    assert_eq!(s.latest_backup(Environment::Dev).await.unwrap(), None);
}

async fn migrations_upsert_and_filter_open_ones(s: &dyn Store) {
    s.save_migration(&migration("m-old", -180, Some(-120))).await.unwrap();
    s.save_migration(&migration("m-stuck", -240, None)).await.unwrap();
    s.save_migration(&migration("m1", 0, None)).await.unwrap();
    s.save_migration(&migration("m1", 0, None)).await.unwrap();
    assert_eq!(ids(&s.migrations(false).await.unwrap(), |m| m.id.clone()), ["m1", "m-old", "m-stuck"]);
    assert_eq!(ids(&s.migrations(true).await.unwrap(), |m| m.id.clone()), ["m1", "m-stuck"]);
    s.save_migration(&migration("m1", 0, Some(30))).await.unwrap();
    assert_eq!(s.migrations(true).await.unwrap(), [migration("m-stuck", -240, None)]);
    assert_eq!(s.migrations(false).await.unwrap()[0], migration("m1", 0, Some(30)));
}

async fn gate_decisions_are_recorded_once_newest_first(s: &dyn Store) {
    let old = decision(Environment::Prod, -60, &["backup_stale"]);
    let go = decision(Environment::Prod, 0, &[]);
    let no_go = decision(Environment::Prod, 1, &["data_stale", "outside_window"]);
    let staging = decision(Environment::StagingShared, 1, &["rollout_in_progress"]);
    for d in [&old, &go, &no_go, &no_go, &staging] {
        s.record_gate_decision(d).await.unwrap();
    }
    let got = s.gate_decisions(10).await.unwrap();
    assert_eq!(got, [staging.clone(), no_go.clone(), go, old], "same millisecond: the later write first");
    assert_eq!(s.gate_decisions(2).await.unwrap(), [staging, no_go]);
}

async fn actions_are_logged_once_newest_first(s: &dyn Store) {
    s.log_action(&action("intent-1", 0, "intent")).await.unwrap();
    s.log_action(&action("done-1", 0, "ok")).await.unwrap();
    s.log_action(&action("old", -60, "ok")).await.unwrap();
    let retried = ActionRecord { detail: "a retry must not overwrite".into(), ..action("intent-1", 0, "intent") };
    s.log_action(&retried).await.unwrap();
    let got = s.actions(10).await.unwrap();
    assert_eq!(ids(&got, |a| a.id.clone()), ["done-1", "intent-1", "old"]);
    assert_eq!(got[1], action("intent-1", 0, "intent"), "the first write of an id is kept");
    assert_eq!(s.actions(1).await.unwrap().len(), 1);
    let unlinked = ActionRecord { incident: None, ..action("notify-1", 1, "ok") };
    s.log_action(&unlinked).await.unwrap();
    assert_eq!(s.actions(1).await.unwrap(), [unlinked]);
}

/// The deliveries created from `since` on whose key starts with `prefix`, in the store's order.
async fn prefixed_since(s: &dyn Store, since: Timestamp, prefix: &str) -> Vec<Delivery> {
    let all = s.deliveries_since(since).await.unwrap();
    all.into_iter().filter(|d| d.key.starts_with(prefix)).collect()
}

async fn deliveries_of(s: &dyn Store, prefix: &str) -> Vec<Delivery> {
    prefixed_since(s, t(-10_000), prefix).await
}

/// The only delivery whose key starts with `prefix`.
async fn only_delivery(s: &dyn Store, prefix: &str) -> Delivery {
    let mut found = deliveries_of(s, prefix).await;
    assert_eq!(found.len(), 1, "{found:?}");
    found.remove(0)
}

async fn deliveries_round_trip_field_by_field(s: &dyn Store) {
    let at_ms = |minutes: i64, ms: i64| t(minutes) + SignedDuration::from_millis(ms);
    let retrying = Delivery {
        attempts: 3,
        next_attempt_at: at_ms(6, 250),
        last_error: Some("connection refused by 127.0.0.1:9093 (password ***)".into()),
        created_at: at_ms(5, 123),
        ..delivery("rt:opened", "alertmanager", 5, DeliveryState::Pending)
    };
    let delivered =
        Delivery { attempts: u32::MAX, ..delivery("rt:paused", "alertmanager", 6, DeliveryState::Delivered) };
    let abandoned = Delivery {
        attempts: 12,
        last_error: Some("webhook answered 404".into()),
        done_at: Some(at_ms(9, 999)),
        ..delivery("rt:rolled_back", "webhook-slack-9f8e7d", 7, DeliveryState::Abandoned)
    };
    for d in [&retrying, &delivered, &abandoned] {
        s.save_delivery(d).await.unwrap();
    }
    let got = deliveries_of(s, "rt:").await;
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], retrying, "pending, a last error, no done_at, milliseconds kept");
    assert_eq!((got[0].last_error.as_deref(), got[0].done_at), (retrying.last_error.as_deref(), None));
    assert_eq!(got[1], delivered, "no last error, done_at, u32::MAX attempts");
    assert_eq!((got[1].attempts, got[1].last_error.as_deref(), got[1].done_at), (u32::MAX, None, Some(t(7))));
    assert_eq!(got[2], abandoned, "abandoned with its last error");
}

async fn a_pending_delivery_is_replaced_by_a_later_save(s: &dyn Store) {
    let first = delivery("retry:opened", "alertmanager", 1, DeliveryState::Pending);
    s.save_delivery(&first).await.unwrap();
    s.save_delivery(&first).await.unwrap();
    assert_eq!(only_delivery(s, "retry:").await, first, "saving twice is one row");
    let failed =
        Delivery { attempts: 1, next_attempt_at: t(2), last_error: Some("timed out after 10s".into()), ..first };
    s.save_delivery(&failed).await.unwrap();
    assert_eq!(only_delivery(s, "retry:").await, failed, "the retry's values replace the first");
    let again = Delivery { attempts: 2, next_attempt_at: t(4), last_error: None, ..failed };
    s.save_delivery(&again).await.unwrap();
    assert_eq!(only_delivery(s, "retry:").await, again, "a last error can be cleared");
}

async fn a_final_delivery_is_never_changed_by_a_later_save(s: &dyn Store) {
    for (key, state) in [("final:delivered", DeliveryState::Delivered), ("final:abandoned", DeliveryState::Abandoned)] {
        let pending = Delivery { attempts: 1, ..delivery(key, "alertmanager", 2, DeliveryState::Pending) };
        let done = Delivery { attempts: 2, ..delivery(key, "alertmanager", 2, state) };
        s.save_delivery(&pending).await.unwrap();
        s.save_delivery(&done).await.unwrap();
        assert_eq!(only_delivery(s, key).await, done, "pending becomes {state:?}");
        let stale = Delivery { attempts: 1, last_error: Some("late retry".into()), ..pending };
        s.save_delivery(&stale).await.unwrap();
        let other_final =
            if state == DeliveryState::Delivered { DeliveryState::Abandoned } else { DeliveryState::Delivered };
        s.save_delivery(&Delivery { attempts: 9, ..delivery(key, "alertmanager", 3, other_final) }).await.unwrap();
        assert_eq!(only_delivery(s, key).await, done, "{state:?} stays as it was");
    }
}

async fn each_channel_of_a_notification_is_its_own_delivery(s: &dyn Store) {
    let alertmanager = delivery("ch:opened", "alertmanager", 3, DeliveryState::Pending);
    let slack = delivery("ch:opened", "webhook-slack-1a2b3c", 3, DeliveryState::Pending);
    s.save_delivery(&alertmanager).await.unwrap();
    s.save_delivery(&slack).await.unwrap();
    let delivered = Delivery { attempts: 1, ..delivery("ch:opened", "alertmanager", 3, DeliveryState::Delivered) };
    s.save_delivery(&delivered).await.unwrap();
    assert_eq!(deliveries_of(s, "ch:").await, [delivered, slack], "one channel's state leaves the other's alone");
}

async fn deliveries_since_filters_by_creation_and_orders_oldest_first(s: &dyn Store) {
    let old = delivery("since:a", "alertmanager", -30, DeliveryState::Delivered);
    let b_webhook = delivery("since:b", "webhook-generic-77aa", -10, DeliveryState::Pending);
    let b_alertmanager = delivery("since:b", "alertmanager", -10, DeliveryState::Pending);
    let a = delivery("since:a", "webhook-generic-77aa", -10, DeliveryState::Abandoned);
    let upper = delivery("since:B", "alertmanager", -10, DeliveryState::Pending); // bytes: "B" < "a"
    let new = delivery("since:0", "alertmanager", 10, DeliveryState::Pending);
    for d in [&new, &b_webhook, &old, &b_alertmanager, &a, &upper] {
        s.save_delivery(d).await.unwrap();
    }
    let since = |at: Timestamp| prefixed_since(s, at, "since:");
    let want = [upper, a, b_alertmanager, b_webhook, new.clone()];
    assert_eq!(since(t(-10)).await, want, "from `since` on, by creation, then key, then channel");
    assert_eq!(since(t(-31)).await[0], old);
    assert_eq!(since(t(11)).await, []);
    assert_eq!(since(t(-10) + SignedDuration::from_millis(1)).await, [new]);
}

async fn prune_drops_old_rows_but_keeps_open_incidents_and_migrations(s: &dyn Store) {
    let pruned = s.prune(t(0)).await.unwrap();
    let want =
        Pruned { rollups: 2, incidents: 1, gate_decisions: 1, actions: 1, backups: 1, migrations: 1, deliveries: 5 };
    assert_eq!(pruned, want);
    let kept = s.deliveries_since(t(-10_000)).await.unwrap();
    assert!(kept.iter().all(|d| d.created_at >= t(0)), "{kept:?}");
    assert_eq!(kept.len(), 9, "pending ones are pruned by age too, newer ones of every state kept");
    assert_eq!(ids(&s.incidents(10).await.unwrap(), |i| i.id.clone()), ["i1", "old-open"]);
    assert_eq!(ids(&s.migrations(false).await.unwrap(), |m| m.id.clone()), ["m1", "m-stuck"]);
    assert_eq!(s.rollups_since(0).await.unwrap(), [rollup("a", 0, 5, 6)]);
    assert_eq!(s.prune(t(0)).await.unwrap(), Pruned::default(), "pruning again removes nothing");
}

#[tokio::test]
async fn sqlite_file_keeps_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let store = store::open(&format!("sqlite://{}/guardian.db", dir.path().display())).await.unwrap();
    contract(store.as_ref()).await;
}

#[tokio::test]
async fn a_bad_delivery_row_is_reported_not_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/guardian.db", dir.path().display());
    let store = store::open(&url).await.unwrap();
    let mut raw = sqlx::SqliteConnection::connect(&url).await.unwrap();
    let insert = "INSERT INTO deliveries (key, channel, payload, created_at_ms, state, attempts, next_attempt_at_ms) \
         VALUES ($1, 'alertmanager', '{}', $2, $3, $4, $2)";
    let cases = [
        ("unknown state", "sent", 1, "delivery row: state: unknown value \"sent\""),
        ("negative attempts", "pending", -1, "delivery row: attempts: out of range -1"),
        ("attempts past u32", "pending", i64::from(u32::MAX) + 1, "delivery row: attempts: out of range 4294967296"),
    ];
    for (name, state, attempts, want) in cases {
        let q = sqlx::query(insert).bind(name).bind(t(0).as_millisecond()).bind(state).bind(attempts);
        q.execute(&mut raw).await.unwrap();
        let err = store.deliveries_since(t(0)).await.unwrap_err();
        assert!(matches!(err, store::Error::BadRow { what: "delivery", .. }), "{name}: {err}");
        assert!(err.to_string().ends_with(want), "{name}: {err}");
        sqlx::query("DELETE FROM deliveries").execute(&mut raw).await.unwrap();
    }
}

#[tokio::test]
async fn sqlite_in_memory_keeps_the_contract() {
    contract(store::open("sqlite::memory:").await.unwrap().as_ref()).await;
}

#[tokio::test]
async fn memory_store_keeps_the_contract() {
    contract(&MemoryStore::new()).await;
}

#[tokio::test]
async fn postgres_keeps_the_contract() {
    let Some(db) = postgres::fresh_db().await else { return };
    contract(store::open(&db.url).await.unwrap().as_ref()).await;
}

// ---- restarts: SLO windows and the audit log survive them ----

async fn survives_a_restart(url: &str) {
    let first = store::open(url).await.unwrap();
    let writer = StoreWriter::new(first, Arc::new(ManualClock::new(t(0))), FAST);
    enqueue_numbered(&writer, 0, 3);
    writer.flush_now().await.unwrap();
    drop(writer);
    assert_numbered(store::open(url).await.unwrap().as_ref(), 3).await;
}

#[tokio::test]
async fn sqlite_file_is_created_in_wal_mode_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("guardian.db");
    let url = format!("sqlite://{}", file.display());
    let store = store::open(&url).await.unwrap();
    assert!(file.exists(), "opening creates the missing file");
    store.ping().await.unwrap();
    assert!(dir.path().join("guardian.db-wal").exists(), "WAL journal in use");
    drop(store);
    survives_a_restart(&url).await;
}

#[tokio::test]
async fn postgres_survives_a_restart() {
    let Some(db) = postgres::fresh_db().await else { return };
    survives_a_restart(&db.url).await;
}

#[tokio::test]
async fn an_unreachable_postgres_fails_fast_instead_of_hanging() {
    let started = tokio::time::Instant::now();
    let err = store::open("postgres://guardian:secret@127.0.0.1:1/guardian").await.err().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    let message = err.to_string();
    assert!(message.starts_with("cannot open storage postgres://guardian:***@127.0.0.1:1/guardian"), "{message}");
}

// ---- the write queue ----

/// An honest in-memory store whose first `failures` calls fail like an unreachable database.
struct Flaky {
    inner: MemoryStore,
    failures: AtomicU32,
    calls: AtomicUsize,
    rollup_rows: AtomicUsize,
}

impl Flaky {
    fn failing(failures: u32) -> Self {
        let (calls, rollup_rows) = (AtomicUsize::new(0), AtomicUsize::new(0));
        Self { inner: MemoryStore::new(), failures: AtomicU32::new(failures), calls, rollup_rows }
    }

    fn call(&self) -> store::Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let failed = self.failures.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1)).is_ok();
        if failed { Err(store::Error::Query { op: "flaky", source: sqlx::Error::PoolTimedOut }) } else { Ok(()) }
    }
}

#[async_trait]
impl Store for Flaky {
    async fn ping(&self) -> store::Result<()> {
        self.call()
    }
    async fn save_rollups(&self, rows: &[MinuteRollup]) -> store::Result<()> {
        self.call()?;
        self.rollup_rows.fetch_add(rows.len(), Ordering::SeqCst);
        self.inner.save_rollups(rows).await
    }
    async fn rollups_between(&self, from: i64, to: i64, hourly: bool) -> store::Result<Vec<MinuteRollup>> {
        self.inner.rollups_between(from, to, hourly).await
    }
    async fn save_incident(&self, incident: &Incident) -> store::Result<()> {
        self.call()?;
        self.inner.save_incident(incident).await
    }
    async fn incidents(&self, limit: u32) -> store::Result<Vec<Incident>> {
        self.inner.incidents(limit).await
    }
    async fn record_backup(&self, backup: &Backup) -> store::Result<()> {
        self.call()?;
        self.inner.record_backup(backup).await
    }
    async fn latest_backup(&self, environment: Environment) -> store::Result<Option<Backup>> {
        self.inner.latest_backup(environment).await
    }
    async fn save_migration(&self, migration: &Migration) -> store::Result<()> {
        self.call()?;
        self.inner.save_migration(migration).await
    }
    async fn migrations(&self, open_only: bool) -> store::Result<Vec<Migration>> {
        self.inner.migrations(open_only).await
    }
    async fn record_gate_decision(&self, decision: &GateDecision) -> store::Result<()> {
        self.call()?;
        self.inner.record_gate_decision(decision).await
    }
    async fn gate_decisions(&self, limit: u32) -> store::Result<Vec<GateDecision>> {
        self.inner.gate_decisions(limit).await
    }
    async fn log_action(&self, action: &ActionRecord) -> store::Result<()> {
        self.call()?;
        self.inner.log_action(action).await
    }
    async fn actions(&self, limit: u32) -> store::Result<Vec<ActionRecord>> {
        self.inner.actions(limit).await
    }
    async fn save_delivery(&self, delivery: &Delivery) -> store::Result<()> {
        self.call()?;
        self.inner.save_delivery(delivery).await
    }
    async fn deliveries_since(&self, since: Timestamp) -> store::Result<Vec<Delivery>> {
        self.inner.deliveries_since(since).await
    }
    async fn prune(&self, before: Timestamp) -> store::Result<Pruned> {
        self.inner.prune(before).await
    }
}

const FAST: QueueConfig = QueueConfig {
    flush_every: Duration::from_millis(100),
    batch: 500,
    retry: Backoff { base: Duration::from_millis(100), cap: Duration::from_secs(1) },
    ping_every: Duration::from_millis(500),
};

fn writer_on(store: Arc<dyn Store>, config: QueueConfig) -> (StoreWriter, CancellationToken) {
    let writer = StoreWriter::new(store, Arc::new(ManualClock::new(t(0))), config);
    let stop = CancellationToken::new();
    tokio::spawn(writer.clone().run(stop.clone()));
    (writer, stop)
}

/// Writes numbered `from..to`: seven kinds each, distinct records.
fn enqueue_numbered(writer: &StoreWriter, from: i64, to: i64) {
    for n in from..to {
        writer.enqueue(rollup("revenue-status", n, 1, 1));
        writer.enqueue(incident(&format!("i{n}"), n, None));
        writer.enqueue(migration(&format!("m{n}"), n, None));
        writer.enqueue(backup(Environment::Prod, &format!("b{n}"), n, true));
        writer.enqueue(decision(Environment::Prod, n, &["check_failing"]));
        writer.enqueue(action(&format!("a{n}"), 0, "ok"));
        writer.enqueue(delivery(&format!("i{n}:opened"), "alertmanager", n, DeliveryState::Pending));
    }
}

/// Every numbered record of `0..count` is stored, actions in the order queued.
async fn assert_numbered(s: &dyn Store, count: i64) {
    let n = usize::try_from(count).unwrap();
    assert_eq!(s.rollups_since(0).await.unwrap().len(), n, "roll-ups");
    assert_eq!(s.incidents(u32::MAX).await.unwrap().len(), n, "incidents");
    assert_eq!(s.migrations(false).await.unwrap().len(), n, "migrations");
    assert_eq!(s.gate_decisions(u32::MAX).await.unwrap().len(), n, "gate decisions");
    assert_eq!(s.deliveries_since(t(0)).await.unwrap().len(), n, "deliveries");
    let latest = s.latest_backup(Environment::Prod).await.unwrap().map(|b| b.id);
    assert_eq!(latest, Some(format!("b{}", count - 1)), "backups");
    let newest_first: Vec<String> = (0..count).rev().map(|n| format!("a{n}")).collect();
    assert_eq!(ids(&s.actions(u32::MAX).await.unwrap(), |a| a.id.clone()), newest_first, "actions in order");
}

#[tokio::test(start_paused = true)]
async fn the_queue_outlasts_a_failing_store_and_loses_nothing() {
    let flaky = Arc::new(Flaky::failing(6));
    let (writer, stop) = writer_on(flaky.clone(), FAST);
    enqueue_numbered(&writer, 0, 10);
    writer.enqueue(rollup("revenue-status", 0, 7, 9)); // coalesces with the first roll-up
    tokio::time::sleep(Duration::from_millis(150)).await;
    let down = writer.health();
    assert!(!down.reachable);
    assert_eq!(down.queued, 70);
    assert_eq!(down.last_ok, None);
    assert!(down.last_error.as_deref().is_some_and(|e| e.contains("pool timed out")), "{down:?}");

    eventually(Duration::from_secs(60), "the queue drains", async || writer.health().queued == 0).await;
    let up = writer.health();
    assert!(up.reachable && up.last_ok == Some(t(0)) && up.dropped == 0, "{up:?}");
    assert_numbered(&flaky.inner, 10).await;
    assert_eq!(flaky.inner.rollups_since(minute(0)).await.unwrap()[0], rollup("revenue-status", 0, 7, 9));
    assert_eq!(flaky.rollup_rows.load(Ordering::SeqCst), 10, "coalesced before writing");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn failed_flushes_back_off_up_to_the_cap() {
    let flaky = Arc::new(Flaky::failing(u32::MAX));
    let (writer, stop) = writer_on(flaky.clone(), FAST);
    writer.enqueue(action("a1", 0, "ok"));
    // Waits of 50-100 ms, 100-200, 200-400, 400-800, then 500-1000 ms: 5-10 attempts in 4 s.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let attempts = flaky.calls.load(Ordering::SeqCst);
    assert!((5..=10).contains(&attempts), "{attempts} attempts");
    assert_eq!(writer.health().queued, 1);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn drain_gives_up_at_its_deadline_and_says_what_is_left() {
    let flaky = Arc::new(Flaky::failing(u32::MAX));
    let writer = StoreWriter::new(flaky, Arc::new(ManualClock::new(t(0))), FAST);
    enqueue_numbered(&writer, 0, 2);
    let left = writer.drain(tokio::time::Instant::now() + Duration::from_secs(3)).await;
    assert_eq!(left, 14);
    assert!(writer.flush_now().await.is_err());
}

#[tokio::test]
async fn postgres_refusing_a_value_drops_only_that_write() {
    let Some(db) = postgres::fresh_db().await else { return };
    let store = store::open(&db.url).await.unwrap();
    let writer = StoreWriter::new(store.clone(), Arc::new(ManualClock::new(t(0))), FAST);
    writer.enqueue(action("before", 0, "ok"));
    writer.enqueue(ActionRecord { detail: "NUL \0 byte".into(), ..action("bad", 0, "ok") });
    writer.enqueue(action("after", 0, "ok"));
    writer.enqueue(rollup("good-1", 0, 1, 1));
    writer.enqueue(rollup("bad\0check", 0, 1, 1));
    writer.enqueue(rollup("good-2", 0, 1, 1));
    writer.flush_now().await.unwrap();
    let health = writer.health();
    assert_eq!((health.queued, health.dropped, health.reachable), (0, 2, true), "{health:?}");
    assert_eq!(ids(&store.actions(10).await.unwrap(), |a| a.id.clone()), ["after", "before"]);
    assert_eq!(ids(&store.rollups_since(0).await.unwrap(), |r| r.check.clone()), ["good-1", "good-2"]);
}

/// Stops the real server mid-run: writes queued during the outage land once it is back.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_outage_loses_no_queued_write() {
    let Some(db) = postgres::fresh_db_alone().await else { return };
    let (writer, stop) = writer_on(store::open(&db.url).await.unwrap(), FAST);
    enqueue_numbered(&writer, 0, 20);
    let stored = async || writer.health().queued == 0 && writer.health().reachable;
    eventually(Duration::from_secs(10), "writes before the outage land", stored).await;

    let mut server = postgres::stop_server(&db);
    enqueue_numbered(&writer, 20, 40);
    let down = async || !writer.health().reachable;
    eventually(Duration::from_secs(20), "health says storage is unreachable", down).await;
    let health = writer.health();
    assert!(health.queued > 0 && health.last_error.is_some(), "{health:?}");

    server.start();
    eventually(Duration::from_secs(30), "the queue drains once PostgreSQL is back", stored).await;
    stop.cancel();
    assert_numbered(store::open(&db.url).await.unwrap().as_ref(), 40).await;
}
