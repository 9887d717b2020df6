use serde_json::json;

use super::*;

const BODY: &str = r#"{
  "status": "ok",
  "portfolio": {"domains": [{"name": "alpine-ventures.com", "renewal": {"days_left": 42}}, {"name": "b.io"}], "total": 230},
  "customers": {"count": 1342, "active": true},
  "version": "v2.14.1",
  "tags": {"a": 1, "b": 2},
  "a/b": {"m~n": 7}
}"#;

fn expect(path: &str, ops: Vec<JsonOp>) -> Expect {
    Expect { status: vec![200], json: vec![JsonAssertion { path: path.into(), ops }], body_contains: None }
}

fn unarmed(_: &str) -> Baseline {
    Baseline::Unarmed
}

fn re(s: &str) -> regex::Regex {
    regex::Regex::new(s).unwrap()
}

/// (name, pointer, operator, Ok or the expected failure text)
fn cases() -> Vec<(&'static str, &'static str, JsonOp, Result<(), &'static str>)> {
    vec![
        ("equals string holds", "/status", JsonOp::Equals(json!("ok")), Ok(())),
        (
            "equals string fails",
            "/status",
            JsonOp::Equals(json!("degraded")),
            Err(r#"/status is "ok", expected "degraded""#),
        ),
        ("equals nested number as float", "/portfolio/total", JsonOp::Equals(json!(230.0)), Ok(())),
        ("equals in array element", "/portfolio/domains/0/name", JsonOp::Equals(json!("alpine-ventures.com")), Ok(())),
        ("equals escaped pointer", "/a~1b/m~0n", JsonOp::Equals(json!(7)), Ok(())),
        ("not_equals holds", "/status", JsonOp::NotEquals(json!("maintenance")), Ok(())),
        (
            "not_equals fails",
            "/status",
            JsonOp::NotEquals(json!("ok")),
            Err(r#"/status is "ok", which it must not be"#),
        ),
        ("length of array holds", "/portfolio/domains", JsonOp::Length(2), Ok(())),
        (
            "length of array fails",
            "/portfolio/domains",
            JsonOp::Length(230),
            Err("/portfolio/domains has 2 items, expected 230"),
        ),
        ("length of object", "/tags", JsonOp::Length(2), Ok(())),
        ("length of string", "/version", JsonOp::Length(7), Ok(())),
        (
            "length of number fails",
            "/portfolio/total",
            JsonOp::Length(1),
            Err("/portfolio/total is a number (230), which has no length (expected 1 items)"),
        ),
        ("min holds", "/customers/count", JsonOp::Min(1.0), Ok(())),
        ("min fails", "/customers/count", JsonOp::Min(2000.0), Err("/customers/count is 1342, below the minimum 2000")),
        ("max holds", "/portfolio/domains/0/renewal/days_left", JsonOp::Max(365.0), Ok(())),
        ("max fails", "/customers/count", JsonOp::Max(1000.0), Err("/customers/count is 1342, above the maximum 1000")),
        (
            "min on a string fails clearly",
            "/status",
            JsonOp::Min(1.0),
            Err(r#"/status is a string ("ok"), expected a number"#),
        ),
        ("exists holds", "/customers/active", JsonOp::Exists(true), Ok(())),
        ("exists fails", "/customers/churn", JsonOp::Exists(true), Err("/customers/churn is missing")),
        ("exists false holds", "/error", JsonOp::Exists(false), Ok(())),
        ("exists false fails", "/status", JsonOp::Exists(false), Err(r#"/status is "ok" but should not exist"#)),
        ("matches holds", "/version", JsonOp::Matches(re(r"^v2\.\d+")), Ok(())),
        (
            "matches fails",
            "/version",
            JsonOp::Matches(re(r"^v3")),
            Err(r#"/version is "v2.14.1", which does not match /^v3/"#),
        ),
        ("matches a number's text", "/portfolio/total", JsonOp::Matches(re(r"^23\d$")), Ok(())),
        (
            "matches on an object fails",
            "/tags",
            JsonOp::Matches(re("x")),
            Err("/tags is an object, expected text matching /x/"),
        ),
        ("a missing path fails any operator", "/nope/deeper", JsonOp::Equals(json!(1)), Err("/nope/deeper is missing")),
        ("no_drop needs a number", "/customers/count", JsonOp::NoDrop, Ok(())),
        ("no_drop on text fails", "/status", JsonOp::NoDrop, Err(r#"/status is a string ("ok"), expected a number"#)),
        ("whole document pointer", "", JsonOp::Length(6), Ok(())),
    ]
}

#[test]
fn every_operator_holds_and_fails_with_a_clear_reason() {
    for (name, path, op, want) in cases() {
        let got = evaluate(&expect(path, vec![op]), BODY.as_bytes(), unarmed).map(|_| ());
        assert_eq!(got, want.map_err(String::from), "case: {name}");
    }
}

#[test]
fn a_non_json_body_fails_with_a_reason_instead_of_panicking() {
    for body in [&b"<html>502 Bad Gateway</html>"[..], b"", b"{\"status\": \"ok\",", &[0xff, 0xfe, 0x00]] {
        let err = evaluate(&expect("/status", vec![JsonOp::Equals(json!("ok"))]), body, unarmed).unwrap_err();
        assert!(err.starts_with("body is not JSON ("), "{err}");
        assert!(err.ends_with("so /status cannot be checked"), "{err}");
    }
}

#[test]
fn body_contains_checks_text_even_when_not_json() {
    let e = Expect { status: vec![200], json: vec![], body_contains: Some("Bad Gateway".into()) };
    assert_eq!(evaluate(&e, b"<html>502 Bad Gateway</html>", unarmed), Ok(vec![]));
    assert_eq!(evaluate(&e, b"all good", unarmed), Err(r#"body does not contain "Bad Gateway""#.into()));
}

#[test]
fn several_operators_on_one_path_all_apply() {
    let e = expect("/customers/count", vec![JsonOp::Min(1.0), JsonOp::Max(1000.0)]);
    assert_eq!(evaluate(&e, BODY.as_bytes(), unarmed), Err("/customers/count is 1342, above the maximum 1000".into()));
}

#[test]
fn long_values_are_cut_in_reasons() {
    let body = format!(r#"{{"s": "{}"}}"#, "x".repeat(500));
    let err = evaluate(&expect("/s", vec![JsonOp::Equals(json!("y"))]), body.as_bytes(), unarmed).unwrap_err();
    assert!(err.len() < 200 && err.contains('…'), "{err}");
}

/// (name, body, where /count stands, Ok with the first values to record or the expected failure)
type NoDropCase = (&'static str, &'static str, Baseline, Result<Vec<(&'static str, f64)>, &'static str>);

fn no_drop_cases() -> Vec<NoDropCase> {
    vec![
        ("unarmed: a number passes, nothing recorded", r#"{"count": 1200}"#, Baseline::Unarmed, Ok(vec![])),
        (
            "unarmed: text fails",
            r#"{"count": "many"}"#,
            Baseline::Unarmed,
            Err(r#"/count is a string ("many"), expected a number"#),
        ),
        (
            "armed, no baseline: the value is recorded",
            r#"{"count": 1342}"#,
            Baseline::Pending,
            Ok(vec![("/count", 1342.0)]),
        ),
        (
            "armed, no baseline: text fails and records nothing",
            r#"{"count": null}"#,
            Baseline::Pending,
            Err("/count is null, expected a number"),
        ),
        (
            "armed: lower fails naming both numbers",
            r#"{"count": 1200}"#,
            Baseline::At(1342.0),
            Err("/count dropped while armed: 1342 → 1200"),
        ),
        ("armed: equal passes", r#"{"count": 1342}"#, Baseline::At(1342.0), Ok(vec![])),
        ("armed: higher passes, baseline stays", r#"{"count": 1500}"#, Baseline::At(1342.0), Ok(vec![])),
        ("armed: 1342.0 equals a 1342 baseline", r#"{"count": 1342.0}"#, Baseline::At(1342.0), Ok(vec![])),
        (
            "armed: a float drop prints as JSON numbers",
            r#"{"count": 1341.5}"#,
            Baseline::At(1342.0),
            Err("/count dropped while armed: 1342 → 1341.5"),
        ),
        (
            "armed: an integer below a float baseline fails",
            r#"{"count": 1200.0}"#,
            Baseline::At(1342.25),
            Err("/count dropped while armed: 1342.25 → 1200"),
        ),
        ("armed: a missing value fails", r#"{"other": 1}"#, Baseline::At(1342.0), Err("/count is missing")),
    ]
}

#[test]
fn no_drop_checks_a_number_and_never_below_its_baseline_while_armed() {
    let e = expect("/count", vec![JsonOp::NoDrop]);
    for (name, body, at, want) in no_drop_cases() {
        let got = evaluate(&e, body.as_bytes(), |path| {
            assert_eq!(path, "/count", "case: {name}");
            at
        });
        assert_eq!(got, want.map_err(String::from), "case: {name}");
    }
}

#[test]
fn a_body_failing_another_assertion_records_no_baseline() {
    let bodies = [r#"{"count": 1342, "status": "degraded"}"#, r#"{"status": "degraded", "count": 1342}"#];
    let json = vec![
        JsonAssertion { path: "/count".into(), ops: vec![JsonOp::NoDrop] },
        JsonAssertion { path: "/status".into(), ops: vec![JsonOp::Equals(json!("ok"))] },
    ];
    let e = Expect { status: vec![200], json, body_contains: None };
    for body in bodies {
        let got = evaluate(&e, body.as_bytes(), |_| Baseline::Pending);
        assert_eq!(got, Err(r#"/status is "degraded", expected "ok""#.into()), "{body}");
    }
    let mut contains = expect("/count", vec![JsonOp::NoDrop]);
    contains.body_contains = Some("\"status\"".into());
    let got = evaluate(&contains, br#"{"count": 1342}"#, |_| Baseline::Pending);
    assert_eq!(got, Err(r#"body does not contain "\"status\"""#.into()));
}

#[test]
fn each_no_drop_path_asks_for_its_own_baseline() {
    let json = vec![
        JsonAssertion { path: "/customers/count".into(), ops: vec![JsonOp::NoDrop] },
        JsonAssertion { path: "/portfolio/total".into(), ops: vec![JsonOp::NoDrop] },
    ];
    let e = Expect { status: vec![200], json, body_contains: None };
    let at = |path: &str| if path == "/customers/count" { Baseline::At(1000.0) } else { Baseline::Pending };
    assert_eq!(evaluate(&e, BODY.as_bytes(), at), Ok(vec![("/portfolio/total", 230.0)]));
}
