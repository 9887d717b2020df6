//! `guardian run` as a user runs it: the real binary probing the simulator,
//! its health, readiness, metrics and status endpoints, secrets kept out of
//! everything it shows, and a clean stop on SIGTERM.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use guardian::sim::{Fault, Simulator};
use support::eventually::eventually;
use support::guardian::Guardian;
use support::promtext::sample;
use tokio_util::sync::CancellationToken;

const SECRET: &str = "tok-9f8e7d6c5b4a";

async fn sim() -> Simulator {
    Simulator::start(IpAddr::V4(Ipv4Addr::LOCALHOST), [0, 0, 0], CancellationToken::new()).await.unwrap()
}

fn config(sim: &Simulator) -> String {
    let d = sim.dashboard();
    format!(
        r#"environment: staging-shared
listen: "127.0.0.1:0"
checks:
  - name: revenue-status
    url: "http://{d}/api/revenue/status"
    interval: 300ms
    budget: 500ms
    headers: {{ Authorization: "Bearer ${{NEXTGEN_TOKEN}}" }}
    expect:
      json:
        - {{ path: /status, equals: ok }}
  - name: payments-health
    url: "http://{d}/api/payments/health"
    interval: 300ms
    budget: 1s
    timeout: 20s
  - name: domains-list
    url: "http://{d}/api/domains"
    interval: 300ms
    budget: 2s
    expect:
      json:
        - {{ path: /domains, length: 230 }}
"#
    )
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_service_probes_and_reports_through_health_readiness_status_and_metrics() {
    let sim = sim().await;
    let g = Guardian::start(&config(&sim), &[("NEXTGEN_TOKEN", SECRET)]);
    assert_eq!(get(&g.url("/healthz")).await.0, 200);
    eventually(Duration::from_secs(10), "/readyz turns 200 once every check has a result", || async {
        get(&g.url("/readyz")).await.0 == 200
    })
    .await;
    let (code, body) = get(&g.url("/api/v1/status")).await;
    assert_eq!(code, 200);
    let status: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(status["environment"], "staging-shared");
    let checks = status["checks"].as_array().unwrap();
    assert_eq!(checks.len(), 3);
    for c in checks {
        assert_eq!(c["up"], true, "{c}");
        assert_eq!(c["last"]["outcome"], "ok", "{c}");
        assert!(c["last"]["latency"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(checks[0]["budget_seconds"], 0.5);

    let (code, metrics) = get(&g.url("/metrics")).await;
    assert_eq!(code, 200);
    let env = ("environment", "staging-shared");
    assert_eq!(sample(&metrics, "guardian_check_budget_seconds", &[("check", "payments-health"), env]), Some(1.0));
    assert_eq!(sample(&metrics, "guardian_check_up", &[("check", "revenue-status"), env]), Some(1.0));
    let under_budget =
        sample(&metrics, "guardian_probe_duration_seconds_bucket", &[("check", "revenue-status"), ("le", "0.5")]);
    assert!(under_budget.unwrap() >= 1.0, "a bucket sits exactly at the 500ms budget");
    assert!(
        sample(&metrics, "guardian_probes_total", &[("check", "domains-list"), ("outcome", "ok"), env]).unwrap() >= 1.0
    );
    assert_eq!(
        sample(&metrics, "guardian_probes_total", &[("check", "domains-list"), ("outcome", "failed")]),
        Some(0.0)
    );
    support::promtext::assert_valid(&metrics);

    for (what, text) in [("status", body), ("metrics", metrics), ("logs", g.all_logs())] {
        assert!(!text.contains(SECRET), "the header secret leaked into {what}");
    }
}

#[tokio::test]
async fn a_slow_payments_endpoint_turns_the_check_bad_before_its_probe_ends() {
    let sim = sim().await;
    let g = Guardian::start(&config(&sim), &[("NEXTGEN_TOKEN", SECRET)]);
    eventually(Duration::from_secs(10), "ready", || async { get(&g.url("/readyz")).await.0 == 200 }).await;
    sim.faults().set(Fault { latency_ms: 20_000, ..Fault::on("/api/payments/health") });
    eventually(Duration::from_secs(5), "payments-health over budget while its probe still runs", || async {
        let status: serde_json::Value = serde_json::from_str(&get(&g.url("/api/v1/status")).await.1).unwrap();
        let p = &status["checks"][1];
        p["over_budget_in_flight"] == true && p["up"] == false
    })
    .await;
    let metrics = get(&g.url("/metrics")).await.1;
    assert_eq!(sample(&metrics, "guardian_check_up", &[("check", "payments-health")]), Some(0.0));
    assert_eq!(sample(&metrics, "guardian_check_up", &[("check", "revenue-status")]), Some(1.0));
}

#[tokio::test]
async fn readiness_names_the_checks_that_have_no_result_yet() {
    let sim = sim().await;
    sim.faults().set(Fault { latency_ms: 20_000, ..Fault::on("/api/payments/health") });
    let g = Guardian::start(&config(&sim), &[("NEXTGEN_TOKEN", SECRET)]);
    eventually(Duration::from_secs(5), "the other checks have results", || async {
        let status: serde_json::Value = serde_json::from_str(&get(&g.url("/api/v1/status")).await.1).unwrap();
        !status["checks"][0]["last"].is_null() && !status["checks"][2]["last"].is_null()
    })
    .await;
    assert_eq!(get(&g.url("/readyz")).await, (503, "not ready: no fresh result for payments-health\n".to_string()));
}

#[tokio::test]
async fn sigterm_stops_within_five_seconds_even_with_probes_in_flight() {
    let sim = sim().await;
    let mut g = Guardian::start(&config(&sim), &[("NEXTGEN_TOKEN", SECRET)]);
    // Every payments probe now hangs for 20 s: several are in flight at the signal.
    sim.faults().set(Fault { latency_ms: 20_000, ..Fault::on("/api/payments/health") });
    eventually(Duration::from_secs(5), "a payments probe in flight over budget", || async {
        get(&g.url("/api/v1/status")).await.1.contains(r#""over_budget_in_flight":true"#)
    })
    .await;
    let started = tokio::time::Instant::now();
    let code = tokio::task::spawn_blocking(move || {
        let code = g.terminate(Duration::from_secs(5));
        (code, g)
    })
    .await
    .unwrap();
    assert_eq!(code.0, Some(0), "exit code after SIGTERM; logs: {}", code.1.all_logs());
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(code.1.all_logs().contains("SIGTERM"));
}

#[test]
fn a_bad_config_exits_2_with_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.yaml");
    std::fs::write(&path, "environment: prod\nchecks: []\n").unwrap();
    let out =
        std::process::Command::new(env!("CARGO_BIN_EXE_guardian")).arg("run").arg("-c").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("g.yaml:2:9: checks: empty: a guardian needs at least one check")
    );
}

#[test]
fn the_kubernetes_guard_without_a_cluster_stops_at_start_and_says_where_it_looked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.yaml");
    let yaml = "environment: prod\nlisten: '127.0.0.1:0'\nstorage: { url: 'sqlite::memory:' }\n\
        checks:\n  - { name: a, url: 'http://127.0.0.1:9/x', budget: 1s }\n\
        guard:\n  mode: kubernetes\n  targets:\n    - { kind: Deployment, namespace: ns, name: d }\n";
    std::fs::write(&path, yaml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_guardian"))
        .args(["run", "-c"])
        .arg(&path)
        .env("KUBECONFIG", dir.path().join("no-such-kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("guard.mode is kubernetes but no Kubernetes API is configured"), "{stderr}");
    assert!(stderr.contains("no-such-kubeconfig"), "names the kubeconfig it tried: {stderr}");
}

async fn slo_total(g: &Guardian) -> u64 {
    let status: serde_json::Value = serde_json::from_str(&get(&g.url("/api/v1/status")).await.1).unwrap();
    status["slos"][0]["windows"].as_array().unwrap().iter().find(|w| w["window"] == "1d").unwrap()["total"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn slo_windows_survive_a_restart_on_the_embedded_sqlite() {
    let sim = sim().await;
    let dir = tempfile::tempdir().unwrap();
    let config = format!("{}slos:\n  - {{ name: payments, checks: [payments-health], window: 1d }}\n", config(&sim));
    let mut first = Guardian::start_in(dir.path(), &config, &[("NEXTGEN_TOKEN", SECRET)]);
    eventually(Duration::from_secs(10), "some probes counted", || async { slo_total(&first).await >= 5 }).await;
    let code = tokio::task::spawn_blocking(move || first.terminate(Duration::from_secs(5))).await.unwrap();
    assert_eq!(code, Some(0));
    assert!(dir.path().join("guardian.db").exists(), "the embedded default is a SQLite file");
    let second = Guardian::start_in(dir.path(), &config, &[("NEXTGEN_TOKEN", SECRET)]);
    eventually(Duration::from_secs(5), "the second guardian restores from storage", || async {
        second.all_logs().contains("restored from storage")
    })
    .await;
    let line = second.all_logs().lines().find(|l| l.contains("restored from storage")).unwrap().to_string();
    let rows = serde_json::from_str::<serde_json::Value>(&line).unwrap()["rows"].as_u64().unwrap();
    assert!(rows >= 1, "roll-up rows came back from storage: {line}");
    assert!(slo_total(&second).await >= 5, "the 1d window holds the first guardian's probes");
}

#[tokio::test]
async fn with_storage_down_probing_and_the_gate_go_on_and_readyz_says_why() {
    let sim = sim().await;
    let config = format!(
        "storage: {{ url: \"postgres://guardian@127.0.0.1:1/guardian\" }}\n{}slos:\n  - {{ name: revenue, checks: [revenue-status] }}\n",
        config(&sim)
    );
    let g = Guardian::start(&config, &[("NEXTGEN_TOKEN", SECRET)]);
    eventually(Duration::from_secs(10), "checks have results", || async {
        get(&g.url("/readyz")).await.1.contains("storage unreachable")
            && !get(&g.url("/readyz")).await.1.contains("no fresh result")
    })
    .await;
    let (code, body) = get(&g.url("/readyz")).await;
    assert_eq!(code, 503);
    assert!(body.starts_with("not ready: storage unreachable ("), "{body}");
    let (code, gate) = get(&g.url("/api/v1/gate?environment=staging-shared")).await;
    // The gate answers from memory, but the 30-day budget is unknown until storage answers: no-go.
    assert_eq!(code, 409, "{gate}");
    let gate: serde_json::Value = serde_json::from_str(&gate).unwrap();
    assert_eq!(gate["reasons"][0]["code"], "slo_budget_low", "{gate}");
    assert!(gate["reasons"][0]["message"].as_str().unwrap().starts_with("SLO history is not loaded yet"));
    let metrics = get(&g.url("/metrics")).await.1;
    assert_eq!(sample(&metrics, "guardian_storage_up", &[]), Some(0.0));
    assert!(
        sample(&metrics, "guardian_storage_queued_writes", &[]).unwrap() >= 1.0,
        "gate decisions wait in the queue"
    );
}
