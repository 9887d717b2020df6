//! Config loading: every error kind with its place, defaults, `${VAR}`
//! headers that never leak, and the `check-config` command's exit codes.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design

use std::collections::HashMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use guardian::config::{self, MapEnv};

fn env(pairs: &[(&str, &str)]) -> MapEnv {
    MapEnv(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>())
}

#[test]
fn each_invalid_config_reports_exactly_its_expected_errors_with_places() {
    let dir = Path::new("tests/configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !(name.starts_with("invalid-") && name.ends_with(".yaml")) {
            continue;
        }
        let expected = std::fs::read_to_string(path.with_extension("err")).unwrap();
        let err = config::load(&path, &MapEnv::default()).expect_err(&name);
        assert_eq!(err.lines().join("\n"), expected.trim_end(), "{name}");
        seen += 1;
    }
    assert!(seen >= 11, "only {seen} invalid configs found");
}

#[test]
fn a_minimal_config_gets_the_documented_defaults() {
    let c = config::load(Path::new("tests/configs/base.yaml"), &MapEnv::default()).unwrap();
    let check = &c.checks[0];
    assert_eq!(check.interval, Duration::from_secs(5));
    assert_eq!(check.budget, Duration::from_millis(500));
    assert_eq!(check.timeout, Duration::from_secs(1), "2 × budget, at least 1s");
    assert_eq!(check.max_body, 1 << 20);
    assert_eq!(check.expect.status, vec![200]);
    assert_eq!(check.method, http::Method::GET);
    assert!(!check.follow_redirects);
    assert_eq!(c.listen.to_string(), "0.0.0.0:9090");
    assert_eq!(c.storage_url.expose(), "sqlite://guardian.db");
    assert_eq!((c.guard.breach_window, c.guard.breach_max_bad), (5, 3));
    assert_eq!(c.gate.stale_after, Duration::from_secs(30));
}

#[test]
fn the_timeout_defaults_to_twice_the_budget() {
    let yaml = "environment: dev\nchecks:\n  - { name: p, url: 'http://127.0.0.1:1/', budget: 3s }\n";
    let c = config::parse(yaml, "t.yaml", &MapEnv::default()).unwrap();
    assert_eq!(c.checks[0].timeout, Duration::from_secs(6));
}

#[test]
fn the_nextgen_example_holds_the_business_budgets() {
    let c = config::load(Path::new("examples/nextgen.yaml"), &MapEnv::default()).unwrap();
    let budget = |name: &str| c.checks.iter().find(|k| k.name == name).unwrap().budget;
    assert_eq!(budget("revenue-status"), Duration::from_millis(500));
    assert_eq!(budget("payments-health"), Duration::from_secs(3));
    assert_eq!(budget("domains-list"), Duration::from_secs(2));
    assert_eq!(budget("customers-count"), Duration::from_secs(1));
    assert_eq!(budget("admin-health"), Duration::from_secs(1));
    let domains = c.checks.iter().find(|k| k.name == "domains-list").unwrap();
    assert!(format!("{:?}", domains.expect.json).contains("Length(230)"));
    assert!(c.slos.iter().all(|s| s.objective == 0.999));
}

#[test]
fn header_variables_are_expanded_and_never_shown() {
    let yaml = "environment: prod\nchecks:\n  - name: p\n    url: 'http://127.0.0.1:1/'\n    budget: 1s\n    headers: { Authorization: 'Bearer ${NEXTGEN_TOKEN}' }\n";
    let c = config::parse(yaml, "t.yaml", &env(&[("NEXTGEN_TOKEN", "tok-123456")])).unwrap();
    let (name, value) = &c.checks[0].headers[0];
    assert_eq!(name.as_str(), "authorization");
    assert_eq!(value.to_str().unwrap(), "Bearer tok-123456");
    assert!(value.is_sensitive());
    assert!(!format!("{c:?}").contains("tok-123456"), "the secret leaked into Debug output");
}

#[test]
fn a_bad_header_value_is_reported_without_its_value() {
    let yaml = "environment: prod\nchecks:\n  - name: p\n    url: 'http://127.0.0.1:1/'\n    budget: 1s\n    headers: { X-Key: '${K}' }\n";
    let err = config::parse(yaml, "t.yaml", &env(&[("K", "line1\nhunter2")])).unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        "t.yaml:6:23: checks[0].headers.X-Key: value has characters a header cannot carry (value not shown)"
    );
    assert!(!text.contains("hunter2"));
}

#[test]
fn an_unreadable_file_names_the_file() {
    let err = config::load(Path::new("tests/configs/nope.yaml"), &MapEnv::default()).unwrap_err();
    assert!(err.to_string().starts_with("tests/configs/nope.yaml: cannot read config:"), "{err}");
}

#[test]
fn check_config_exits_0_for_a_good_file_and_2_with_each_error_on_stderr() {
    let bin = env!("CARGO_BIN_EXE_guardian");
    let ok = Command::new(bin).args(["check-config", "-c", "examples/nextgen.yaml"]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok (11 checks"));

    let bad = Command::new(bin)
        .args(["check-config", "-c", "tests/configs/invalid-missing-reference.yaml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    let lines: Vec<_> = stderr.lines().filter(|l| l.starts_with("tests/configs/")).collect();
    assert_eq!(
        lines,
        [
            "tests/configs/invalid-missing-reference.yaml:8:31: slos[0].checks: no check is named \"payment-status\"",
            "tests/configs/invalid-missing-reference.yaml:14:16: guard.targets[0].checks: no check is named \"revenue-status\"",
        ]
    );
}

#[test]
fn a_header_set_twice_in_different_case_is_an_error() {
    let yaml = "environment: prod\nchecks:\n  - name: p\n    url: 'http://127.0.0.1:1/'\n    budget: 1s\n    headers: { X-Key: a, x-key: b }\n";
    let err = config::parse(yaml, "t.yaml", &MapEnv::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        "t.yaml:6:33: checks[0].headers.x-key: \"x-key\" is set twice (header names ignore case)"
    );
}

#[test]
fn huge_durations_are_reported_not_panicked_on() {
    let yaml = "environment: prod\nchecks:\n  - name: p\n    url: 'http://127.0.0.1:1/'\n    budget: 18446744073709551615s\n    interval: 5000d\n";
    let err = config::parse(yaml, "t.yaml", &MapEnv::default()).unwrap_err();
    assert_eq!(
        err.lines(),
        [
            "t.yaml:5:13: checks[0].budget: 18446744073709551615s is longer than a year; that is surely a typo",
            "t.yaml:6:15: checks[0].interval: 5000d is longer than a year; that is surely a typo",
        ]
    );
    let yaml =
        "environment: prod\nchecks:\n  - name: p\n    url: 'http://127.0.0.1:1/'\n    budget: 11m\n    interval: 2d\n";
    let err = config::parse(yaml, "t.yaml", &MapEnv::default()).unwrap_err();
    assert_eq!(
        err.lines(),
        [
            "t.yaml:5:13: checks[0].budget: 11m is above the 10m maximum",
            "t.yaml:6:15: checks[0].interval: 2d is above the 1d maximum",
        ]
    );
}

#[test]
fn a_bad_check_is_not_also_reported_missing_where_it_is_named() {
    let yaml = "environment: prod\nchecks:\n  - { name: b, url: 'http://127.0.0.1:1/', budget: 0s }\nslos:\n  - { name: s, checks: [b] }\n";
    let err = config::parse(yaml, "t.yaml", &MapEnv::default()).unwrap_err();
    assert_eq!(err.lines(), ["t.yaml:3:52: checks[0].budget: must be longer than 0"]);
}

#[test]
fn passwords_in_connection_urls_never_show() {
    let yaml = "environment: prod\nstorage: { url: 'postgres://g:hunter2@db/g' }\nredis: { url: 'redis://:hunter2@r:6379' }\nchecks:\n  - { name: b, url: 'http://u:hunter2@127.0.0.1:1/', budget: 1s }\n";
    let c = config::parse(yaml, "t.yaml", &MapEnv::default()).unwrap();
    assert!(!format!("{c:?}").contains("hunter2"));
    assert_eq!(c.storage_url.to_string(), "postgres://g:***@db/g");
    assert_eq!(c.checks[0].display_url(), "http://127.0.0.1:1/");
    let bad = "environment: prod\nchecks:\n  - { name: b, url: 'http://admin:hunter2@nextgen:99999/x', budget: 1s }\n";
    let err = config::parse(bad, "t.yaml", &MapEnv::default()).unwrap_err().to_string();
    assert!(err.contains("http://admin:***@nextgen:99999/x") && !err.contains("hunter2"), "{err}");
}

#[test]
fn connection_urls_take_their_secrets_from_variables_and_never_show_them() {
    let yaml = "environment: prod\nstorage: { url: '${PG_URL}' }\nredis: { url: 'redis://:${REDIS_PASSWORD}@127.0.0.1:6379/0' }\nchecks:\n  - { name: p, url: 'http://127.0.0.1:1/', budget: 1s }\n";
    let vars = env(&[("PG_URL", "postgres://guardian:pg-s3cret@db:5432/guardian"), ("REDIS_PASSWORD", "rd-s3cret")]);
    let c = config::parse(yaml, "t.yaml", &vars).unwrap();
    assert_eq!(c.storage_url.expose(), "postgres://guardian:pg-s3cret@db:5432/guardian");
    assert_eq!(c.redis_url.as_ref().unwrap().expose(), "redis://:rd-s3cret@127.0.0.1:6379/0");
    let shown = format!("{c:?}");
    assert!(!shown.contains("pg-s3cret") && !shown.contains("rd-s3cret"), "a password leaked: {shown}");

    // Unset: the error names the variable and where it is used.
    let err = config::parse(yaml, "t.yaml", &env(&[("PG_URL", "postgres://db/g")])).unwrap_err();
    assert_eq!(err.lines(), vec!["t.yaml:3:15: redis.url: environment variable REDIS_PASSWORD is not set".to_string()]);
    // Expanded to something that is not a database URL: said, without the value's password.
    let err =
        config::parse(yaml, "t.yaml", &env(&[("PG_URL", "mysql://u:pw@db/g"), ("REDIS_PASSWORD", "x")])).unwrap_err();
    assert_eq!(
        err.lines(),
        vec!["t.yaml:2:17: storage.url: \"mysql://u:***@db/g\" is neither sqlite://… nor postgres://…".to_string()]
    );
}
