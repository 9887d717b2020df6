//! What a running guardian exports, for tests that check that dashboards
//! and alert rules only name metrics that exist.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use guardian::app::App;
use guardian::clock::SystemClock;
use guardian::config::{self, MapEnv};
use guardian::sim::Simulator;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::eventually::eventually;

/// Metric names in a PromQL expression that the guardian would export:
/// `guardian_…` identifiers (recorded series are `guardian:…` and skipped).
pub fn guardian_metrics(expr: &str) -> BTreeSet<String> {
    let re = regex::Regex::new(r"\bguardian_[a-zA-Z0-9_]+").unwrap();
    re.find_iter(expr).map(|m| m.as_str().to_string()).collect()
}

/// Every sample name on `/metrics` of a guardian with every feature on (an
/// SLO, the simulated guard, Alertmanager and a webhook), after its first probe.
pub async fn metric_names() -> BTreeSet<String> {
    let stop = CancellationToken::new();
    let sim = Simulator::start(IpAddr::V4(Ipv4Addr::LOCALHOST), [0, 0, 0], stop.clone()).await.unwrap();
    let receiver = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let yaml = format!(
        r#"environment: prod
storage: {{ url: 'sqlite::memory:' }}
checks:
  - {{ name: payments-health, url: "http://{d}/api/payments/health", interval: 1s, budget: 3s }}
slos:
  - {{ name: payments, checks: [payments-health], objective: 0.999, window: 30d }}
guard:
  mode: simulated
  targets:
    - {{ kind: Deployment, namespace: blueocean-nextgen-prod, name: nextgen-dashboard }}
notify:
  alertmanager: ['http://{receiver}/']
  webhooks:
    - {{ url: 'http://{receiver}/hook', format: slack }}
"#,
        d = sim.dashboard()
    );
    let env = MapEnv(HashMap::new());
    let config = config::parse(&yaml, "exported.yaml", &env).unwrap_or_else(|e| panic!("{e}"));
    let app = App::build(config, Arc::new(SystemClock), &env).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let _running = app.start(listener, stop.clone());
    eventually(Duration::from_secs(5), "a first probe", || async { app.board.snapshot().iter().all(|c| c.up) }).await;
    let text = reqwest::get(format!("http://{api}/metrics")).await.unwrap().text().await.unwrap();
    stop.cancel();
    // With nothing at risk the figure is 0, never "-0" (dashboards would print "-€0").
    assert!(text.contains("guardian_revenue_at_risk_eur{environment=\"prod\"} 0\n"), "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .filter(|name| !name.is_empty())
        .map(str::to_string)
        .collect()
}
