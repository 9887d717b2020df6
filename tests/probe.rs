//! The HTTP prober against real local servers: healthy, slow, silent,
//! trickling, huge, refused, unresolvable, redirecting and broken targets.
//! Each ends in the right outcome with a reason a person understands.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use guardian::clock::SystemClock;
use guardian::config::{self, Check, MapEnv};
use guardian::probe::{Outcome, ProbeResult, Prober};
use support::targets;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

/// A check parsed from YAML, as a user would write it.
fn check(url: &str, extra: &str) -> Check {
    let yaml = format!("environment: dev\nchecks:\n  - name: t\n    url: '{url}'\n{extra}");
    config::parse(&yaml, "test.yaml", &MapEnv(std::collections::HashMap::from([("TOK".into(), "s3cret".into())])))
        .unwrap_or_else(|e| panic!("{e}"))
        .checks
        .remove(0)
}

fn at(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

async fn probe(check: &Check) -> ProbeResult {
    Prober::new(Arc::new(SystemClock)).unwrap().probe(check, |_| {}).await
}

#[tokio::test]
async fn a_healthy_target_is_ok_with_latency_and_first_byte_time() {
    let addr = targets::healthy(r#"{"status":"ok","count":230}"#).await;
    let c = check(
        &at(addr, "/api/health"),
        "    budget: 1s\n    expect:\n      json:\n        - { path: /count, equals: 230 }\n",
    );
    let r = probe(&c).await;
    assert_eq!(r.outcome, Outcome::Ok, "{}", r.reason);
    assert_eq!(r.status, Some(200));
    assert!(r.reason.starts_with("200 in "), "{}", r.reason);
    let ttfb = r.ttfb.expect("time to first byte");
    assert!(ttfb <= r.latency && r.latency < Duration::from_secs(1));
    assert!(!r.over_budget_early);
}

#[tokio::test]
async fn a_slow_answer_is_slow_and_known_bad_the_moment_its_budget_elapses() {
    let addr = targets::slow(Duration::from_millis(600), r#"{"status":"ok"}"#).await;
    let c = check(&at(addr, "/api/payments/health"), "    budget: 200ms\n    timeout: 3s\n");
    let start = Instant::now();
    let early_at = Arc::new(Mutex::new(None));
    let seen = early_at.clone();
    let r = Prober::new(Arc::new(SystemClock))
        .unwrap()
        .probe(&c, move |_| *seen.lock().unwrap() = Some(start.elapsed()))
        .await;
    let finished = start.elapsed();
    let early = early_at.lock().unwrap().expect("an early verdict");
    assert_eq!(r.outcome, Outcome::Slow, "{}", r.reason);
    assert!(r.over_budget_early);
    assert!(early >= Duration::from_millis(200), "early verdict before the budget: {early:?}");
    assert!(
        finished - early >= Duration::from_millis(300),
        "early verdict came only at the end ({early:?} vs {finished:?})"
    );
    assert!(r.latency >= Duration::from_millis(600));
    assert!(r.reason.starts_with("answered in "), "{}", r.reason);
    assert!(r.reason.ends_with("over the 200ms budget"), "{}", r.reason);
}

#[tokio::test]
async fn a_target_that_never_answers_fails_at_the_timeout() {
    let addr = targets::silent().await;
    let c = check(&at(addr, "/"), "    budget: 300ms\n    timeout: 1s\n");
    let r = probe(&c).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.reason, "no complete answer within the 1s timeout");
    assert!(r.latency >= Duration::from_secs(1) && r.latency < Duration::from_secs(3), "{:?}", r.latency);
    assert!(r.over_budget_early);
}

#[tokio::test]
async fn a_target_that_trickles_forever_fails_at_the_timeout() {
    let addr = targets::trickle().await;
    let c = check(&at(addr, "/"), "    budget: 300ms\n    timeout: 1s\n");
    let r = probe(&c).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.reason, "no complete answer within the 1s timeout");
    assert!(r.latency < Duration::from_secs(3));
}

#[tokio::test]
async fn a_body_over_the_limit_fails_without_being_read() {
    let (addr, written) = targets::huge_body(5 * 1024 * 1024).await;
    let c = check(&at(addr, "/api/domains"), "    budget: 2s\n    max_body: 1MiB\n");
    let r = probe(&c).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.reason, "body is larger than the 1MiB limit (Content-Length 5242880)");
    assert!(r.latency < Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(written.load(Ordering::SeqCst) < 5 * 1024 * 1024, "the whole 5 MB body was pulled");
}

/// A chunked body with no length that never ends: only the cap can stop it.
async fn endless_chunked() -> (SocketAddr, Arc<std::sync::atomic::AtomicU64>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let count = written.clone();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        let _ = s
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n")
            .await;
        let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
        while s.write_all(chunk.as_bytes()).await.is_ok() {
            count.fetch_add(0x10000, Ordering::SeqCst);
        }
    });
    (addr, written)
}

#[tokio::test]
async fn an_endless_chunked_body_is_cut_at_the_cap_and_memory_stays_bounded() {
    let (addr, written) = endless_chunked().await;
    let c = check(&at(addr, "/"), "    budget: 2s\n    timeout: 10s\n    max_body: 1MiB\n");
    let r = probe(&c).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.reason, "body is larger than the 1MiB limit");
    assert!(r.latency < Duration::from_secs(5), "stopped by the cap, not the timeout: {:?}", r.latency);
    // Reading stopped at the cap; what the server pushed beyond is socket buffers, not our memory.
    assert!(written.load(Ordering::SeqCst) < 64 * 1024 * 1024);
}

#[tokio::test]
async fn a_refused_connection_fails_naming_the_address() {
    let addr = targets::refused_addr();
    let r = probe(&check(&at(addr, "/api/health"), "    budget: 1s\n")).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.reason, format!("connection refused by 127.0.0.1:{}", addr.port()));
    assert_eq!(r.status, None);
}

#[tokio::test]
async fn an_unresolvable_host_fails_naming_the_host() {
    // RFC 6761: .invalid never resolves, and the lookup sends nothing to a target.
    let r = probe(&check("http://nextgen-dashboard.invalid:7001/api/health", "    budget: 1s\n")).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.reason.starts_with("cannot resolve host nextgen-dashboard.invalid: "), "{}", r.reason);
}

#[tokio::test]
async fn a_redirect_is_not_followed_unless_configured() {
    let addr = targets::redirect_loop().await;
    let r = probe(&check(&at(addr, "/r/0"), "    budget: 1s\n")).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.reason, "status 302 (redirect to /r/1, not followed), expected 200");
}

#[tokio::test]
async fn a_followed_redirect_loop_fails_as_a_loop() {
    let addr = targets::redirect_loop().await;
    let r = probe(&check(&at(addr, "/r/0"), "    budget: 1s\n    follow_redirects: true\n")).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.reason, format!("too many redirects (a loop?) from http://{addr}/r/0"));
}

#[tokio::test]
async fn invalid_json_fails_the_json_assertions_clearly() {
    let addr = targets::invalid_json().await;
    let c = check(
        &at(addr, "/api/revenue/status"),
        "    budget: 1s\n    expect:\n      json:\n        - { path: /status, equals: ok }\n",
    );
    let r = probe(&c).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.reason.starts_with("body is not JSON ("), "{}", r.reason);
}

#[tokio::test]
async fn an_unexpected_status_fails_even_when_fast() {
    let addr = targets::status(503, r#"{"status":"down"}"#).await;
    let r = probe(&check(&at(addr, "/api/payments/health"), "    budget: 3s\n")).await;
    assert_eq!((r.outcome, r.status), (Outcome::Failed, Some(503)));
    assert_eq!(r.reason, "status 503, expected 200");
}

#[tokio::test]
async fn a_wrong_answer_within_budget_fails_on_the_business_invariant() {
    let addr = targets::healthy(r#"{"domains":[1,2,3]}"#).await;
    let c = check(
        &at(addr, "/api/domains"),
        "    budget: 2s\n    expect:\n      json:\n        - { path: /domains, length: 230 }\n",
    );
    let r = probe(&c).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert_eq!(r.reason, "/domains has 3 items, expected 230");
}

#[tokio::test]
async fn configured_headers_are_sent_with_their_expanded_value() {
    let app = axum::Router::new().fallback(|headers: axum::http::HeaderMap| async move {
        let ok = headers.get("authorization").is_some_and(|v| v == "Bearer s3cret");
        if ok { (axum::http::StatusCode::OK, "{}") } else { (axum::http::StatusCode::UNAUTHORIZED, "{}") }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let c = check(&at(addr, "/"), "    budget: 1s\n    headers: { Authorization: 'Bearer ${TOK}' }\n");
    let r = probe(&c).await;
    assert_eq!(r.outcome, Outcome::Ok, "{}", r.reason);
}

#[tokio::test]
async fn an_https_target_that_does_not_speak_tls_fails_with_a_tls_reason() {
    // Proves the rustls stack (and its crypto provider) is in the binary: without one it would panic.
    let addr = targets::healthy("{}").await;
    let r = probe(&check(&format!("https://{addr}/"), "    budget: 1s\n")).await;
    assert_eq!(r.outcome, Outcome::Failed);
    assert!(r.reason.starts_with(&format!("TLS handshake with 127.0.0.1:{} failed: ", addr.port())), "{}", r.reason);
}
