//! Checks that the shared test targets in `tests/support` behave as their docs say.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use reqwest::{Client, StatusCode, header, redirect};
use support::eventually::eventually;
use support::targets;

const BODY: &str = r#"{"status":"ok"}"#;

fn client() -> Client {
    Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap_or_else(|e| panic!("reqwest client: {e}"))
}

fn url(addr: std::net::SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

#[tokio::test]
async fn healthy_answers_200_with_its_json_on_any_path() {
    let addr = targets::healthy(BODY).await;
    let resp = client().get(url(addr, "/any/path")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(resp.text().await.unwrap(), BODY);
}

#[tokio::test]
async fn slow_outlasts_a_shorter_timeout_and_answers_a_patient_client() {
    let addr = targets::slow(Duration::from_millis(300), BODY).await;
    let err = client().get(url(addr, "/")).timeout(Duration::from_millis(50)).send().await.unwrap_err();
    assert!(err.is_timeout(), "{err:?}");
    let resp = client().get(url(addr, "/")).send().await.unwrap();
    assert_eq!(resp.text().await.unwrap(), BODY);
}

#[tokio::test]
async fn status_answers_the_code_it_was_given() {
    let addr = targets::status(503, BODY).await;
    let resp = client().get(url(addr, "/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(resp.text().await.unwrap(), BODY);
}

#[tokio::test]
async fn silent_accepts_but_never_answers() {
    let addr = targets::silent().await;
    let err = client().get(url(addr, "/")).timeout(Duration::from_millis(200)).send().await.unwrap_err();
    assert!(err.is_timeout() && !err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn trickle_sends_headers_then_one_byte_at_a_time() {
    let addr = targets::trickle().await;
    let mut resp = client().get(url(addr, "/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    for _ in 0..3 {
        assert_eq!(resp.chunk().await.unwrap().unwrap().as_ref(), b" ");
    }
}

#[tokio::test]
async fn huge_body_streams_exactly_the_announced_length() {
    const LEN: usize = 10 * 1024 * 1024 + 7;
    let (addr, written) = targets::huge_body(LEN).await;
    let mut resp = client().get(url(addr, "/")).send().await.unwrap();
    assert_eq!(resp.content_length(), Some(LEN as u64));
    let mut read = 0;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        read += chunk.len();
    }
    assert_eq!(read, LEN);
    assert_eq!(written.load(Ordering::SeqCst), LEN as u64);
}

#[tokio::test]
async fn huge_body_stops_writing_when_the_client_leaves() {
    const LEN: usize = 1024 * 1024 * 1024;
    let (addr, written) = targets::huge_body(LEN).await;
    let mut resp = client().get(url(addr, "/")).send().await.unwrap();
    resp.chunk().await.unwrap();
    drop(resp);
    eventually(Duration::from_secs(5), "the server stops writing", || {
        let written = Arc::clone(&written);
        async move {
            let before = written.load(Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(50)).await;
            written.load(Ordering::SeqCst) == before
        }
    })
    .await;
    // Socket buffers let the server run ahead of the reader a little, never by the whole GiB.
    let total = written.load(Ordering::SeqCst);
    assert!(total < LEN as u64 / 4, "wrote {total} bytes");
}

#[tokio::test]
async fn redirect_loop_points_every_path_at_the_next() {
    let addr = targets::redirect_loop().await;
    let no_follow = Client::builder().no_proxy().redirect(redirect::Policy::none()).build().unwrap();
    for (path, next) in [("/", "/r/1"), ("/r/1", "/r/2"), ("/r/41", "/r/42")] {
        let resp = no_follow.get(url(addr, path)).send().await.unwrap();
        assert_eq!(resp.status(), StatusCode::FOUND, "{path}");
        assert_eq!(resp.headers()[header::LOCATION], next, "{path}");
    }
    let err = client().get(url(addr, "/")).send().await.unwrap_err();
    assert!(err.is_redirect(), "{err:?}");
}

#[tokio::test]
async fn invalid_json_is_labelled_json_but_cut_short() {
    let addr = targets::invalid_json().await;
    let resp = client().get(url(addr, "/")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/json");
    assert_eq!(resp.text().await.unwrap(), r#"{"status": "ok","#);
}

#[tokio::test]
async fn refused_addr_refuses_connections() {
    let err = client().get(url(targets::refused_addr(), "/")).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
}

#[tokio::test]
async fn counting_counts_every_request() {
    let (addr, requests) = targets::counting(BODY).await;
    for _ in 0..3 {
        let resp = client().get(url(addr, "/")).send().await.unwrap();
        assert_eq!(resp.text().await.unwrap(), BODY);
    }
    assert_eq!(requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn eventually_returns_once_the_condition_holds() {
    let done = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&done);
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(60)).await;
        flag.store(true, Ordering::SeqCst);
    });
    eventually(Duration::from_secs(5), "the flag is set", || {
        let done = Arc::clone(&done);
        async move { done.load(Ordering::SeqCst) }
    })
    .await;
}

#[tokio::test]
#[should_panic(expected = "the flag is set")]
async fn eventually_panics_with_what_when_time_runs_out() {
    eventually(Duration::from_millis(100), "the flag is set", || async { false }).await;
}

#[tokio::test]
#[should_panic(expected = "a hung check answers")]
async fn eventually_cuts_off_a_check_that_hangs() {
    eventually(Duration::from_millis(100), "a hung check answers", std::future::pending::<bool>).await;
}
