//! The probe engine as a whole: the scheduler keeps each check's rate, keeps
//! probing while earlier probes are still in flight, and the per-host rate
//! limit stops a wrong interval from hammering a target.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use guardian::app::App;
use guardian::clock::SystemClock;
use guardian::config::{self, MapEnv};
use support::eventually::eventually;
use support::promtext::sample;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A target that counts requests as they arrive, then answers after `delay`.
async fn counting_slow(delay: Duration) -> (SocketAddr, Arc<AtomicU64>) {
    let hits = Arc::new(AtomicU64::new(0));
    let seen = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let seen = seen.clone();
        async move {
            seen.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            "{}"
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

async fn start(yaml: &str) -> (App, CancellationToken, SocketAddr) {
    let yaml = format!("storage: {{ url: 'sqlite::memory:' }}\n{yaml}");
    let config = config::parse(&yaml, "engine.yaml", &MapEnv::default()).unwrap_or_else(|e| panic!("{e}"));
    let app = App::build(config, Arc::new(SystemClock), &MapEnv::default()).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    // The Running handle is not needed: cancelling `stop` ends every task.
    let _running = app.start(listener, stop.clone());
    (app, stop, addr)
}

fn checks(n: usize, target: SocketAddr, extra: &str) -> String {
    (0..n).map(|i| format!("  - {{ name: c{i}, url: 'http://{target}/x', {extra} }}\n")).collect()
}

#[tokio::test]
async fn twenty_checks_each_keep_their_own_rate() {
    let (target, hits) = counting_slow(Duration::ZERO).await;
    let yaml = format!(
        "environment: dev\nprobing: {{ per_host_per_second: 1000 }}\nchecks:\n{}",
        checks(20, target, "interval: 250ms, budget: 1s")
    );
    let (app, stop, _) = start(&yaml).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.cancel();
    // 20 checks × 8 ticks in 2 s, each from a random phase in its first interval.
    let n = hits.load(Ordering::SeqCst);
    assert!((140..=180).contains(&n), "{n} probes in 2 s, expected about 160");
    for c in app.board.snapshot() {
        assert_eq!(c.skipped_total, 0, "{} had probes skipped", c.name);
        let seq = c.last.unwrap().seq;
        assert!((6..=9).contains(&seq), "{} launched {seq} probes in 2 s, expected 8", c.name);
    }
}

#[tokio::test]
async fn a_slow_endpoint_is_probed_on_schedule_while_earlier_probes_are_in_flight() {
    let (target, hits) = counting_slow(Duration::from_millis(1500)).await;
    let yaml = format!("environment: dev\nchecks:\n{}", checks(1, target, "interval: 200ms, budget: 1s, timeout: 5s"));
    let (app, stop, _) = start(&yaml).await;
    eventually(Duration::from_secs(3), "the first probe is over budget while in flight", || async {
        app.board.snapshot()[0].over_budget_in_flight
    })
    .await;
    // Before any probe can have ended (1.5 s each), several more have started.
    let started = hits.load(Ordering::SeqCst);
    assert!(started >= 4, "only {started} probes started while the first was in flight");
    assert!(app.board.snapshot()[0].last.is_none(), "no probe could have finished yet");
    stop.cancel();
}

#[tokio::test]
async fn the_per_host_rate_limit_skips_and_counts_probes_over_it() {
    let (target, hits) = counting_slow(Duration::ZERO).await;
    let yaml = format!(
        "environment: dev\nprobing: {{ per_host_per_second: 5 }}\nchecks:\n{}",
        checks(10, target, "interval: 100ms, budget: 1s")
    );
    let (_app, stop, api) = start(&yaml).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let metrics = reqwest::get(format!("http://{api}/metrics")).await.unwrap().text().await.unwrap();
    stop.cancel();
    let sent = hits.load(Ordering::SeqCst);
    // 10 checks at 10/s would be 200 probes; the quota allows a burst of 5 and 5/s.
    assert!(sent <= 5 + 5 * 3, "{sent} probes reached a host limited to 5/s");
    let limited: f64 = (0..10)
        .filter_map(|i| {
            sample(
                &metrics,
                "guardian_probes_skipped_total",
                &[("check", &format!("c{i}")), ("reason", "rate_limited")],
            )
        })
        .sum();
    assert!(limited >= 150.0, "only {limited} probes counted as rate limited");
}
