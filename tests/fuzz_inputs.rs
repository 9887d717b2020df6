//! Bad input, generated (proptest): the config loader, the JSON Pointer
//! assertions and every API body never panic, and always answer with
//! something a person can act on — a config problem with its place, a probe
//! verdict with its reason, an API error as `{"error": …}` with a 4xx.
//!
//! The generators live in `support::bad_input`. Case counts are fixed and
//! small so the file runs in seconds in debug, and the seed is fixed so every
//! run tries the same cases (`PROPTEST_RNG_SEED=n` tries others).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

mod support;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use guardian::app::App;
use guardian::clock::SystemClock;
use guardian::config::{self, Check, ConfigError, JsonAssertion, JsonOp, MapEnv};
use guardian::probe::{Outcome, Prober};
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Value, json};
use support::bad_input::{
    Call, Kind, TARGET, TOKEN, URL_SECRET, any_json, any_pointer, auth, call, gate_query, kind_of, mutate, mutation,
    percent, pointers, runner, value_of, values_on, yaml_quote, yamlish,
};
use support::{rss, targets};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const FILE: &str = "fuzz.yaml";

// ---------------------------------------------------------------------------
// The config loader
// ---------------------------------------------------------------------------

/// Every problem has a place (`FILE:LINE:COL: …`, the line inside the text,
/// or `FILE: field.path: …`) and a message.
fn located(err: &ConfigError, text: &str) -> Result<(), TestCaseError> {
    prop_assert!(!err.problems.is_empty(), "an error without a problem");
    // YAML breaks lines at \n, \r\n and a lone \r.
    let lines = text.replace("\r\n", "\n").chars().filter(|c| matches!(c, '\n' | '\r')).count() as u64 + 1;
    for (p, line) in err.problems.iter().zip(err.lines()) {
        prop_assert!(!p.message.trim().is_empty(), "no message: {line}");
        match p.at {
            Some((l, c)) => {
                prop_assert!((1..=lines).contains(&l) && c >= 1, "{line}: place outside the {lines}-line text");
                prop_assert!(line.starts_with(&format!("{FILE}:{l}:{c}: ")), "{line}");
            }
            None => {
                prop_assert!(!p.path.is_empty(), "no place at all: {line:?}");
                prop_assert!(line.starts_with(&format!("{FILE}: {}: ", p.path)), "{line}");
            }
        }
    }
    Ok(())
}

fn parse(text: &str) -> Result<config::Config, ConfigError> {
    config::parse(text, FILE, &MapEnv(HashMap::from([("SET".to_string(), "value".to_string())])))
}

#[test]
fn arbitrary_text_never_panics_and_every_problem_has_a_place() {
    let errors = Cell::new(0);
    runner(400)
        .run(&prop_oneof![any::<String>(), yamlish()], |text| {
            if let Err(e) = parse(&text) {
                errors.set(errors.get() + 1);
                located(&e, &text)?;
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let errors = errors.get();
    assert!(errors > 300, "random text should mostly be rejected ({errors} errors in 400)");
}

/// `examples/nextgen.yaml` plus a `max_body` and a `matches`, so every kind of
/// value this file mutates is in it.
fn base() -> String {
    let text = std::fs::read_to_string("examples/nextgen.yaml").unwrap();
    let text = text.replacen("    budget: 500ms\n", "    budget: 500ms\n    max_body: 1MiB\n", 1);
    let text = text.replacen(
        "        - { path: /arr_eur, min: 1 }\n",
        "        - { path: /arr_eur, min: 1 }\n        - { path: /status, matches: \"^ok$\" }\n",
        1,
    );
    parse(&text).unwrap_or_else(|e| panic!("the base config must be valid:\n{e}"));
    text
}

#[test]
fn mutations_of_the_nextgen_config_never_panic_and_every_problem_has_a_place() {
    let base = base();
    let (ok, errors) = (Cell::new(0), Cell::new(0));
    runner(200)
        .run(&prop::collection::vec(mutation(), 1..5), |ms| {
            let text = ms.iter().fold(base.clone(), |t, m| mutate(&t, m));
            match parse(&text) {
                Ok(_) => ok.set(ok.get() + 1),
                Err(e) => {
                    errors.set(errors.get() + 1);
                    located(&e, &text)?;
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (ok, errors) = (ok.get(), errors.get());
    assert!(ok > 10 && errors > 60, "mutations should both keep and break the config ({ok} ok, {errors} errors)");
}

/// True when the value is certainly wrong for its kind, judged without Guardian's validator.
fn certainly_bad(kind: Kind, key: &str, v: &str) -> bool {
    match kind {
        Kind::Duration => guardian::units::parse_duration(v).is_err(),
        Kind::Size => guardian::units::parse_size(v).map_or(true, |n| n == 0),
        Kind::Url if key == "url" => {
            url::Url::parse(v).map_or(true, |u| !matches!(u.scheme(), "http" | "https") || u.host().is_none())
        }
        Kind::Url => false,
        Kind::Regex => regex::Regex::new(v).is_err(),
        Kind::Pointer => {
            let bad_escape = v.as_bytes().windows(2).any(|w| w[0] == b'~' && !matches!(w[1], b'0' | b'1'));
            (!v.is_empty() && !v.starts_with('/')) || bad_escape || v.ends_with('~')
        }
    }
}

#[test]
fn a_bad_duration_size_url_regex_or_pointer_is_reported_on_its_own_line() {
    let base = base();
    let lines: Vec<&str> = base.lines().collect();
    // Every (line, value) of a kind this test knows.
    let slots: Vec<(usize, String, std::ops::Range<usize>)> = lines
        .iter()
        .enumerate()
        .flat_map(|(i, l)| values_on(l).into_iter().map(move |(k, r)| (i, k, r)))
        // `guard.breach.window: 5` is a count, not a duration.
        .filter(|(i, k, r)| kind_of(k).is_some() && !lines[*i][r.clone()].chars().all(|c| c.is_ascii_digit()))
        .collect();
    let kinds: Vec<Kind> = slots.iter().filter_map(|(_, k, _)| kind_of(k)).collect();
    for k in [Kind::Duration, Kind::Size, Kind::Url, Kind::Regex, Kind::Pointer] {
        assert!(kinds.contains(&k), "the base config has no {k:?} to mutate");
    }
    let strategy = prop::sample::select(slots).prop_flat_map(|(i, key, r)| {
        let kind = kind_of(&key).unwrap_or(Kind::Duration);
        (Just((i, key, r)), value_of(kind))
    });
    let bad = Cell::new(0);
    runner(250)
        .run(&strategy, |((i, key, r), v)| {
            let mut changed: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            changed[i].replace_range(r.clone(), &yaml_quote(&v));
            let text = changed.join("\n") + "\n";
            let result = parse(&text);
            if let Err(e) = &result {
                located(e, &text)?;
            }
            let kind = kind_of(&key).unwrap_or(Kind::Duration);
            if certainly_bad(kind, &key, &v) {
                bad.set(bad.get() + 1);
                let e = result.err().ok_or_else(|| TestCaseError::fail(format!("{key}: {v:?} was accepted")))?;
                let here =
                    e.problems.iter().any(|p| p.at.map(|(l, _)| l) == Some(i as u64 + 1) && p.path.ends_with(&key));
                prop_assert!(here, "{key} = {v:?} on line {} is not reported there:\n{e}", i + 1);
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(bad.get() > 60, "too few bad values were tried ({})", bad.get());
}

#[test]
fn a_password_in_a_bad_url_never_reaches_an_error_message() {
    const FIELDS: [(&str, &str); 5] = [
        ("check", "checks:\n  - { name: a, budget: 1s, url: URL }\n"),
        ("storage", "checks:\n  - { name: a, budget: 1s, url: 'http://127.0.0.1:1/' }\nstorage: { url: URL }\n"),
        ("redis", "checks:\n  - { name: a, budget: 1s, url: 'http://127.0.0.1:1/' }\nredis: { url: URL }\n"),
        (
            "webhook",
            "checks:\n  - { name: a, budget: 1s, url: 'http://127.0.0.1:1/' }\nnotify: { webhooks: [ { url: URL } ] }\n",
        ),
        (
            "alertmanager",
            "checks:\n  - { name: a, budget: 1s, url: 'http://127.0.0.1:1/' }\nnotify: { alertmanager: [ URL ] }\n",
        ),
    ];
    let leaks = |field: &str, yaml: &str, url: &str| -> Vec<String> {
        let text = format!("environment: dev\n{}", yaml.replace("URL", &yaml_quote(url)));
        let lines = parse(&text).err().map(|e| e.lines()).unwrap_or_default();
        lines.into_iter().filter(|l| l.contains(URL_SECRET)).map(|l| format!("{field}: {l}")).collect()
    };
    // The shapes the url crate reads as user:password@host although "://" is not there.
    let mut found = Vec::new();
    for url in [format!("http:/user:{URL_SECRET}@nextgen:99999/"), format!("redis:/user:{URL_SECRET}@redis:99999")] {
        for (field, yaml) in FIELDS {
            found.extend(leaks(field, yaml, &url));
        }
    }
    assert!(found.is_empty(), "passwords in errors:\n{}", found.join("\n"));
    let with_password = value_of(Kind::Url).prop_filter("carries the password", |u| u.contains(URL_SECRET));
    runner(300)
        .run(&(prop::sample::select(FIELDS.to_vec()), with_password), |((field, yaml), url)| {
            let leaked = leaks(field, yaml, &url);
            prop_assert!(leaked.is_empty(), "a password in an error: {leaked:?}");
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn non_finite_min_and_max_are_refused_with_their_place() {
    // `.nan` makes `min` fail every answer ("below the minimum NaN"); `-.inf`
    // makes `max` fail every answer and `.inf` makes `min` do the same.
    let mut accepted = Vec::new();
    for (op, v) in [("min", ".nan"), ("max", ".nan"), ("min", ".inf"), ("max", "-.inf")] {
        let text = format!(
            "environment: dev\nchecks:\n  - name: a\n    url: 'http://127.0.0.1:1/'\n    budget: 1s\n    expect:\n      json:\n        - {{ path: /count, {op}: {v} }}\n"
        );
        match parse(&text) {
            Ok(_) => accepted.push(format!("{op}: {v}")),
            Err(e) => assert!(e.problems.iter().any(|p| p.at.map(|(l, _)| l) == Some(8)), "{op}: {v}: {e}"),
        }
    }
    assert!(accepted.is_empty(), "accepted, so the check can never pass: {accepted:?}");
}

/// YAML that would blow up or recurse without end if a parser let it.
fn yaml_bombs() -> [(&'static str, String); 3] {
    let mut laughs = String::from(
        "environment: dev\nchecks:\n  - name: a\n    url: 'http://127.0.0.1:1/'\n    budget: 1s\n    expect:\n      json:\n        - { path: /a, equals: &a [x,x,x,x,x,x,x,x,x,x] }\n",
    );
    let mut prev = 'a';
    // 10^9 nodes once expanded.
    for c in ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'] {
        let refs = vec![format!("*{prev}"); 10].join(",");
        laughs.push_str(&format!("        - {{ path: /{c}, equals: &{c} [{refs}] }}\n"));
        prev = c;
    }
    let deep = format!("environment: dev\nchecks: {}", "[".repeat(100_000));
    let docs = "environment: dev\n---\nenvironment: prod\n".to_string();
    [("alias bomb", laughs), ("deep nesting", deep), ("two documents", docs)]
}

#[test]
fn yaml_bombs_and_endless_nesting_are_refused_at_their_place_with_bounded_memory() {
    for (name, text) in yaml_bombs() {
        let meter = rss::Meter::start();
        let e = parse(&text).err().unwrap_or_else(|| panic!("{name} was accepted"));
        let grew = meter.grew();
        located(&e, &text).unwrap_or_else(|f| panic!("{name}: {f}"));
        eprintln!("{name}: peak memory grew {}", rss::mib(grew));
        assert!(grew < rss::BOUND, "{name}: memory grew {}", rss::mib(grew));
    }
}

#[test]
fn yaml_limits_are_explained_in_words() {
    let mut unclear = Vec::new();
    // Takes the meter's turn: under `cargo test` this parse would land in the test above.
    let _turn = rss::Meter::start();
    for (name, text) in yaml_bombs() {
        let msg = parse(&text).err().unwrap_or_else(|| panic!("{name} was accepted")).to_string();
        // Not Rust debug output (`Nodes { nodes: 250001 }`), not library API advice (`use from_str_multiple`).
        if msg.contains(" { ") || msg.contains("from_str") {
            unclear.push(format!("{name}: {msg}"));
        }
    }
    assert!(unclear.is_empty(), "unclear messages:\n{}", unclear.join("\n"));
}

#[test]
fn a_number_in_the_body_equals_the_same_number_in_the_config() {
    // Written the same way in the config and in the body, these are the same f64;
    // serde_json without `float_roundtrip` reads the body's one ULP away.
    let t = Target::start();
    let mut wrong = Vec::new();
    for n in ["0.1", "1342", "0.30000000000000004", "-4.4758273371015213e+52", "-2.1282901581698416e-150"] {
        let yaml = format!(
            "environment: dev\nchecks:\n  - {{ name: t, url: 'http://127.0.0.1:1/', budget: 10s, expect: {{ json: [ {{ path: /n, equals: {n} }} ] }} }}\n"
        );
        let mut check = parse(&yaml).unwrap_or_else(|e| panic!("{e}")).checks.remove(0);
        check.url = t.check.url.clone();
        let (outcome, reason) = t.probe(format!(r#"{{"n": {n}}}"#).into_bytes(), &check);
        if outcome != Outcome::Ok {
            wrong.push(reason);
        }
    }
    assert!(wrong.is_empty(), "the same number judged different:\n{}", wrong.join("\n"));
}

// ---------------------------------------------------------------------------
// JSON Pointer assertions
// ---------------------------------------------------------------------------

/// How one operator is drawn: `true_to` makes it hold for the value found, when it can.
#[derive(Debug, Clone)]
enum OpSeed {
    Equals { true_to: bool, other: Value },
    NotEquals { true_to: bool, other: Value },
    Length { true_to: bool, n: u64 },
    Min(f64),
    Max(f64),
    Exists(bool),
    Matches(String),
    NoDrop,
}

fn op_seed() -> impl Strategy<Value = OpSeed> {
    let small = prop_oneof![(-3i64..300).prop_map(|n| n as f64), any::<f64>().prop_filter("finite", |f| f.is_finite())];
    prop_oneof![
        (any::<bool>(), any_json()).prop_map(|(true_to, other)| OpSeed::Equals { true_to, other }),
        (any::<bool>(), any_json()).prop_map(|(true_to, other)| OpSeed::NotEquals { true_to, other }),
        (any::<bool>(), 0u64..6).prop_map(|(true_to, n)| OpSeed::Length { true_to, n }),
        small.clone().prop_map(OpSeed::Min),
        small.prop_map(OpSeed::Max),
        any::<bool>().prop_map(OpSeed::Exists),
        prop_oneof![
            prop::sample::select(vec!["", "^$", "^[a-z]+$", "[0-9]", "^-?[0-9]+$", "true", "^.{0,3}$", "(?i)A"])
                .prop_map(str::to_string),
            "[\\^$.*+?()\\[\\]|a-z0-9]{0,8}",
        ]
        .prop_map(OpSeed::Matches),
        Just(OpSeed::NoDrop),
    ]
}

fn op(seed: &OpSeed, found: Option<&Value>) -> Option<JsonOp> {
    Some(match seed {
        OpSeed::Equals { true_to, other } => JsonOp::Equals(found.filter(|_| *true_to).unwrap_or(other).clone()),
        OpSeed::NotEquals { true_to, other } => JsonOp::NotEquals(found.filter(|_| !*true_to).unwrap_or(other).clone()),
        OpSeed::Length { true_to, n } => JsonOp::Length(match found.and_then(count).filter(|_| *true_to) {
            Some(c) => c,
            None => *n,
        }),
        OpSeed::Min(m) => JsonOp::Min(*m),
        OpSeed::Max(m) => JsonOp::Max(*m),
        OpSeed::Exists(e) => JsonOp::Exists(*e),
        OpSeed::Matches(re) => JsonOp::Matches(regex::Regex::new(re).ok()?),
        OpSeed::NoDrop => JsonOp::NoDrop,
    })
}

fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Array(a) => Some(a.len() as u64),
        Value::Object(o) => Some(o.len() as u64),
        Value::String(s) => Some(s.chars().count() as u64),
        _ => None,
    }
}

/// A document and assertions on it: most on paths that exist, some anywhere.
fn document_and_assertions() -> impl Strategy<Value = (Value, Vec<JsonAssertion>)> {
    any_json().prop_flat_map(|doc| {
        let mut found = Vec::new();
        pointers(&doc, String::new(), &mut found);
        let path = prop_oneof![3 => prop::sample::select(found), 1 => any_pointer()];
        let assertion = (path, prop::collection::vec(op_seed(), 1..4));
        let doc2 = doc.clone();
        let list = prop::collection::vec(assertion, 0..4).prop_map(move |list| {
            list.into_iter()
                .map(|(path, seeds)| {
                    let found = doc2.pointer(&path);
                    let ops = seeds.iter().filter_map(|s| op(s, found)).collect();
                    JsonAssertion { path, ops }
                })
                .collect::<Vec<_>>()
        });
        (Just(doc), list)
    })
}

/// The rules of README's `expect.json`, written out plainly: `Ok` or the failing path's label.
fn verdict(doc: &Value, assertions: &[JsonAssertion]) -> Result<(), String> {
    let same = |a: &Value, b: &Value| match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    };
    for a in assertions {
        let label = if a.path.is_empty() { "the document".to_string() } else { a.path.clone() };
        let found = doc.pointer(&a.path);
        for o in &a.ops {
            let holds = match (o, found) {
                (JsonOp::Exists(want), f) => f.is_some() == *want,
                (_, None) => false,
                (JsonOp::Equals(w), Some(v)) => same(v, w),
                (JsonOp::NotEquals(w), Some(v)) => !same(v, w),
                (JsonOp::Length(n), Some(v)) => count(v) == Some(*n),
                (JsonOp::Min(m), Some(v)) => v.as_f64().is_some_and(|x| x >= *m),
                (JsonOp::Max(m), Some(v)) => v.as_f64().is_some_and(|x| x <= *m),
                (JsonOp::Matches(re), Some(Value::String(s))) => re.is_match(s),
                (JsonOp::Matches(re), Some(v @ (Value::Number(_) | Value::Bool(_)))) => re.is_match(&v.to_string()),
                (JsonOp::Matches(_), Some(_)) => false,
                (JsonOp::NoDrop, Some(v)) => v.as_f64().is_some(),
            };
            if !holds {
                return Err(label);
            }
        }
    }
    Ok(())
}

/// A target answering 200 with whatever body the test put in the slot.
async fn echo(slot: Arc<Mutex<Vec<u8>>>) -> SocketAddr {
    let app = axum::Router::new().fallback(move || {
        let body = slot.lock().unwrap().clone();
        async move { ([(axum::http::header::CONTENT_TYPE, "application/json")], body) }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

/// A real check against `addr`, parsed from YAML; tests swap its expectations.
fn check_at(addr: SocketAddr) -> Check {
    let yaml =
        format!("environment: dev\nchecks:\n  - {{ name: t, url: 'http://{addr}/', budget: 10s, timeout: 10s }}\n");
    config::parse(&yaml, FILE, &MapEnv::default()).unwrap().checks.remove(0)
}

struct Target {
    rt: tokio::runtime::Runtime,
    slot: Arc<Mutex<Vec<u8>>>,
    prober: Prober,
    check: Check,
}

impl Target {
    fn start() -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let slot = Arc::new(Mutex::new(Vec::new()));
        let addr = rt.block_on(echo(slot.clone()));
        let prober = Prober::new(Arc::new(SystemClock)).unwrap();
        Target { rt, slot, prober, check: check_at(addr) }
    }

    fn probe(&self, body: Vec<u8>, check: &Check) -> (Outcome, String) {
        *self.slot.lock().unwrap() = body;
        let r = self.rt.block_on(self.prober.probe(check, |_| {}));
        (r.outcome, r.reason)
    }
}

#[test]
fn json_pointer_assertions_on_any_document_give_the_right_verdict_with_a_reason() {
    let t = Target::start();
    let (passed, failed) = (Cell::new(0), Cell::new(0));
    runner(300)
        .run(&document_and_assertions(), |(doc, assertions)| {
            let mut check = t.check.clone();
            check.expect.json = assertions.clone();
            let (outcome, reason) = t.probe(serde_json::to_vec(&doc).unwrap(), &check);
            prop_assert!(!reason.trim().is_empty());
            match verdict(&doc, &assertions) {
                Ok(()) => {
                    passed.set(passed.get() + 1);
                    prop_assert_eq!(outcome, Outcome::Ok, "{}", reason);
                }
                Err(label) => {
                    failed.set(failed.get() + 1);
                    prop_assert_eq!(outcome, Outcome::Failed, "expected a failure on {}", label);
                    prop_assert!(reason.contains(&label), "the reason does not name {label:?}: {reason}");
                }
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
    let (passed, failed) = (passed.get(), failed.get());
    assert!(passed > 30 && failed > 30, "both verdicts should be drawn ({passed} passed, {failed} failed)");
}

#[test]
fn any_body_bytes_get_a_verdict_with_a_reason() {
    let t = Target::start();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        any::<String>().prop_map(String::into_bytes),
        any_json().prop_map(|v| {
            let mut b = serde_json::to_vec(&v).unwrap();
            b.push(0xff);
            b
        }),
    ];
    let needle = prop_oneof![Just(None), "[a-z\\[{\"]{1,3}".prop_map(Some), any::<String>().prop_map(Some)];
    runner(200)
        .run(&(bytes, needle, any_pointer()), |(body, needle, path)| {
            let mut check = t.check.clone();
            check.expect.json = vec![JsonAssertion { path: path.clone(), ops: vec![JsonOp::Exists(true)] }];
            check.expect.body_contains = needle.clone().filter(|n| !n.is_empty());
            let (outcome, reason) = t.probe(body.clone(), &check);
            let text = String::from_utf8_lossy(&body);
            match serde_json::from_slice::<Value>(&body) {
                _ if check.expect.body_contains.as_ref().is_some_and(|n| !text.contains(n.as_str())) => {
                    prop_assert_eq!(outcome, Outcome::Failed);
                    prop_assert!(reason.starts_with("body does not contain "), "{}", reason);
                }
                Err(_) => {
                    prop_assert_eq!(outcome, Outcome::Failed);
                    prop_assert!(reason.starts_with("body is not JSON ("), "{}", reason);
                }
                Ok(doc) => prop_assert_eq!(outcome == Outcome::Ok, doc.pointer(&path).is_some(), "{}", reason),
            }
            Ok(())
        })
        .unwrap_or_else(|e| panic!("{e}"));
}

// ---------------------------------------------------------------------------
// API bodies and query strings
// ---------------------------------------------------------------------------

struct Api {
    rt: tokio::runtime::Runtime,
    addr: SocketAddr,
    client: reqwest::Client,
    _app: App,
    _stop: tokio_util::sync::DropGuard,
}

impl Api {
    /// A real guardian's API (SQLite in memory) probing a healthy local target,
    /// with one guarded target so migrations can be declared.
    fn start() -> Self {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let (app, addr, stop) = rt.block_on(async {
            let target = targets::healthy(r#"{"status":"ok"}"#).await;
            let yaml = format!(
                r#"environment: prod
storage: {{ url: "sqlite::memory:" }}
api: {{ token_env: GUARDIAN_API_TOKEN, requests_per_second: 100000 }}
checks:
  - {{ name: payments-health, url: "http://{target}/api/payments/health", interval: 1s, budget: 1s }}
guard:
  targets:
    - {{ kind: Deployment, namespace: blueocean-nextgen-prod, name: nextgen-dashboard }}
"#
            );
            let config = config::parse(&yaml, "api.yaml", &MapEnv::default()).unwrap_or_else(|e| panic!("{e}"));
            let env = MapEnv(HashMap::from([("GUARDIAN_API_TOKEN".to_string(), TOKEN.to_string())]));
            let app = App::build(config, Arc::new(SystemClock), &env).await.unwrap();
            let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let stop = CancellationToken::new();
            let _running = app.start(listener, stop.clone());
            (app, addr, stop)
        });
        // A fresh connection per request: a server may close a kept-alive one after a refusal
        // (a 413 it did not read), and reusing it would look like the API had stopped.
        let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        Api { rt, addr, client, _app: app, _stop: stop.drop_guard() }
    }

    /// Sends a request with `path_and_query` exactly as written (percent escapes kept).
    fn send(&self, method: &str, path_and_query: &str, auth: Option<&str>, body: Vec<u8>, ct: Option<&str>) -> Answer {
        let url = reqwest::Url::parse(&format!("http://{}{path_and_query}", self.addr)).unwrap();
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self.client.request(method, url).body(body);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        self.rt.block_on(async {
            let r = req.send().await.unwrap_or_else(|e| panic!("the API stopped answering: {e}"));
            let status = r.status().as_u16();
            let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
            let bytes = r.bytes().await.unwrap();
            Answer { status, content_type: ct, body: String::from_utf8_lossy(&bytes).into_owned() }
        })
    }
}

#[derive(Debug)]
struct Answer {
    status: u16,
    content_type: String,
    body: String,
}

impl Answer {
    /// Never 5xx; a 4xx says why as `{"error": "…"}` (a no-go gate is a 409 with its decision).
    fn well_formed(&self, gate: bool) -> Result<(), TestCaseError> {
        prop_assert!((200..500).contains(&self.status), "{self:?}");
        let body: Option<Value> = serde_json::from_str(&self.body).ok();
        if gate && self.status == 409 {
            prop_assert_eq!(body.as_ref().map(|b| b["decision"].clone()), Some(json!("no-go")), "{:?}", self);
        } else if self.status >= 400 {
            prop_assert!(self.content_type.starts_with("application/json"), "not JSON: {self:?}");
            let error = body.as_ref().and_then(|b| b["error"].as_str()).unwrap_or("");
            prop_assert!(!error.trim().is_empty(), "no error message: {self:?}");
        } else {
            prop_assert!(body.is_some(), "a 2xx that is not JSON: {self:?}");
        }
        Ok(())
    }
}

/// Sends generated POSTs and generated gate queries, and checks each answer with `judge`.
fn fuzz_api(judge: fn(&Answer, bool) -> Result<(), TestCaseError>) -> BTreeMap<u16, u32> {
    let api = Api::start();
    let content_type = prop::option::of(prop::sample::select(vec!["application/json", "text/plain", "x/y", ""]));
    let statuses: RefCell<BTreeMap<u16, u32>> = RefCell::default();
    let request = prop_oneof![
        4 => (call(), auth(), content_type).prop_map(|(call, auth, ct)| (call, auth, ct)),
        1 => gate_query().prop_map(|q| (Call::GateGet(q), None, None)),
    ];
    runner(500)
        .run(&request, |(call, auth, ct)| {
            let (method, path, body, gate) = match call {
                Call::Backup(b) => ("POST", "/api/v1/backups".to_string(), b, false),
                Call::Migration(b) => ("POST", "/api/v1/migrations".to_string(), b, false),
                Call::Finish(id) => ("POST", format!("/api/v1/migrations/{}/finish", percent(&id)), Vec::new(), false),
                Call::GatePost(q, b) => ("POST", format!("/api/v1/gate?{q}"), b, true),
                Call::GateGet(q) => ("GET", format!("/api/v1/gate?{q}"), Vec::new(), true),
            };
            let answer = api.send(method, &path, auth.as_deref(), body, ct);
            *statuses.borrow_mut().entry(answer.status).or_default() += 1;
            judge(&answer, gate).map_err(|e| TestCaseError::fail(format!("{method} {path}: {e}")))
        })
        .unwrap_or_else(|e| panic!("{e}"));
    still_serving(&api);
    statuses.into_inner()
}

#[test]
fn no_body_or_query_gets_a_5xx_and_the_api_keeps_serving() {
    let statuses = fuzz_api(|a, _| {
        prop_assert!((200..500).contains(&a.status), "{a:?}");
        Ok(())
    });
    // 200 or 409: the gate's answer; 201: a backup or migration taken; the rest refusals.
    for wanted in [&[200, 409][..], &[201], &[400], &[401], &[404], &[413]] {
        let seen = wanted.iter().any(|s| statuses.contains_key(s));
        assert!(seen, "no {wanted:?} among {statuses:?}: the fuzz misses a branch");
    }
}

#[test]
fn every_4xx_says_why_as_a_json_error() {
    fuzz_api(Answer::well_formed);
}

#[test]
fn requests_axum_refuses_before_a_handler_still_get_a_json_error() {
    let api = Api::start();
    let bearer = format!("Bearer {TOKEN}");
    let rows: [(&str, &str, &str, Vec<u8>); 4] = [
        ("a repeated query key", "GET", "/api/v1/gate?environment=prod&environment=prod", Vec::new()),
        ("a query that is not a form", "GET", "/api/v1/gate?environment=prod&target[x]=%FF", Vec::new()),
        ("an id that is not UTF-8", "POST", "/api/v1/migrations/%80/finish", Vec::new()),
        ("a Flagger body over 64 KiB", "POST", "/api/v1/gate?environment=prod", vec![b' '; 64 * 1024 + 1]),
    ];
    let mut wrong = Vec::new();
    for (name, method, path, body) in rows {
        let answer = api.send(method, path, Some(&bearer), body, None);
        if let Err(e) = answer.well_formed(path.starts_with("/api/v1/gate")) {
            wrong.push(format!("{name}: {e}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn a_declared_migration_can_be_finished_through_the_fuzzed_path() {
    // The finish endpoint's happy path, so the fuzz above is known to reach a real id.
    let api = Api::start();
    let body = json!({"target": TARGET, "description": "fuzz"}).to_string().into_bytes();
    let declared = api.send("POST", "/api/v1/migrations", Some(&format!("Bearer {TOKEN}")), body, None);
    assert_eq!(declared.status, 201, "{declared:?}");
    let id = serde_json::from_str::<Value>(&declared.body).unwrap()["id"].as_str().unwrap().to_string();
    let path = format!("/api/v1/migrations/{}/finish", percent(id.as_bytes()));
    let finished = api.send("POST", &path, Some(&format!("Bearer {TOKEN}")), Vec::new(), None);
    assert_eq!(finished.status, 200, "{finished:?}");
}

fn still_serving(api: &Api) {
    assert_eq!(api.send("GET", "/healthz", None, Vec::new(), None).status, 200, "the API stopped serving");
    let now = jiff::Timestamp::now().to_string();
    let backup = json!({"environment": "prod", "id": "after-fuzz", "completed_at": now, "ok": true});
    let answer =
        api.send("POST", "/api/v1/backups", Some(&format!("Bearer {TOKEN}")), backup.to_string().into_bytes(), None);
    assert_eq!(answer.status, 201, "{answer:?}");
}
