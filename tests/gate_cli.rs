//! `guardian gate` as a deploy script runs it: the real binary against a
//! small scripted gate server, checking exit codes 0/1/2/3, the human and
//! `--json` output, and that `--wait` polls until go and stops at its
//! deadline.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up panics on failure by design

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_guardian");

/// Scripted answers, given in order; the last one repeats.
#[derive(Default)]
struct Script {
    answers: Mutex<VecDeque<(u16, String)>>,
    /// The query string of each request to `/api/v1/gate`.
    seen: Mutex<Vec<String>>,
}

impl Script {
    fn next(&self) -> (u16, String) {
        let mut answers = self.answers.lock().unwrap();
        if answers.len() > 1 { answers.pop_front().unwrap() } else { answers.front().cloned().unwrap() }
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

async fn answer(State(script): State<Arc<Script>>, uri: Uri) -> Response {
    script.seen.lock().unwrap().push(uri.query().unwrap_or("").to_string());
    let (status, body) = script.next();
    (StatusCode::from_u16(status).unwrap(), [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// A gate server on 127.0.0.1 that answers `answers` in order.
async fn gate_server(answers: Vec<(u16, String)>) -> (String, Arc<Script>) {
    let script = Arc::new(Script { answers: Mutex::new(answers.into()), seen: Mutex::default() });
    let app = axum::Router::new().route("/api/v1/gate", axum::routing::get(answer)).with_state(script.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}"), script)
}

/// A URL on which nothing listens: connections are refused.
fn refused_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

fn go(env: &str) -> (u16, String) {
    (200, format!(r#"{{"decision":"go","environment":"{env}","reasons":[],"evaluated_at":"2026-11-25T11:30:00Z"}}"#))
}

fn no_go(env: &str) -> (u16, String) {
    let body = format!(
        r#"{{"decision":"no-go","environment":"{env}","reasons":[{{"code":"outside_window","message":"Closed until 12:00."}},{{"code":"backup_stale","message":"No backup of {env} has been reported."}}],"evaluated_at":"2026-11-25T14:02:00Z"}}"#
    );
    (409, body)
}

struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    took: Duration,
}

async fn gate(args: &[&str]) -> Run {
    let started = Instant::now();
    let out = tokio::process::Command::new(BIN)
        .arg("gate")
        .args(args)
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY")
        .env_remove("all_proxy")
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(60), out).await.expect("guardian gate hung").unwrap();
    Run {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
        took: started.elapsed(),
    }
}

#[tokio::test]
async fn go_exits_0_and_says_go() {
    let (url, script) = gate_server(vec![go("prod")]).await;
    let run = gate(&["--url", &url, "--environment", "prod"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "GO prod\n");
    assert_eq!(script.seen(), ["environment=prod"]);
}

#[tokio::test]
async fn no_go_exits_1_and_lists_each_reason() {
    let (url, script) = gate_server(vec![no_go("staging-shared")]).await;
    let run = gate(&["--url", &format!("{url}/"), "--environment", "staging-shared"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert_eq!(
        run.stdout,
        "NO-GO staging-shared\n  outside_window: Closed until 12:00.\n  backup_stale: No backup of staging-shared has \
         been reported.\n"
    );
    assert_eq!(script.seen(), ["environment=staging-shared"], "a trailing slash on --url is fine");
}

#[tokio::test]
async fn json_prints_the_body_as_received() {
    for (answer, code) in [(go("dev"), 0), (no_go("dev"), 1)] {
        let body = answer.1.clone();
        let (url, _) = gate_server(vec![answer]).await;
        let run = gate(&["--url", &url, "--environment", "dev", "--json"]).await;
        assert_eq!(run.code, Some(code), "{}", run.stderr);
        assert_eq!(run.stdout, format!("{body}\n"));
    }
}

#[tokio::test]
async fn anything_but_a_consistent_gate_answer_fails_closed_with_3() {
    let rows = [
        ("a server error", (500, "oops".to_string()), "HTTP 500"),
        ("garbage", (200, "<html>sign in</html>".to_string()), "not a gate answer"),
        ("200 saying no-go", (200, no_go("prod").1), "contradicts"),
        ("409 saying go", (409, go("prod").1), "contradicts"),
        ("an answer about another environment", go("dev"), "asked about \"prod\""),
    ];
    for (row, answer, why) in rows {
        let (url, _) = gate_server(vec![answer]).await;
        let run = gate(&["--url", &url, "--environment", "prod"]).await;
        assert_eq!(run.code, Some(3), "{row}: {}", run.stderr);
        assert!(run.stderr.contains(why) && run.stderr.contains("failing closed"), "{row}: {}", run.stderr);
        assert_eq!(run.stdout, "", "{row}");
    }
}

#[tokio::test]
async fn an_unreachable_guardian_fails_closed_with_3() {
    let run = gate(&["--url", &refused_url(), "--environment", "prod", "--json"]).await;
    assert_eq!(run.code, Some(3));
    assert!(run.stderr.contains("cannot reach the guardian"), "{}", run.stderr);
    assert_eq!(run.stdout, "");
}

#[tokio::test]
async fn wait_polls_through_no_go_until_go() {
    let (url, script) = gate_server(vec![no_go("prod"), no_go("prod"), go("prod")]).await;
    let run = gate(&["--url", &url, "--environment", "prod", "--wait", "1m"]).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert_eq!(run.stdout, "GO prod\n");
    assert_eq!(script.seen().len(), 3);
    let polls: Vec<_> =
        run.stderr.lines().filter(|l| l.contains("NO-GO prod (outside_window, backup_stale)")).collect();
    assert_eq!(polls.len(), 2, "one stderr line per no-go poll: {}", run.stderr);
}

#[tokio::test]
async fn wait_stops_at_its_deadline_with_the_last_no_go() {
    let (url, script) = gate_server(vec![no_go("prod")]).await;
    let run = gate(&["--url", &url, "--environment", "prod", "--wait", "2s"]).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(run.stdout.starts_with("NO-GO prod\n"), "{}", run.stdout);
    assert!(script.seen().len() >= 2, "it polled more than once");
    // Generous upper bound: the deadline plus the last poll's 1s timeout plus process start-up.
    assert!(run.took >= Duration::from_secs(2) && run.took < Duration::from_secs(12), "took {:?}", run.took);
}

#[tokio::test]
async fn wait_against_an_unreachable_guardian_ends_with_3() {
    let run = gate(&["--url", &refused_url(), "--environment", "prod", "--wait", "1500ms"]).await;
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(run.stderr.lines().count() >= 2, "a line per failed poll, then the verdict: {}", run.stderr);
    assert!(run.took >= Duration::from_millis(1500) && run.took < Duration::from_secs(12), "took {:?}", run.took);
}

#[tokio::test]
async fn usage_errors_exit_2_before_asking_anything() {
    let url = refused_url();
    let rows: [(&str, Vec<&str>); 5] = [
        ("an unknown environment", vec!["--url", &url, "--environment", "staging"]),
        ("a URL without a scheme", vec!["--url", "guardian:9090", "--environment", "prod"]),
        ("not a URL", vec!["--url", "not a url", "--environment", "prod"]),
        ("a duration without a unit", vec!["--url", &url, "--environment", "prod", "--wait", "5"]),
        ("no --url", vec!["--environment", "prod"]),
    ];
    for (row, args) in rows {
        let run = gate(&args).await;
        assert_eq!(run.code, Some(2), "{row}: {}", run.stderr);
        assert!(!run.stderr.contains("cannot reach"), "{row}: {}", run.stderr);
    }
}
