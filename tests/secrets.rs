#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Secrets never leave Guardian: a guardian configured with a secret in every
//! place a config can hold one (a header from `${VAR}`, a check URL's password
//! and `password=` query, the PostgreSQL and Redis passwords, the API token,
//! webhook URLs whose path is the credential, an Alertmanager password) runs
//! a breach that notifies and fails to notify; then every place it writes to
//! is searched: its logs, `/metrics`, every API answer, the status page, the
//! spans it exported, the webhook bodies, every row in PostgreSQL, every key
//! in Redis, and what `guardian probe` prints. See SECURITY.md.

mod support;

use std::process::Command;
use std::time::Duration;

use axum::http::StatusCode;
use guardian::sim::Fault;
use sqlx::{Connection, PgConnection, Row};
use support::eventually::eventually;
use support::guardian::Guardian;
use support::otlp::OtlpReceiver;
use support::postgres::fresh_db;
use support::promtext::sample;
use support::recorder::Recorder;
use support::redis::TestPrefix;
use support::sim::Sim;

const HEADER: &str = "hdr-secret-123";
const URL_PASSWORD: &str = "url-secret-456";
const QUERY_PASSWORD: &str = "query-secret-321";
const PG_PASSWORD: &str = "pg-secret-789";
const REDIS_PASSWORD: &str = "redis-secret-000";
const API_TOKEN: &str = "api-secret-abc";
const HOOK_PATH: &str = "hook-secret-654";
const DEAD_HOOK_PATH: &str = "dead-secret-987";
const AM_PASSWORD: &str = "am-secret-111";
const SECRETS: [&str; 9] = [
    HEADER,
    URL_PASSWORD,
    QUERY_PASSWORD,
    PG_PASSWORD,
    REDIS_PASSWORD,
    API_TOKEN,
    HOOK_PATH,
    DEAD_HOOK_PATH,
    AM_PASSWORD,
];
const REDIS_USER: &str = "guardian_secrets_test";

fn redis_cli(args: &[&str]) -> Option<String> {
    match Command::new("redis-cli").args(["-h", "127.0.0.1", "-p", "6379"]).args(args).output() {
        Ok(out) if out.status.success() => Some(String::from_utf8_lossy(&out.stdout).into_owned()),
        outcome => {
            let why = format!("redis-cli {args:?}: {outcome:?}");
            assert!(std::env::var("CI").as_deref() != Ok("true"), "Redis is required under CI=true: {why}");
            eprintln!("note: {why}; skipped");
            None
        }
    }
}

/// A Redis user of its own, so the URL carries a password Redis really checks.
struct RedisUser;

impl RedisUser {
    fn create() -> Option<Self> {
        let answer =
            redis_cli(&["ACL", "SETUSER", REDIS_USER, "on", &format!(">{REDIS_PASSWORD}"), "~*", "&*", "+@all"])?;
        assert_eq!(answer.trim(), "OK");
        Some(Self)
    }
}

impl Drop for RedisUser {
    fn drop(&mut self) {
        let _ = Command::new("redis-cli").args(["ACL", "DELUSER", REDIS_USER]).output();
    }
}

async fn get(g: &Guardian, path: &str) -> String {
    reqwest::get(g.url(path)).await.unwrap().text().await.unwrap()
}

#[tokio::test]
async fn no_secret_reaches_logs_metrics_api_page_traces_notifications_or_storage() {
    let Some(db) = fresh_db().await else { return };
    let Some(_user) = RedisUser::create() else { return };
    let prefix = TestPrefix::new();
    let sim = Sim::start().await;
    let collector = OtlpReceiver::start().await;
    let hook = Recorder::start(StatusCode::OK).await;
    let storage = db.url.replace("postgres://postgres@", &format!("postgres://postgres:{PG_PASSWORD}@"));
    assert_ne!(storage, db.url);
    let config = format!(
        r#"environment: prod
listen: "127.0.0.1:0"
storage: {{ url: "{storage}" }}
redis: {{ url: "redis://{REDIS_USER}:{REDIS_PASSWORD}@127.0.0.1:6379", key_prefix: "{prefix}" }}
api: {{ token_env: GUARD_TOKEN }}
checks:
  - name: payments-health
    url: "http://probe:{URL_PASSWORD}@{sim}/api/payments/health?password={QUERY_PASSWORD}"
    interval: 500ms
    budget: 3s
    timeout: 6s
    headers: {{ Authorization: "Bearer ${{NEXTGEN_TOKEN}}" }}
guard:
  mode: simulated
  targets:
    - {{ kind: Deployment, namespace: blueocean-nextgen-prod, name: nextgen-dashboard }}
  breach: {{ window: 5, max_bad: 3, confirm_interval: 250ms }}
notify:
  alertmanager: ["http://am:{AM_PASSWORD}@127.0.0.1:1"]
  webhooks:
    - {{ url: "http://{hook}/services/T0/B0/{HOOK_PATH}", format: slack }}
    - {{ url: "http://127.0.0.1:1/services/T1/B1/{DEAD_HOOK_PATH}", format: generic }}
"#,
        prefix = prefix.prefix,
        sim = sim.sim.dashboard(),
        hook = hook.addr,
    );
    let endpoint = collector.endpoint();
    let envs = [
        ("GUARD_TOKEN", API_TOKEN),
        ("NEXTGEN_TOKEN", HEADER),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "200"),
    ];
    let g = Guardian::start(&config, &envs);
    eventually(Duration::from_secs(20), "leading through Redis, with a probe result", || async {
        let metrics = get(&g, "/metrics").await;
        sample(&metrics, "guardian_leader", &[]) == Some(1.0)
            && sample(&metrics, "guardian_check_up", &[("check", "payments-health")]) == Some(1.0)
    })
    .await;
    // The token in use, then a breach the business team hears of and two channels that cannot be reached.
    let backup = reqwest::Client::new()
        .post(g.url("/api/v1/backups"))
        .bearer_auth(API_TOKEN)
        .header("content-type", "application/json")
        .body(r#"{"environment":"prod","id":"b1","completed_at":"2026-11-26T00:00:00Z","ok":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(backup.status(), 201);
    sim.sim.faults().set(Fault { status: Some(503), error_rate: 1.0, ..Fault::on("/api/payments/health") });
    eventually(Duration::from_secs(30), "the message delivered, the dead channels failed", || async {
        let metrics = get(&g, "/metrics").await;
        let failed = |channel| {
            sample(&metrics, "guardian_notifications_total", &[("channel", channel), ("outcome", "failed")])
                .unwrap_or(0.0)
        };
        !hook.seen().is_empty() && failed("generic") >= 1.0 && failed("alertmanager") >= 1.0
    })
    .await;
    eventually(Duration::from_secs(10), "probe spans exported", || async { collector.requests() > 0 }).await;
    // Writes reach storage through a queue: wait until the deliveries and the incident are there.
    eventually(Duration::from_secs(15), "deliveries and the incident stored", || async {
        let rows = every_row(&db.url).await;
        rows.contains("deliveries: ") && rows.contains("incidents: ")
    })
    .await;

    let mut places: Vec<(String, String)> = Vec::new();
    for path in [
        "/metrics",
        "/",
        "/readyz",
        "/api/v1/status",
        "/api/v1/incidents",
        "/api/v1/actions",
        "/api/v1/gate?environment=prod",
    ] {
        places.push((path.to_owned(), get(&g, path).await));
    }
    // The bodies (the request's own path is where the secret belongs).
    let bodies: Vec<String> = hook.seen().iter().map(|s| s.body.to_string()).collect();
    places.push(("webhook bodies".to_owned(), bodies.join("\n")));
    places.push(("exported spans".to_owned(), collector.raw()));
    places.push(("PostgreSQL".to_owned(), every_row(&db.url).await));
    places.push(("Redis".to_owned(), every_key(&prefix.prefix)));
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("guardian.yaml"), &config).unwrap();
    let probe = Command::new(env!("CARGO_BIN_EXE_guardian"))
        .args(["probe", "-c"])
        .arg(dir.path().join("guardian.yaml"))
        .envs(envs)
        .output()
        .unwrap();
    places.push((
        "guardian probe".to_owned(),
        format!("{}{}", String::from_utf8_lossy(&probe.stdout), String::from_utf8_lossy(&probe.stderr)),
    ));
    places.push(("logs".to_owned(), g.all_logs()));

    // Each place really holds what it should, so a search in it means something.
    let text = |name: &str| places.iter().find(|(n, _)| n == name).unwrap().1.clone();
    assert!(text("logs").contains("webhook") && text("logs").contains("127.0.0.1:1"), "delivery failures logged");
    assert!(text("exported spans").contains("payments-health"));
    assert!(text("PostgreSQL").contains("deliveries") && text("PostgreSQL").contains("payments-health"));
    assert!(text("Redis").contains(&prefix.prefix));
    assert!(text("webhook bodies").contains("payments-health"));
    assert!(text("guardian probe").contains("payments-health"));
    for (place, content) in &places {
        for secret in SECRETS {
            assert!(!content.contains(secret), "{secret} leaked into {place}:\n{content}");
        }
    }
}

/// Every row of every table, as JSON lines, each prefixed by its table.
async fn every_row(url: &str) -> String {
    let mut conn = PgConnection::connect(url).await.unwrap();
    let tables: Vec<String> =
        sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
            .fetch_all(&mut conn)
            .await
            .unwrap();
    assert!(tables.len() >= 5, "{tables:?}");
    let mut out = String::new();
    for table in tables {
        // The table names come from pg_tables, not from outside.
        let sql = format!("SELECT row_to_json(t)::text FROM \"{table}\" t");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(&mut conn).await.unwrap();
        for row in rows {
            out.push_str(&format!("{table}: {}\n", row.get::<String, _>(0)));
        }
    }
    out
}

/// Every key under the prefix, with its value where it is a string.
fn every_key(prefix: &str) -> String {
    let keys = redis_cli(&["--scan", "--pattern", &format!("{prefix}*")]).unwrap_or_default();
    let mut out = String::new();
    for key in keys.lines().filter(|k| !k.is_empty()) {
        let kind = redis_cli(&["TYPE", key]).unwrap_or_default();
        let value = if kind.trim() == "string" { redis_cli(&["GET", key]).unwrap_or_default() } else { kind };
        out.push_str(&format!("{key} = {}\n", value.trim()));
    }
    out
}
