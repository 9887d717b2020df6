//! The HTTP API's contract: the gate's answers and its Flagger and Argo
//! forms, backups, incidents, and SPEC's error statuses (401, 403, 413,
//! 400, 429) — against a real guardian probing the real simulator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use guardian::app::App;
use guardian::clock::SystemClock;
use guardian::config::{self, MapEnv};
use guardian::sim::{Fault, Simulator};
use serde_json::{Value, json};
use support::eventually::eventually;
use support::promtext::sample;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const TOKEN: &str = "api-token-7f3a9c";

struct Guardian {
    app: App,
    addr: SocketAddr,
    sim: Simulator,
    _stop: tokio_util::sync::DropGuard,
}

async fn guardian(extra: &str, with_token: bool) -> Guardian {
    let sim = Simulator::start(IpAddr::V4(Ipv4Addr::LOCALHOST), [0, 0, 0], CancellationToken::new()).await.unwrap();
    let d = sim.dashboard();
    let api = if extra.contains("api:") { "" } else { "api: { token_env: GUARDIAN_API_TOKEN }" };
    let yaml = format!(
        r#"environment: prod
storage: {{ url: "sqlite::memory:" }}
{api}
checks:
  - {{ name: payments-health, url: "http://{d}/api/payments/health", interval: 200ms, budget: 1s, timeout: 5s }}
  - {{ name: revenue-status, url: "http://{d}/api/revenue/status", interval: 200ms, budget: 500ms }}
slos:
  - {{ name: payments, checks: [payments-health], objective: 0.5, window: 1d }}
{extra}"#
    );
    let config = config::parse(&yaml, "api.yaml", &MapEnv::default()).unwrap_or_else(|e| panic!("{e}"));
    let env = if with_token {
        MapEnv(HashMap::from([("GUARDIAN_API_TOKEN".to_string(), TOKEN.to_string())]))
    } else {
        MapEnv::default()
    };
    let app = App::build(config, Arc::new(SystemClock), &env).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let stop = CancellationToken::new();
    let _running = app.start(listener, stop.clone());
    let g = Guardian { app, addr, sim, _stop: stop.drop_guard() };
    eventually(Duration::from_secs(5), "every check has a result", || async {
        g.app.board.without_fresh_result().is_empty()
    })
    .await;
    g
}

impl Guardian {
    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let r = reqwest::get(self.url(path)).await.unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, token: Option<&str>, body: Vec<u8>) -> (u16, Value) {
        let mut req = reqwest::Client::new().post(self.url(path)).body(body);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, serde_json::from_slice(&r.bytes().await.unwrap()).unwrap_or(Value::Null))
    }
}

fn backup(env: &str, completed_at: &str) -> Vec<u8> {
    json!({"environment": env, "id": "nightly-1", "completed_at": completed_at, "ok": true}).to_string().into_bytes()
}

#[tokio::test]
async fn the_gate_says_go_with_spec_s_body_when_all_is_well() {
    let g = guardian("", true).await;
    let (status, body) = g.get("/api/v1/gate?environment=prod").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["decision"], "go");
    assert_eq!(body["environment"], "prod");
    assert_eq!(body["reasons"], json!([]));
    assert!(body["evaluated_at"].as_str().unwrap().parse::<jiff::Timestamp>().is_ok());
}

#[tokio::test]
async fn a_failing_check_makes_the_gate_no_go_with_a_reason_a_person_can_act_on() {
    let g = guardian("", true).await;
    g.sim.faults().set(Fault {
        path: "/api/payments/health".into(),
        latency_ms: 0,
        status: Some(503),
        error_rate: 0.0,
        json: None,
    });
    eventually(Duration::from_secs(5), "the gate turns no-go", || async {
        g.get("/api/v1/gate?environment=prod").await.0 == 409
    })
    .await;
    let (_, body) = g.get("/api/v1/gate?environment=prod").await;
    assert_eq!(body["decision"], "no-go");
    let reason = body["reasons"].as_array().unwrap().iter().find(|r| r["code"] == "check_failing").unwrap();
    let message = reason["message"].as_str().unwrap();
    assert!(message.contains("payments-health") && message.contains("503"), "{message}");
}

#[tokio::test]
async fn a_confirmed_breach_opens_an_incident_counted_in_metrics_and_revenue_at_risk() {
    let g = guardian("", true).await;
    g.sim.faults().set(Fault {
        path: "/api/payments/health".into(),
        latency_ms: 0,
        status: Some(500),
        error_rate: 0.0,
        json: None,
    });
    eventually(Duration::from_secs(5), "an incident opens", || async {
        g.get("/api/v1/incidents").await.1["incidents"].as_array().is_some_and(|l| !l.is_empty())
    })
    .await;
    let (_, body) = g.get("/api/v1/incidents").await;
    let incident = &body["incidents"][0];
    assert_eq!(incident["check"], "payments-health");
    assert!(incident["ended_at"].is_null());
    assert!(incident["probes_bad"].as_u64().unwrap() >= 3);
    let (_, gate) = g.get("/api/v1/gate?environment=prod").await;
    assert!(gate["reasons"].as_array().unwrap().iter().any(|r| r["code"] == "incident_open"), "{gate}");
    let metrics = reqwest::get(g.url("/metrics")).await.unwrap().text().await.unwrap();
    assert_eq!(sample(&metrics, "guardian_incidents_open", &[]), Some(1.0));
    assert_eq!(sample(&metrics, "guardian_gate_go", &[("environment", "prod")]), Some(0.0));
    assert!(sample(&metrics, "guardian_revenue_at_risk_eur", &[]).unwrap() > 0.0, "payments carries the ARR");
    assert!(sample(&metrics, "guardian_slo_burn_rate", &[("slo", "payments"), ("window", "5m")]).unwrap() > 1.0);
    assert_eq!(sample(&metrics, "guardian_slo_objective_ratio", &[("slo", "payments")]), Some(0.5));
    support::promtext::assert_valid(&metrics);

    g.sim.faults().clear();
    eventually(Duration::from_secs(5), "recovery closes it", || async {
        g.get("/api/v1/incidents").await.1["incidents"][0]["ended_at"].is_string()
    })
    .await;
}

#[tokio::test]
async fn a_flagger_webhook_gets_the_same_answer_and_its_own_rollout_does_not_count() {
    let g = guardian("", true).await;
    g.app.gatekeeper.set_rollouts_in_progress(vec!["blueocean-nextgen-prod/Deployment/nextgen-dashboard".into()]);
    let payload = json!({"name": "nextgen-dashboard", "namespace": "blueocean-nextgen-prod", "phase": "Progressing",
        "checksum": "abc", "metadata": {"k": "v"}});
    // Flagger cannot send headers: the gate's POST needs no token.
    let (status, body) = g.post("/api/v1/gate?environment=prod", None, payload.to_string().into_bytes()).await;
    assert_eq!((status, body["decision"].as_str()), (200, Some("go")), "{body}");
    let other = json!({"name": "nextgen-admin", "namespace": "blueocean-nextgen-prod", "phase": "Progressing"});
    let (status, body) = g.post("/api/v1/gate?environment=prod", None, other.to_string().into_bytes()).await;
    assert_eq!(status, 409, "another target is rolling out: {body}");
    assert_eq!(body["reasons"][0]["code"], "rollout_in_progress");
    // Argo Rollouts' web metric: a GET naming itself, read with jsonPath {$.decision}.
    let (status, body) =
        g.get("/api/v1/gate?environment=prod&target=blueocean-nextgen-prod/Deployment/nextgen-dashboard").await;
    assert_eq!((status, body["decision"].as_str()), (200, Some("go")));
}

#[tokio::test]
async fn backups_are_recorded_and_required_by_the_gate() {
    let g = guardian("gate: { require_backup_within: 1h }", true).await;
    let (status, body) = g.get("/api/v1/gate?environment=prod").await;
    assert_eq!(status, 409);
    assert_eq!(body["reasons"][0]["code"], "backup_stale");
    let now = jiff::Timestamp::now().to_string();
    let (status, body) = g.post("/api/v1/backups", Some(TOKEN), backup("prod", &now)).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["id"], "nightly-1");
    assert_eq!(g.get("/api/v1/gate?environment=prod").await.0, 200);
    let failed = json!({"environment": "prod", "id": "nightly-2", "completed_at": now, "ok": false}).to_string();
    assert_eq!(g.post("/api/v1/backups", Some(TOKEN), failed.into_bytes()).await.0, 201);
    assert_eq!(g.get("/api/v1/gate?environment=prod").await.0, 200, "a failed attempt keeps the earlier good backup");
}

#[tokio::test]
async fn mutating_endpoints_need_the_right_token() {
    let g = guardian("", true).await;
    let now = jiff::Timestamp::now().to_string();
    assert_eq!(g.post("/api/v1/backups", None, backup("prod", &now)).await.0, 401);
    let (status, body) = g.post("/api/v1/backups", Some("api-token-7f3a9d"), backup("prod", &now)).await;
    assert_eq!(status, 401);
    assert!(body["error"].as_str().unwrap().contains("bearer token"));
    let without = guardian("", false).await;
    let (status, body) = without.post("/api/v1/backups", Some(TOKEN), backup("prod", &now)).await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"].as_str().unwrap().contains("api.token_env"));
}

#[tokio::test]
async fn bad_bodies_get_400_413_with_a_message() {
    let g = guardian("", true).await;
    let now = jiff::Timestamp::now().to_string();
    let cases: [(&str, Vec<u8>, &str); 5] = [
        ("not JSON", b"{nope".to_vec(), "bad JSON body"),
        ("unknown environment", backup("production", &now), "\"production\" is not one of dev, staging-shared, prod"),
        ("bad time", backup("prod", "yesterday"), "completed_at"),
        ("missing field", br#"{"environment":"prod","id":"x","ok":true}"#.to_vec(), "completed_at"),
        (
            "unknown field",
            br#"{"environment":"prod","id":"x","ok":true,"completed_at":"2026-11-26T00:00:00Z","size":1}"#.to_vec(),
            "size",
        ),
    ];
    for (name, body, says) in cases {
        let (status, answer) = g.post("/api/v1/backups", Some(TOKEN), body).await;
        assert_eq!(status, 400, "{name}: {answer}");
        assert!(answer["error"].as_str().unwrap().contains(says), "{name}: {answer}");
    }
    let big = vec![b' '; 64 * 1024 + 1];
    assert_eq!(g.post("/api/v1/backups", Some(TOKEN), big).await.0, 413);
    let fits = format!(
        "{}{}",
        " ".repeat(64 * 1024 - backup("prod", &now).len()),
        String::from_utf8(backup("prod", &now)).unwrap()
    );
    assert_eq!(g.post("/api/v1/backups", Some(TOKEN), fits.into_bytes()).await.0, 201, "64 KiB exactly is accepted");
    assert_eq!(g.get("/api/v1/gate?environment=production").await.0, 400);
    assert_eq!(g.get("/api/v1/gate").await.0, 400);
    let (status, body) = g.get("/api/v1/gate?environment=dev").await;
    assert_eq!(status, 400, "a prod guardian does not answer for dev");
    assert_eq!(body["error"], "this guardian watches prod; ask the guardian of dev");
    let flagger_big = vec![b' '; 64 * 1024 + 1];
    assert_eq!(g.post("/api/v1/gate?environment=prod", None, flagger_big).await.0, 413);
    assert_eq!(g.post("/api/v1/gate?environment=prod", None, b"{nope".to_vec()).await.0, 400);
    let future = jiff::Timestamp::now().checked_add(jiff::SignedDuration::from_hours(1)).unwrap().to_string();
    let (status, body) = g.post("/api/v1/backups", Some(TOKEN), backup("prod", &future)).await;
    assert_eq!(status, 400);
    assert!(body["error"].as_str().unwrap().ends_with("is in the future"), "{body}");
}

#[tokio::test]
async fn too_many_requests_get_429() {
    let g = guardian("api: { token_env: GUARDIAN_API_TOKEN, requests_per_second: 1 }", true).await;
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(g.get("/healthz").await.0);
    }
    // A burst of twice the rate passes, then 429s; at 1/s, a slow loop lets at most a few more through.
    assert_eq!(statuses[..2], [200, 200], "{statuses:?}");
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 5, "{statuses:?}");
    let r = reqwest::get(g.url("/healthz")).await.unwrap();
    if r.status() == 429 {
        assert_eq!(r.headers()["retry-after"], "1");
    }
}
