//! `no_drop` against a real local server whose count falls from 1342 to 1200:
//! unarmed it only asks for a number; armed, the first value becomes the
//! baseline and a lower one fails naming both; disarmed, 1200 is fine again.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up panics on failure by design

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::header;
use guardian::clock::SystemClock;
use guardian::config::{self, Check, MapEnv};
use guardian::probe::{Outcome, ProbeResult, Prober};

/// A target that answers 200 with whatever JSON body is set now.
struct Target {
    addr: SocketAddr,
    body: Arc<Mutex<&'static str>>,
}

impl Target {
    async fn serving(body: &'static str) -> Self {
        let body = Arc::new(Mutex::new(body));
        let shared = Arc::clone(&body);
        let router = Router::new().fallback(move || {
            let now = *shared.lock().unwrap();
            async move { ([(header::CONTENT_TYPE, "application/json")], now) }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { addr, body }
    }

    fn now_serves(&self, body: &'static str) {
        *self.body.lock().unwrap() = body;
    }

    /// The check as a user writes it: `/count` guarded by `no_drop`.
    fn check(&self) -> Check {
        let yaml = format!(
            "environment: dev\nchecks:\n  - name: customers\n    url: 'http://{}/api/customers'\n    budget: 1s\n    \
             expect:\n      json:\n        - {{ path: /count, no_drop: true }}\n",
            self.addr
        );
        config::parse(&yaml, "test.yaml", &MapEnv(Default::default()))
            .unwrap_or_else(|e| panic!("{e}"))
            .checks
            .remove(0)
    }
}

const BEFORE: &str = r#"{"count":1342}"#;
const AFTER: &str = r#"{"count":1200}"#;

async fn ok(prober: &Prober, check: &Check) -> ProbeResult {
    let r = prober.probe(check, |_| {}).await;
    assert_eq!(r.outcome, Outcome::Ok, "{}", r.reason);
    r
}

#[tokio::test]
async fn a_drop_fails_only_while_armed_and_names_both_numbers() {
    let target = Target::serving(BEFORE).await;
    let check = target.check();
    let prober = Prober::new(Arc::new(SystemClock)).unwrap();
    let baselines = prober.baselines();

    ok(&prober, &check).await;
    target.now_serves(AFTER);
    ok(&prober, &check).await;
    assert!(baselines.snapshot().is_empty(), "unarmed probes record nothing");

    target.now_serves(BEFORE);
    baselines.arm("customers");
    ok(&prober, &check).await;
    assert_eq!(baselines.snapshot(), vec![("customers".into(), "/count".into(), 1342.0)]);

    target.now_serves(AFTER);
    let r = prober.probe(&check, |_| {}).await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.reason);
    assert_eq!(r.status, Some(200));
    assert!(r.reason.contains("1342") && r.reason.contains("1200"), "{}", r.reason);
    assert_eq!(r.reason, "/count dropped while armed: 1342 → 1200");

    baselines.disarm("customers");
    ok(&prober, &check).await;
    assert!(baselines.snapshot().is_empty());
}

#[tokio::test]
async fn arming_takes_the_value_seen_then_and_a_broken_answer_never_becomes_the_baseline() {
    let target = Target::serving(r#"{"count":"unknown"}"#).await;
    let check = target.check();
    let prober = Prober::new(Arc::new(SystemClock)).unwrap();
    prober.baselines().arm("customers");

    let r = prober.probe(&check, |_| {}).await;
    assert_eq!(r.outcome, Outcome::Failed, "{}", r.reason);
    assert!(prober.baselines().snapshot().is_empty(), "a broken answer set a baseline");

    target.now_serves(AFTER);
    ok(&prober, &check).await;
    target.now_serves(BEFORE);
    ok(&prober, &check).await;
    assert_eq!(prober.baselines().snapshot(), vec![("customers".into(), "/count".into(), 1200.0)]);
}
