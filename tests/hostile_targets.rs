//! The prober against targets that attack it: huge and endless response
//! headers, endless or malformed chunked bodies, gzip bombs, invalid UTF-8,
//! JSON nested 100 MB deep, TLS handshakes that never finish. Each ends in a
//! failed probe with a reason a person understands, within the check's
//! timeout, and raises the process's peak memory by less than `rss::BOUND`
//! (64 MiB). `tests/probe.rs` has the plainer ones (silent, trickling, a 5 MB
//! body, an endless chunked body, a redirect loop, invalid JSON, TLS to a
//! plain-text server).
//!
//! Content-Encoding: reqwest is built without its gzip, brotli, zstd and
//! deflate features, so the prober neither offers nor decodes compression: a
//! gzip body is the bytes on the wire, capped by `max_body` like any other.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use guardian::clock::SystemClock;
use guardian::config::{self, Check, MapEnv};
use guardian::probe::{Outcome, ProbeResult, Prober};
use support::hostile::{self, Answer, Hostile};
use support::{rss, targets};

/// How far past its timeout a probe may end: scheduling, not waiting.
const SLACK: Duration = Duration::from_millis(500);
/// A check with one JSON assertion, as most NEXTGEN checks have.
const JSON: &str =
    "    budget: 1s\n    timeout: 3s\n    expect:\n      json:\n        - { path: /status, equals: ok }\n";
/// A check that only wants a 200.
const PLAIN: &str = "    budget: 1s\n    timeout: 3s\n";
/// A TLS check with a short timeout.
const TLS: &str = "    budget: 300ms\n    timeout: 1s\n";

fn check(url: &str, extra: &str) -> Check {
    let yaml = format!("environment: dev\nchecks:\n  - name: t\n    url: '{url}'\n{extra}");
    config::parse(&yaml, "test.yaml", &MapEnv::default()).unwrap_or_else(|e| panic!("{e}")).checks.remove(0)
}

/// One probe, with how much it raised the process's peak memory.
struct Probed {
    r: ProbeResult,
    grew: u64,
}

/// Probes `target` once over `scheme`, and checks what every hostile probe must
/// show: failed, within the timeout, in bounded memory.
async fn probe(scheme: &str, target: &Hostile, extra: &str) -> Probed {
    let check = check(&format!("{scheme}://{}/api/status", target.addr), extra);
    let prober = Prober::new(Arc::new(SystemClock)).unwrap();
    let meter = rss::Meter::start();
    let r = prober.probe(&check, |_| {}).await;
    let grew = meter.grew();
    eprintln!(
        "{:?} after {:?}: {} — peak memory +{}, {} bytes written by the target",
        r.outcome,
        r.latency,
        r.reason,
        rss::mib(grew),
        target.written()
    );
    assert!(r.latency <= check.timeout + SLACK, "not within the {:?} timeout: {:?}", check.timeout, r.latency);
    assert!(grew < rss::BOUND, "peak memory grew by {}: {}", rss::mib(grew), r.reason);
    Probed { r, grew }
}

fn failed(p: &Probed, reason: &str) {
    assert_eq!((p.r.outcome, p.r.reason.as_str()), (Outcome::Failed, reason));
}

fn request_failed(target: &Hostile, why: &str) -> String {
    format!("request to 127.0.0.1:{} failed: {why}", target.addr.port())
}

#[tokio::test]
async fn the_memory_meter_sees_what_a_probe_may_not_cost() {
    // The bound below is only worth something if the meter can see it broken.
    let meter = rss::Meter::start();
    let held = vec![1u8; (rss::BOUND + (16 << 20)) as usize];
    assert!(meter.grew() >= rss::BOUND, "a {} allocation went unseen", rss::mib(held.len() as u64));
}

#[tokio::test]
async fn a_one_megabyte_response_header_fails_as_too_large() {
    let t = hostile::answering(
        Answer::new()
            .then("HTTP/1.1 200 OK\r\nx-filler: ")
            .repeat("a", 1 << 20)
            .then("\r\ncontent-length: 2\r\n\r\n{}"),
    )
    .await;
    failed(&probe("http", &t, PLAIN).await, &request_failed(&t, "message head is too large"));
}

#[tokio::test]
async fn ten_thousand_response_headers_fail_as_too_large() {
    let t = hostile::answering(
        Answer::new().then("HTTP/1.1 200 OK\r\n").repeat("x-h: v\r\n", 10_000).then("content-length: 2\r\n\r\n{}"),
    )
    .await;
    failed(&probe("http", &t, PLAIN).await, &request_failed(&t, "message head is too large"));
}

#[tokio::test]
async fn a_response_header_that_never_ends_fails_as_too_large_at_once() {
    let t = hostile::answering(Answer::new().then("HTTP/1.1 200 OK\r\nx-endless: ").forever("a")).await;
    let p = probe("http", &t, PLAIN).await;
    failed(&p, &request_failed(&t, "message head is too large"));
    assert!(p.r.latency < Duration::from_secs(1), "stopped by the head limit, not the timeout: {:?}", p.r.latency);
}

#[tokio::test]
async fn endless_one_byte_chunks_end_at_the_timeout_with_what_was_read_bounded() {
    // Six wire bytes per body byte: the cap (16 MiB here) is never reached, the timeout is.
    let t = hostile::answering(
        Answer::new().then("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").forever("1\r\n \r\n"),
    )
    .await;
    let p = probe("http", &t, "    budget: 300ms\n    timeout: 1s\n    max_body: 16MiB\n").await;
    failed(&p, "no complete answer within the 1s timeout");
    assert!(p.r.latency >= Duration::from_secs(1));
}

#[tokio::test]
async fn an_endless_chunk_extension_is_refused_by_the_http_stack() {
    let t =
        hostile::answering(Answer::new().then("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1;").forever("a"))
            .await;
    let p = probe("http", &t, PLAIN).await;
    failed(&p, "body broke off after 0 bytes: error reading a body from connection: chunk extensions over limit");
    assert_eq!(p.r.status, Some(200));
}

#[tokio::test]
async fn endless_trailers_are_refused_by_the_http_stack() {
    let t = hostile::answering(
        Answer::new()
            .then("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n")
            .forever("x-trailer: v\r\n"),
    )
    .await;
    let p = probe("http", &t, PLAIN).await;
    failed(&p, "body broke off after 2 bytes: error reading a body from connection: chunk trailers count overflow");
}

#[tokio::test]
async fn a_chunk_size_beyond_64_bits_is_refused() {
    let t = hostile::answering(
        Answer::new().then("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nfffffffffffffffff\r\n").forever("a"),
    )
    .await;
    let p = probe("http", &t, PLAIN).await;
    failed(&p, "body broke off after 0 bytes: error reading a body from connection: invalid chunk size: overflow");
}

#[tokio::test]
async fn a_gzip_bomb_is_never_inflated_and_stops_at_max_body() {
    // 8 GiB of zeros in 54 MB of gzip, sent although the prober never asked for it.
    let (t, offered) = hostile::gzip_bomb(8 << 30).await;
    let p = probe("http", &t, JSON).await;
    assert!(!offered.load(Ordering::SeqCst), "the prober offered an encoding: check the cap applies after decoding");
    failed(&p, "body is larger than the 1MiB limit");
    // What the target wrote includes the sockets' buffers: a few MB past what was read.
    assert!(t.written() < 20_000_000, "the bomb was pulled: {} bytes", t.written());
}

#[tokio::test]
async fn a_gzip_body_under_max_body_is_judged_as_the_bytes_it_is() {
    // 64 MiB of zeros in 420 KB of gzip: under the cap, and read as it came, never inflated.
    let (t, offered) = hostile::gzip_bomb(64 << 20).await;
    let p = probe("http", &t, JSON).await;
    assert!(!offered.load(Ordering::SeqCst));
    failed(&p, "body is not JSON (expected value at line 1 column 1), so /status cannot be checked");
    assert!(p.grew < 8 << 20, "a 420 KB body cost {}", rss::mib(p.grew));
}

/// A 200 carrying `body` with its length, after `extra_headers`.
fn answer(status_line: &[u8], extra_headers: &[u8], body: &[u8]) -> Answer {
    let mut bytes = status_line.to_vec();
    bytes.extend_from_slice(extra_headers);
    bytes.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
    bytes.extend_from_slice(body);
    Answer::new().then(bytes)
}

#[tokio::test]
async fn invalid_utf8_in_a_json_string_fails_the_json_assertions_clearly() {
    let t = hostile::answering(answer(b"HTTP/1.1 200 OK\r\n", b"", b"{\"status\":\"ok\xff\xfe\"}")).await;
    let p = probe("http", &t, JSON).await;
    failed(&p, "body is not JSON (invalid unicode code point at line 1 column 14), so /status cannot be checked");
}

#[tokio::test]
async fn body_contains_reads_a_body_with_invalid_utf8_without_failing() {
    let t = hostile::answering(answer(b"HTTP/1.1 200 OK\r\n", b"", b"\xff\xfe status: ok \xc3")).await;
    let p = probe("http", &t, "    budget: 1s\n    expect: { body_contains: 'status: ok' }\n").await;
    assert_eq!(p.r.outcome, Outcome::Ok, "{}", p.r.reason);
}

#[tokio::test]
async fn invalid_utf8_in_a_header_value_or_the_reason_phrase_does_not_matter() {
    let t =
        hostile::answering(answer(b"HTTP/1.1 200 \xc3\x28\r\n", b"x-odd: \xff\xfe\x80\r\n", b"{\"status\":\"ok\"}"))
            .await;
    let p = probe("http", &t, JSON).await;
    assert_eq!(p.r.outcome, Outcome::Ok, "{}", p.r.reason);
}

#[tokio::test]
async fn invalid_utf8_in_a_header_name_fails_as_an_invalid_header() {
    let t = hostile::answering(answer(b"HTTP/1.1 200 OK\r\n", b"x-b\xffd: v\r\n", b"{\"status\":\"ok\"}")).await;
    failed(&probe("http", &t, JSON).await, &request_failed(&t, "invalid HTTP header parsed"));
}

#[tokio::test]
async fn a_redirect_to_an_unreadable_location_fails_on_its_status_followed_or_not() {
    for follow in ["false", "true"] {
        let t = hostile::answering(answer(b"HTTP/1.1 302 Found\r\n", b"location: /r\xff\xfe\r\n", b"")).await;
        let p = probe("http", &t, &format!("{PLAIN}    follow_redirects: {follow}\n")).await;
        failed(&p, "status 302, expected 200");
    }
}

#[tokio::test]
async fn a_100_mb_deeply_nested_body_is_refused_by_its_length_without_being_read() {
    let depth = 50_000_000;
    let t = hostile::answering(
        Answer::new()
            .then(format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", 2 * depth))
            .repeat("[", depth)
            .repeat("]", depth),
    )
    .await;
    let p = probe("http", &t, JSON).await;
    failed(&p, "body is larger than the 1MiB limit (Content-Length 100000000)");
}

#[tokio::test]
async fn a_100_mb_deeply_nested_body_without_a_length_is_cut_at_max_body() {
    let depth = 50_000_000;
    let t = hostile::answering(
        Answer::new()
            .then("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n")
            .repeat("[", depth)
            .repeat("]", depth),
    )
    .await;
    let p = probe("http", &t, JSON).await;
    failed(&p, "body is larger than the 1MiB limit");
    assert!(t.written() < 50_000_000, "the body was pulled: {} bytes", t.written());
}

#[tokio::test]
async fn deep_nesting_within_max_body_fails_as_not_json_without_overflowing_the_stack() {
    // 500,000 levels in 1,000,000 bytes: a recursive parser without a limit would blow the stack.
    let depth = 500_000;
    let t = hostile::answering(
        Answer::new()
            .then(format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n", 2 * depth))
            .repeat("[", depth)
            .repeat("]", depth),
    )
    .await;
    let p = probe("http", &t, JSON).await;
    failed(&p, "body is not JSON (recursion limit exceeded at line 1 column 128), so /status cannot be checked");
}

#[tokio::test]
async fn a_tls_server_that_never_answers_the_client_hello_fails_at_the_timeout() {
    let t = Hostile { addr: targets::silent().await, written: Arc::default() };
    let p = probe("https", &t, TLS).await;
    failed(&p, "no complete answer within the 1s timeout");
    assert!(p.r.latency >= Duration::from_secs(1) && p.r.over_budget_early);
}

#[tokio::test]
async fn a_tls_handshake_trickled_a_byte_at_a_time_fails_at_the_timeout() {
    // A ServerHello record header announcing 16 KiB, then one byte every 100 ms.
    let t = hostile::tls_trickle(&[0x16, 0x03, 0x03, 0x40, 0x00], 0x02, Duration::from_millis(100)).await;
    let p = probe("https", &t, TLS).await;
    failed(&p, "no complete answer within the 1s timeout");
    assert!(p.r.latency >= Duration::from_secs(1));
    assert!(t.written() > 5, "the target never got to trickle");
}

/// Peak RSS of `guardian probe -c CONFIG` in KiB (from `/usr/bin/time -v`), and its stdout.
fn probe_command(config: &std::path::Path) -> Option<(Option<i32>, String, u64)> {
    let out = match Command::new("/usr/bin/time")
        .args(["-v", env!("CARGO_BIN_EXE_guardian"), "probe", "-c"])
        .arg(config)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "/usr/bin/time is missing, and CI=true requires it");
            eprintln!("/usr/bin/time not found (Debian package time): skipped");
            return None;
        }
        Err(e) => panic!("cannot run /usr/bin/time: {e}"),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    let kib = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes): "))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in: {stderr}"));
    Some((out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), kib))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn guardian_probe_against_every_hostile_target_at_once_fails_each_in_bounded_memory() {
    let healthy = targets::healthy(r#"{"status":"ok"}"#).await;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, checks: &[(&str, String, &str)]| {
        let mut yaml = "environment: dev\nchecks:\n".to_string();
        for (check, url, extra) in checks {
            yaml += &format!("  - {{ name: {check}, url: '{url}', budget: 1s, timeout: 3s{extra} }}\n");
        }
        let path = dir.path().join(name);
        std::fs::write(&path, yaml).unwrap();
        path
    };
    let calm = write("calm.yaml", &[("healthy", format!("http://{healthy}/"), "")]);
    let json = ", expect: { json: [ { path: /status, equals: ok } ] }";
    let header = hostile::answering(Answer::new().then("HTTP/1.1 200 OK\r\nx-endless: ").forever("a")).await;
    let chunk = format!("8000\r\n{}\r\n", "a".repeat(0x8000));
    let chunks =
        hostile::answering(Answer::new().then("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n").forever(chunk))
            .await;
    let (bomb, _) = hostile::gzip_bomb(1 << 30).await;
    let deep =
        hostile::answering(Answer::new().then("HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n").repeat("[", 50_000_000))
            .await;
    let tls = targets::silent().await;
    let hostile = write(
        "hostile.yaml",
        &[
            ("healthy", format!("http://{healthy}/"), ""),
            ("endless-header", format!("http://{}/", header.addr), ""),
            ("endless-chunks", format!("http://{}/", chunks.addr), ""),
            ("gzip-bomb", format!("http://{}/", bomb.addr), json),
            ("deep-json", format!("http://{}/", deep.addr), json),
            ("slow-tls", format!("https://{tls}/"), ""),
        ],
    );
    let run = |path: std::path::PathBuf| tokio::task::spawn_blocking(move || probe_command(&path));
    let Some((code, _, calm_kib)) = run(calm).await.unwrap() else { return };
    assert_eq!(code, Some(0));
    let (code, table, hostile_kib) = run(hostile).await.unwrap().unwrap();
    let grew = (hostile_kib.saturating_sub(calm_kib)) * 1024;
    eprintln!(
        "{table}peak RSS: {calm_kib} KiB calm, {hostile_kib} KiB against the hostile targets (+{})",
        rss::mib(grew)
    );
    assert_eq!(code, Some(1), "{table}");
    for (name, verdict) in [
        ("healthy", "OK"),
        ("endless-header", "FAILED"),
        ("endless-chunks", "FAILED"),
        ("gzip-bomb", "FAILED"),
        ("deep-json", "FAILED"),
        ("slow-tls", "FAILED"),
    ] {
        let row = table.lines().find(|l| l.starts_with(name)).unwrap_or_else(|| panic!("no {name} row:\n{table}"));
        assert!(row.contains(&format!(" {verdict} ")), "{name} is not {verdict}:\n{table}");
    }
    assert!(grew < rss::BOUND, "peak RSS grew by {}:\n{table}", rss::mib(grew));
}
