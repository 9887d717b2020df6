#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design
//! `alerts/guardian-rules.yml` against the real Prometheus tooling and the
//! real guardian: `promtool check rules` accepts it, `promtool test rules`
//! runs its unit tests (each alert firing and not firing on hand-made
//! series), every metric its expressions name is one a running guardian
//! exports (so a rename cannot silently blank an alert), and every alert's
//! labels route in `alerts/alertmanager.yml` where its team and severity say.
//! Without promtool or amtool on PATH those tests print a note and pass,
//! except under `CI=true`, where they fail.

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use serde_json::Value;
use support::exported::guardian_metrics;
use support::tools::{report, run};

fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn rules() -> Vec<Value> {
    let text = std::fs::read_to_string(path("alerts/guardian-rules.yml")).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).expect("alerts/guardian-rules.yml is valid YAML");
    doc["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap().clone()).collect()
}

fn alerts() -> Vec<Value> {
    rules().into_iter().filter(|r| r.get("alert").is_some()).collect()
}

#[test]
fn promtool_checks_the_rule_file() {
    let Some(out) = run("promtool", &["check", "rules", path("alerts/guardian-rules.yml").to_str().unwrap()]) else {
        return;
    };
    assert!(out.status.success(), "promtool check rules failed:\n{}", report(&out));
    assert!(report(&out).contains("SUCCESS"), "{}", report(&out));
}

#[test]
fn every_alert_fires_and_stays_quiet_where_its_unit_tests_say() {
    let tests = path("alerts/tests/guardian-rules.test.yml");
    let Some(out) = run("promtool", &["test", "rules", tests.to_str().unwrap()]) else { return };
    assert!(out.status.success(), "promtool test rules failed:\n{}", report(&out));
    // Every alert of the file has a unit test that expects it to fire.
    let text = std::fs::read_to_string(&tests).unwrap();
    let tested: BTreeSet<String> =
        text.lines().filter_map(|l| l.trim().strip_prefix("alertname: ")).map(|name| name.trim().to_string()).collect();
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        assert!(tested.contains(name), "{name} has no unit test in {}", tests.display());
    }
}

#[test]
fn every_alert_says_who_acts_how_urgently_and_what_to_do() {
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        let labels = &alert["labels"];
        assert!(["business", "ops"].contains(&labels["team"].as_str().unwrap_or_default()), "{name}: team");
        let severity = labels["severity"].as_str().unwrap_or_default();
        assert!(["page", "warning", "ticket"].contains(&severity), "{name}: severity {severity:?}");
        for key in ["summary", "description", "runbook"] {
            let text = alert["annotations"][key].as_str().unwrap_or_default();
            assert!(!text.is_empty(), "{name}: {key} annotation");
        }
    }
}

#[test]
fn alerts_route_in_alertmanager_where_their_labels_say() {
    let config = path("alerts/alertmanager.yml");
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        let (team, severity) =
            (alert["labels"]["team"].as_str().unwrap(), alert["labels"]["severity"].as_str().unwrap());
        let expected = match (team, severity) {
            ("business", "page") => "business-page,business",
            ("business", _) => "business",
            _ => "ops",
        };
        let labels = [format!("alertname={name}"), format!("team={team}"), format!("severity={severity}")];
        let verify = format!("--verify.receivers={expected}");
        let mut args = vec!["config", "routes", "test", "--config.file", config.to_str().unwrap(), &verify];
        args.extend(labels.iter().map(String::as_str));
        let Some(out) = run("amtool", &args) else { return };
        assert!(out.status.success(), "{name} should route to {expected}:\n{}", report(&out));
    }
}

/// Every metric the rules name, with the rule that names it.
fn named_in_rules() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for rule in rules() {
        let who = rule.get("alert").or_else(|| rule.get("record")).and_then(Value::as_str).unwrap().to_string();
        for metric in guardian_metrics(rule["expr"].as_str().unwrap()) {
            out.push((metric, who.clone()));
        }
    }
    out
}

#[test]
fn metric_names_are_found_in_expressions() {
    let found = guardian_metrics(
        r#"sum(rate(guardian_probes_total{outcome="ok"}[5m])) / guardian:check_sli:ratio_rate5m + guardian_probe_duration_seconds_bucket"#,
    );
    assert_eq!(
        found.into_iter().collect::<Vec<_>>(),
        ["guardian_probe_duration_seconds_bucket", "guardian_probes_total"],
        "recorded series are not exported metrics"
    );
}

#[tokio::test]
async fn every_metric_the_rules_use_is_exported_by_a_running_guardian() {
    let exported = support::exported::metric_names().await;
    let missing: Vec<String> = named_in_rules()
        .into_iter()
        .filter(|(metric, _)| !exported.contains(metric.as_str()))
        .map(|(metric, rule)| format!("{metric} (in {rule})"))
        .collect();
    assert!(missing.is_empty(), "named by the rules, not exported: {missing:?}\nexported: {exported:?}");
}
