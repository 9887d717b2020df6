#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design
//! The real Prometheus from Debian on loopback, scraping a running guardian
//! that probes the NEXTGEN simulator every second, with
//! `alerts/guardian-rules.yml` loaded: every dashboard query returns data,
//! and a payments fault takes the page-level burn-rate alert to pending,
//! then firing. The rule file is loaded as shipped except its `for:`
//! durations, shortened to 5 s so the test takes seconds. Without
//! `prometheus` on PATH the test prints a note and passes, except under
//! `CI=true`, where it fails.

mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use guardian::clock::SystemClock;
use guardian::config::{self, MapEnv};
use guardian::sim::{Fault, Simulator};
use serde_json::Value;
use support::eventually::eventually;
use support::in_process::{Started, dashboard, start_simulated};
use tokio_util::sync::CancellationToken;

struct Prometheus {
    child: Child,
    base: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    /// Scraping `target` every second and evaluating `rules` every second; `None` when not installed.
    fn start(target: SocketAddr, rules: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("rules.yml"), rules).unwrap();
        let config = format!(
            "global: {{ scrape_interval: 1s, evaluation_interval: 1s }}\nrule_files: [rules.yml]\n\
             scrape_configs:\n  - job_name: guardian\n    static_configs: [{{ targets: ['{target}'] }}]\n"
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let spawned = Command::new("prometheus")
            .arg(format!("--config.file={}", dir.path().join("prometheus.yml").display()))
            .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn();
        match spawned {
            Ok(child) => Some(Self { child, base: format!("http://127.0.0.1:{port}"), dir }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                assert!(
                    std::env::var("CI").as_deref() != Ok("true"),
                    "prometheus is not on PATH, and CI=true requires it"
                );
                eprintln!("prometheus not on PATH (Debian package prometheus): skipped");
                None
            }
            Err(e) => panic!("cannot start prometheus: {e}"),
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query's result vector (empty on any error).
    async fn query(&self, expr: &str) -> Vec<Value> {
        let url = url::Url::parse_with_params(&format!("{}/api/v1/query", self.base), [("query", expr)]).unwrap();
        let Ok(r) = reqwest::get(url).await else { return vec![] };
        let Ok(body) = r.text().await else { return vec![] };
        let v: Value = serde_json::from_str(&body).unwrap_or_default();
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    async fn alert_states(&self, alertname: &str) -> Vec<String> {
        let alerts = self.query(&format!("ALERTS{{alertname=\"{alertname}\"}}")).await;
        alerts.iter().filter_map(|a| a["metric"]["alertstate"].as_str().map(str::to_string)).collect()
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped rules with every `for:` shortened to 5 s.
fn rules_for_the_test() -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts/guardian-rules.yml")).unwrap();
    let re = regex::Regex::new(r"(?m)^(\s+for: )\S+$").unwrap();
    let shortened = re.replace_all(&text, "${1}5s").into_owned();
    assert_ne!(shortened, text, "the rules have `for:` durations to shorten");
    shortened
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_the_guardian_every_dashboard_query_has_data_and_a_payments_fault_pages() {
    let stop = CancellationToken::new();
    let sim = Simulator::start(IpAddr::V4(Ipv4Addr::LOCALHOST), [0, 0, 0], stop.clone()).await.unwrap();
    let receiver = support::recorder::Recorder::start(axum::http::StatusCode::OK).await;
    let d = sim.dashboard();
    let yaml = format!(
        r#"environment: prod
storage: {{ url: 'sqlite::memory:' }}
probing: {{ per_host_per_second: 1000 }}
checks:
  - {{ name: payments-health, url: "http://{d}/api/payments/health", interval: 1s, budget: 3s, timeout: 6s }}
  - {{ name: revenue-status, url: "http://{d}/api/revenue/status", interval: 1s, budget: 500ms }}
slos:
  - {{ name: payments, checks: [payments-health], objective: 0.999, window: 30d }}
  - {{ name: revenue, checks: [revenue-status], objective: 0.999, window: 30d }}
guard:
  mode: simulated
  targets:
    - {{ kind: Deployment, namespace: blueocean-nextgen-prod, name: nextgen-dashboard, checks: [payments-health] }}
notify:
  webhooks:
    - {{ url: 'http://{r}/hook', format: generic }}
"#,
        r = receiver.addr
    );
    let env = MapEnv(HashMap::new());
    let config = config::parse(&yaml, "prometheus-e2e.yaml", &env).unwrap_or_else(|e| panic!("{e}"));
    let Started { app: _app, cluster, api } = start_simulated(config, Arc::new(SystemClock), &env, &stop).await;
    let dashboard = dashboard();
    let Some(prom) = Prometheus::start(api, &rules_for_the_test()) else {
        stop.cancel();
        return;
    };
    eventually(Duration::from_secs(30), "Prometheus scrapes the guardian", || async {
        prom.query(r#"up{job="guardian"} == 1"#).await.len() == 1
    })
    .await;

    // A rollout that is paused and rolled back, so the rollout panels have data too.
    cluster.start_rollout(&dashboard, "nextgen-dashboard:1.8.2").unwrap();
    sim.faults().set(Fault { status: Some(503), error_rate: 1.0, ..Fault::on("/api/payments/health") });
    eventually(Duration::from_secs(20), "the burn-rate page is pending or firing", || async {
        !prom.alert_states("SLOBurnRatePage").await.is_empty()
    })
    .await;
    eventually(Duration::from_secs(30), "the burn-rate page fires", || async {
        prom.alert_states("SLOBurnRatePage").await.iter().any(|s| s == "firing")
    })
    .await;
    let firing = prom.query(r#"ALERTS{alertname="SLOBurnRatePage", alertstate="firing"}"#).await;
    assert!(firing.iter().all(|a| a["metric"]["slo"] == "payments"), "only payments burns: {firing:?}");
    assert!(firing.iter().all(|a| a["metric"]["team"] == "business" && a["metric"]["severity"] == "page"));
    eventually(Duration::from_secs(30), "the rollback pages too", || async {
        prom.alert_states("RollbackPerformed").await.iter().any(|s| s == "firing")
    })
    .await;

    // Recording rules have been evaluated by now; every dashboard query has data.
    let mut empty = Vec::new();
    for q in support::dashboards::queries() {
        let expr = support::dashboards::concrete(&q.expr, "prod");
        let mut found = false;
        for _ in 0..20 {
            if !prom.query(&expr).await.is_empty() {
                found = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        if !found {
            empty.push(format!("{} / {}: {expr}", q.dashboard, q.panel));
        }
    }
    stop.cancel();
    assert!(empty.is_empty(), "dashboard queries without data:\n{}\n{}", empty.join("\n"), prom.log());
}
