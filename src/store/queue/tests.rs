//! The flusher's timing against an always-up store, in paused time. Failures,
//! retries and outages are tested in `tests/store.rs`.

use std::sync::Arc;

use jiff::Timestamp;

use super::*;
use crate::clock::ManualClock;
use crate::notify::DeliveryState;
use crate::store::memory::MemoryStore;

const CONFIG: QueueConfig = QueueConfig {
    flush_every: Duration::from_secs(1),
    batch: 3,
    retry: Backoff { base: Duration::from_millis(200), cap: Duration::from_secs(10) },
    ping_every: Duration::from_secs(10),
};

fn start() -> Timestamp {
    "2026-11-26T12:00:00Z".parse().unwrap()
}

fn writer() -> (StoreWriter, Arc<MemoryStore>, CancellationToken) {
    let store = Arc::new(MemoryStore::new());
    let writer = StoreWriter::new(store.clone(), Arc::new(ManualClock::new(start())), CONFIG);
    let stop = CancellationToken::new();
    tokio::spawn(writer.clone().run(stop.clone()));
    (writer, store, stop)
}

fn rollup(minute: i64) -> MinuteRollup {
    MinuteRollup { check: "revenue-status".into(), minute, good: 1, total: 1 }
}

async fn stored(store: &MemoryStore) -> usize {
    store.rollups_since(0).await.unwrap().len()
}

#[tokio::test(start_paused = true)]
async fn health_is_unknown_until_storage_first_answers() {
    let store = Arc::new(MemoryStore::new());
    let writer = StoreWriter::new(store, Arc::new(ManualClock::new(start())), CONFIG);
    let h = writer.health();
    assert!(!h.reachable);
    assert_eq!((h.last_ok, h.queued, h.dropped), (None, 0, 0));
    let stop = CancellationToken::new();
    tokio::spawn(writer.clone().run(stop.clone()));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(writer.health().reachable, "the first tick pings an empty queue");
    assert_eq!(writer.health().last_ok, Some(start()));
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn writes_wait_for_the_next_flush_then_land() {
    let (writer, store, stop) = writer();
    tokio::time::sleep(Duration::from_millis(1)).await;
    writer.enqueue(rollup(1));
    assert_eq!(writer.health().queued, 1);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(stored(&store).await, 0, "not before flush_every");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(stored(&store).await, 1);
    assert_eq!(writer.health().queued, 0);
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn a_full_batch_is_flushed_at_once() {
    let (writer, store, stop) = writer();
    tokio::time::sleep(Duration::from_millis(1)).await;
    (1..=7).for_each(|m| writer.enqueue(rollup(m)));
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(stored(&store).await, 7, "batches follow each other while a full one waits");
    stop.cancel();
}

#[tokio::test(start_paused = true)]
async fn flush_now_and_drain_write_everything_without_the_task() {
    let store = Arc::new(MemoryStore::new());
    let writer = StoreWriter::new(store.clone(), Arc::new(ManualClock::new(start())), CONFIG);
    (1..=5).for_each(|m| writer.enqueue(rollup(m)));
    writer.flush_now().await.unwrap();
    assert_eq!(stored(&store).await, 5);
    writer.enqueue(rollup(9));
    assert_eq!(writer.drain(Instant::now() + Duration::from_secs(1)).await, 0);
    assert_eq!(stored(&store).await, 6);
}

#[tokio::test(start_paused = true)]
async fn cancelling_stops_the_task() {
    let (writer, _store, stop) = writer();
    let task = tokio::spawn(writer.run(stop.clone()));
    stop.cancel();
    tokio::time::timeout(Duration::from_secs(1), task).await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn deliveries_are_coalesced_then_stored_before_rollups() {
    let store = Arc::new(MemoryStore::new());
    let writer = StoreWriter::new(store.clone(), Arc::new(ManualClock::new(start())), CONFIG);
    let attempt = |attempts: u32, state: DeliveryState| Delivery {
        key: "inc-1:opened".into(),
        channel: "alertmanager".into(),
        payload: "{}".into(),
        created_at: start(),
        state,
        attempts,
        next_attempt_at: start(),
        last_error: None,
        done_at: state.is_final().then(start),
    };
    (1..=5).for_each(|m| writer.enqueue(rollup(m)));
    writer.enqueue(attempt(1, DeliveryState::Pending));
    writer.enqueue(attempt(2, DeliveryState::Delivered));
    assert_eq!(writer.health().queued, 6);
    writer.inner.flush_batch().await.unwrap();
    assert_eq!(store.deliveries_since(start()).await.unwrap(), [attempt(2, DeliveryState::Delivered)]);
    assert_eq!(stored(&store).await, 2, "the roll-ups fill what is left of the batch");
}
