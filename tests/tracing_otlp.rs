//! Tracing as an operator sees it: the real binary exports a span per probe
//! and per action over OTLP/HTTP (JSON) when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! is set, each probe carries its W3C `traceparent`, no secret leaves in a
//! span, and nothing at all is sent when export is off.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_types)] // test set-up panics by design

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::eventually::eventually;
use support::guardian::Guardian;
use support::otlp::{OtlpReceiver, TraceTarget, parse_traceparent};

const PASSWORD: &str = "s3cret";
const TOKEN: &str = "tok-5e4f3a2b1c0d";

fn config(target: &TraceTarget) -> String {
    format!(
        r#"environment: staging-shared
listen: "127.0.0.1:0"
checks:
  - name: payments-health
    url: "http://probe:{PASSWORD}@{}/api/payments/health?check=1"
    interval: 200ms
    budget: 1s
    headers: {{ Authorization: "Bearer ${{NEXTGEN_TOKEN}}" }}
    expect:
      json:
        - {{ path: /status, equals: ok }}
"#,
        target.addr
    )
}

#[tokio::test]
async fn probe_spans_reach_the_collector_and_join_the_targets_traces() {
    let (collector, target) = (OtlpReceiver::start().await, TraceTarget::start().await);
    let endpoint = collector.endpoint();
    let envs = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("NEXTGEN_TOKEN", TOKEN),
    ];
    let mut g = Guardian::start(&config(&target), &envs);
    eventually(Duration::from_secs(15), "a probe span whose traceparent reached the target", || async {
        let spans = collector.spans();
        target.traceparents().iter().flatten().filter_map(|t| parse_traceparent(t)).any(|(trace, parent)| {
            spans.iter().any(|s| s.name == "probe" && s.trace_id == trace && s.span_id == parent)
        })
    })
    .await;

    let spans = collector.spans();
    let probe = spans.iter().find(|s| s.name == "probe").unwrap();
    assert_eq!(probe.service_name, "guardian");
    assert_eq!(probe.kind, 3, "a client span: {probe:?}");
    assert_eq!(probe.attr("check"), "payments-health");
    let url = probe.attr("url").as_str().unwrap();
    assert_eq!(url, format!("http://probe:***@{}/api/payments/health?check=1", target.addr));
    assert_eq!(probe.attr("outcome"), "ok");
    assert_eq!(probe.attr("budget_ms").as_i64(), Some(1000), "{probe:?}");
    assert_eq!(probe.attr("http.response.status_code").as_i64(), Some(200));
    assert!(probe.attr("latency_ms").as_i64().is_some_and(|ms| (0..1000).contains(&ms)), "{probe:?}");
    // Every probe sent a well-formed traceparent.
    let sent = target.traceparents();
    assert!(sent.iter().all(|t| t.as_deref().and_then(parse_traceparent).is_some()), "{sent:?}");

    let raw = collector.raw();
    assert!(!raw.contains(PASSWORD), "the URL's password left in a span");
    assert!(!raw.contains(TOKEN), "a header value left in a span");
    assert!(!g.all_logs().contains(PASSWORD));
    assert_eq!(g.terminate(Duration::from_secs(5)), Some(0), "{}", g.all_logs());
}

/// Absence can only be shown by waiting: probes run every 200 ms and
/// batches leave every 200 ms, so a second after several probes anything
/// exported would have arrived.
async fn assert_nothing_exported(envs: &[(&str, &str)]) {
    let (collector, target) = (OtlpReceiver::start().await, TraceTarget::start().await);
    let mut g = Guardian::start(&config(&target), envs);
    eventually(Duration::from_secs(10), "guardian probes its target", || async { target.traceparents().len() >= 5 })
        .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(collector.requests(), 0, "nothing reaches the collector");
    assert!(target.traceparents().iter().all(Option::is_none), "no traceparent without export");
    assert_eq!(g.terminate(Duration::from_secs(5)), Some(0), "{}", g.all_logs());
}

#[tokio::test]
async fn without_the_endpoint_nothing_is_exported_and_guardian_runs_as_usual() {
    assert_nothing_exported(&[("OTEL_BSP_SCHEDULE_DELAY", "200"), ("NEXTGEN_TOKEN", TOKEN)]).await;
}

#[tokio::test]
async fn traces_exporter_none_turns_export_off_even_with_an_endpoint() {
    let collector = OtlpReceiver::start().await;
    let endpoint = collector.endpoint();
    assert_nothing_exported(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_TRACES_EXPORTER", "none"),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ("NEXTGEN_TOKEN", TOKEN),
    ])
    .await;
    assert_eq!(collector.requests(), 0);
}

#[tokio::test]
async fn a_bad_endpoint_is_named_in_a_warning_and_guardian_runs_without_export() {
    let target = TraceTarget::start().await;
    let envs = [("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318"), ("NEXTGEN_TOKEN", TOKEN)];
    let mut g = Guardian::start(&config(&target), &envs);
    eventually(Duration::from_secs(10), "guardian probes its target", || async { !target.traceparents().is_empty() })
        .await;
    let warning = g.logs.lock().unwrap().iter().find(|l| l.contains("span export is off")).cloned();
    let warning = warning.unwrap_or_else(|| panic!("no warning in {}", g.all_logs()));
    assert!(warning.contains("OTEL_EXPORTER_OTLP_ENDPOINT=") && warning.contains("collector:4318"), "{warning}");
    assert!(warning.contains(r#""level":"WARN""#), "{warning}");
    assert_eq!(g.terminate(Duration::from_secs(5)), Some(0), "{}", g.all_logs());
}

/// The demo runs the simulated guard in the real binary: its pause and
/// rollback arrive as `action` spans.
#[tokio::test]
async fn the_guards_pause_and_rollback_are_action_spans() {
    let collector = OtlpReceiver::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_guardian"))
        .args(["demo", "--duration", "20s"])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", collector.endpoint())
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("OTEL_SERVICE_NAME", "guardian-demo")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || BufReader::new(stdout).lines().map_while(Result::ok).for_each(drop));
    let actions = || collector.spans().into_iter().filter(|s| s.name == "action").collect::<Vec<_>>();
    eventually(Duration::from_secs(40), "a pause and a rollback span", || async {
        let done = actions();
        ["pause", "rollback"].iter().all(|a| done.iter().any(|s| s.attr("action") == *a && s.attr("outcome") == "ok"))
    })
    .await;
    let _ = child.kill();
    let _ = child.wait();
    for span in actions() {
        assert_eq!(span.service_name, "guardian-demo");
        assert_eq!(span.kind, 1, "an internal span: {span:?}");
        assert_eq!(span.attr("target").as_str().map(|t| t.contains("nextgen-dashboard")), Some(true), "{span:?}");
        let seconds = span.attr("breach_to_action_seconds").as_f64().unwrap();
        assert!((0.0..60.0).contains(&seconds), "{span:?}");
    }
}
