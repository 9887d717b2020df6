#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design
//! The Grafana dashboards (`dashboards/*.json`) and their provisioning
//! (`dashboards/provisioning/`): each is a Grafana model with the expected
//! uid, title and variables; every panel reads the `datasource` variable and
//! has queries; every query filters on `$environment` (and `$check` where
//! the metric has a check label), names only metrics a running guardian
//! exports or series `alerts/guardian-rules.yml` records, and parses as
//! PromQL (`promtool check rules` on the queries made concrete). Without
//! promtool on PATH that test prints a note and passes, except under
//! `CI=true`, where it fails.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use regex::Regex;
use serde_json::{Value, json};
use support::dashboards::{Query, concrete, files, panels, queries, queries_of, recorded_series};
use support::exported::guardian_metrics;
use support::tools::{report, run};

const PANEL_TYPES: [&str; 5] = ["timeseries", "stat", "gauge", "table", "bargauge"];
const ENVIRONMENT_QUERY: &str = "label_values(guardian_gate_go, environment)";
const CHECK_QUERY: &str = r#"label_values(guardian_check_budget_seconds{environment=~"$environment"}, check)"#;
const ENV_FILTER: &str = r#"environment=~"$environment""#;
const CHECK_FILTER: &str = r#"check=~"$check""#;

fn path(relative: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn dashboard(uid: &str) -> Value {
    files().into_iter().map(|(_, d)| d).find(|d| d["uid"] == uid).unwrap_or_else(|| panic!("no dashboard {uid}"))
}

fn variable<'a>(dashboard: &'a Value, name: &str) -> Option<&'a Value> {
    dashboard["templating"]["list"].as_array()?.iter().find(|v| v["name"] == name)
}

/// A query variable's query, in Grafana's old (string) or new (object) form.
fn variable_query(var: &Value) -> &str {
    var["query"].as_str().or_else(|| var["query"]["query"].as_str()).unwrap_or_default()
}

/// Every vector selector of a `guardian…` series (exported or recorded):
/// the name and what stands between its braces ("" without braces).
fn selectors(expr: &str) -> Vec<(String, String)> {
    let re = Regex::new(r"\bguardian[_:][a-zA-Z0-9_:]*(\s*\{([^}]*)\})?").unwrap();
    re.captures_iter(expr)
        .map(|c| {
            let name = c[0].split('{').next().unwrap().trim().to_string();
            (name, c.get(2).map_or(String::new(), |m| m.as_str().to_string()))
        })
        .collect()
}

fn rule_file() -> Vec<Value> {
    let text = std::fs::read_to_string(path("alerts/guardian-rules.yml")).unwrap();
    let doc: Value = serde_saphyr::from_str(&text).unwrap();
    doc["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap().clone()).collect()
}

/// Recorded series of the rule file, with the labels they keep (`by (…)`).
fn recorded() -> BTreeMap<String, BTreeSet<String>> {
    let by = Regex::new(r"by \(([^)]*)\)").unwrap();
    rule_file()
        .iter()
        .filter_map(|r| {
            let name = r["record"].as_str()?.to_string();
            let expr = r["expr"].as_str().unwrap();
            let labels =
                by.captures_iter(expr).flat_map(|c| c[1].split(',').map(|l| l.trim().to_string()).collect::<Vec<_>>());
            Some((name, labels.collect()))
        })
        .collect()
}

/// Exported metrics with a `check` label, from the README's Metrics table
/// (histograms with their `_bucket`, `_sum` and `_count` series).
fn per_check_metrics() -> BTreeSet<String> {
    let readme = std::fs::read_to_string(path("README.md")).unwrap();
    let section = readme.split("\n## Metrics").nth(1).unwrap().split("\n## ").next().unwrap();
    let name = Regex::new(r"`(guardian_[a-z0-9_]+)`").unwrap();
    let mut out = BTreeSet::new();
    for row in section.lines().filter(|l| l.starts_with("| `guardian_")) {
        let row = row.replace(r"\|", "/");
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let labels: BTreeSet<&str> = cells[3].split(',').filter_map(|l| l.split_whitespace().next()).collect();
        if labels.contains("check") {
            for m in name.captures_iter(cells[1]) {
                for suffix in ["", "_bucket", "_sum", "_count"] {
                    out.insert(format!("{}{suffix}", &m[1]));
                }
            }
        }
    }
    assert!(
        out.contains("guardian_check_up") && out.contains("guardian_probes_total"),
        "README Metrics table: {out:?}"
    );
    out
}

/// Selectors that do not filter as the variables say: every series on
/// `$environment`, and those with a check label on `$check`.
fn unfiltered(queries: &[Query], per_check: &BTreeSet<String>) -> Vec<String> {
    let recorded = recorded();
    let mut out = Vec::new();
    for q in queries {
        for (name, matchers) in selectors(&q.expr) {
            let has_check = per_check.contains(&name) || recorded.get(&name).is_some_and(|l| l.contains("check"));
            if !matchers.contains(ENV_FILTER) {
                out.push(format!("{} / {}: {name} without {ENV_FILTER}", q.dashboard, q.panel));
            }
            if has_check && !matchers.contains(CHECK_FILTER) {
                out.push(format!("{} / {}: {name} without {CHECK_FILTER}", q.dashboard, q.panel));
            }
        }
    }
    out
}

/// Metrics named by the queries that `exported` lacks, with where.
fn unknown_metrics(queries: &[Query], exported: &BTreeSet<String>) -> Vec<String> {
    let mut out = Vec::new();
    for q in queries {
        for metric in guardian_metrics(&q.expr) {
            if !exported.contains(&metric) {
                out.push(format!("{metric} ({} / {})", q.dashboard, q.panel));
            }
        }
    }
    out
}

/// Recorded series named by the queries that the rule file does not record.
fn unknown_recorded(queries: &[Query]) -> Vec<String> {
    let recorded = recorded();
    let mut out = Vec::new();
    for q in queries {
        for name in recorded_series(&q.expr) {
            if !recorded.contains_key(&name) {
                out.push(format!("{name} ({} / {})", q.dashboard, q.panel));
            }
        }
    }
    out
}

/// `promtool check rules` on the queries made concrete, each a recording
/// rule; `None` without promtool, else its verdict and report.
fn promtool_parses(queries: &[Query]) -> Option<(bool, String)> {
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, q)| json!({ "record": format!("dashboard_query_{i}"), "expr": concrete(&q.expr, "prod") }))
        .collect();
    let file = json!({ "groups": [{ "name": "dashboards", "rules": rules }] });
    let dir = tempfile::tempdir().unwrap();
    let rules_path = dir.path().join("dashboards.rules.yml");
    // JSON is YAML: promtool reads it as is.
    std::fs::write(&rules_path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
    let out = run("promtool", &["check", "rules", rules_path.to_str().unwrap()])?;
    let text = report(&out);
    Some((out.status.success() && text.contains("SUCCESS"), text))
}

#[test]
fn both_dashboards_are_grafana_models_with_unique_uids_and_their_titles() {
    let all = files();
    assert_eq!(all.len(), 2, "dashboards/*.json: {:?}", all.iter().map(|(f, _)| f).collect::<Vec<_>>());
    let mut uids = BTreeSet::new();
    for (file, d) in &all {
        let uid = d["uid"].as_str().unwrap_or_default();
        assert!(!uid.is_empty() && uid.len() <= 40, "{file}: uid {uid:?}");
        assert!(uids.insert(uid.to_string()), "{file}: uid {uid} used twice");
        assert!(!d["title"].as_str().unwrap_or_default().is_empty(), "{file}: title");
        assert!(d["tags"].as_array().is_some_and(|t| t.iter().any(|t| t == "guardian")), "{file}: tags");
        assert!(d["schemaVersion"].as_u64().is_some_and(|v| (36..=41).contains(&v)), "{file}: schemaVersion");
        assert!(d["time"]["from"].is_string() && d["time"]["to"].is_string(), "{file}: time");
        assert!(d["refresh"].is_string(), "{file}: refresh");
        assert!(d["templating"]["list"].is_array(), "{file}: templating.list");
        assert!(d["panels"].as_array().is_some_and(|p| !p.is_empty()), "{file}: panels");
        assert!(d.get("id").is_none_or(Value::is_null), "{file}: a provisioned dashboard has no fixed id");
    }
    assert_eq!(dashboard("nextgen-business-slos")["title"], "NEXTGEN business SLOs");
    assert_eq!(dashboard("guardian-rollouts")["title"], "Guardian rollouts");
}

#[test]
fn both_dashboards_have_the_datasource_environment_and_check_variables() {
    for (file, d) in files() {
        let ds = variable(&d, "datasource").unwrap_or_else(|| panic!("{file}: no datasource variable"));
        assert_eq!((ds["type"].as_str(), ds["query"].as_str()), (Some("datasource"), Some("prometheus")), "{file}");
        for (name, query) in [("environment", ENVIRONMENT_QUERY), ("check", CHECK_QUERY)] {
            let var = variable(&d, name).unwrap_or_else(|| panic!("{file}: no {name} variable"));
            assert_eq!(var["type"], "query", "{file}: {name}");
            assert_eq!(variable_query(var), query, "{file}: {name}");
            assert_eq!(var["definition"].as_str().unwrap_or(query), query, "{file}: {name} definition");
            assert_eq!(
                (var["multi"].as_bool(), var["includeAll"].as_bool()),
                (Some(true), Some(true)),
                "{file}: {name}"
            );
            assert_eq!(var["datasource"]["uid"], "${datasource}", "{file}: {name}");
        }
    }
}

#[test]
fn every_panel_has_a_title_a_position_the_datasource_variable_and_queries() {
    for (file, d) in files() {
        let mut ids = BTreeSet::new();
        for panel in panels(&d) {
            let title = panel["title"].as_str().unwrap_or_default();
            assert!(!title.is_empty(), "{file}: a panel without a title: {panel}");
            let at = format!("{file} / {title}");
            assert!(ids.insert(panel["id"].as_u64().unwrap_or_else(|| panic!("{at}: id"))), "{at}: id used twice");
            let pos = &panel["gridPos"];
            let [h, w, x, y] =
                ["h", "w", "x", "y"].map(|k| pos[k].as_u64().unwrap_or_else(|| panic!("{at}: gridPos.{k}")));
            assert!(h > 0 && w > 0 && x + w <= 24, "{at}: gridPos {pos} {y}");
            if panel["type"] == "row" {
                continue;
            }
            assert!(PANEL_TYPES.contains(&panel["type"].as_str().unwrap_or_default()), "{at}: type {}", panel["type"]);
            assert_eq!(panel["datasource"], json!({"type": "prometheus", "uid": "${datasource}"}), "{at}: datasource");
            let targets = panel["targets"].as_array().unwrap_or_else(|| panic!("{at}: targets"));
            assert!(!targets.is_empty(), "{at}: no targets");
            let mut refs = BTreeSet::new();
            for t in targets {
                let ref_id = t["refId"].as_str().unwrap_or_default();
                assert!(!ref_id.is_empty() && refs.insert(ref_id), "{at}: refId {ref_id:?} missing or twice");
                assert!(!t["expr"].as_str().unwrap_or_default().trim().is_empty(), "{at}: {ref_id} has no expr");
                if let Some(ds) = t.get("datasource") {
                    assert_eq!(ds["uid"], "${datasource}", "{at}: {ref_id} datasource");
                }
            }
            assert!(panel["fieldConfig"]["defaults"]["unit"].is_string(), "{at}: unit");
        }
    }
}

#[test]
fn every_query_filters_on_the_environment_and_per_check_series_on_the_check() {
    let all = queries();
    assert!(all.len() >= 20, "{} queries", all.len());
    for q in &all {
        assert!(q.expr.contains("$environment"), "{} / {}: {}", q.dashboard, q.panel, q.expr);
    }
    let bad = unfiltered(&all, &per_check_metrics());
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_dashboards_show_what_they_promise() {
    let wanted = [
        (
            "nextgen-business-slos",
            &[
                "guardian:check_latency_seconds:p50_5m",
                "guardian:check_latency_seconds:p95_5m",
                "guardian:check_latency_seconds:p99_5m",
                "guardian_check_budget_seconds",
                "guardian:check_sli:ratio_rate5m",
                "guardian_slo_sli_ratio",
                "guardian_slo_error_budget_remaining_ratio",
                "guardian_slo_burn_rate",
                "guardian_incidents_open",
                "guardian_revenue_at_risk_eur",
                "guardian_gate_go",
                "guardian_check_up",
            ][..],
        ),
        (
            "guardian-rollouts",
            &[
                "guardian_target_rollout_in_progress",
                "guardian_actions_total",
                "guardian_breach_to_action_seconds_bucket",
                "guardian_detection_bound_seconds",
                "guardian_notifications_total",
                "guardian_notifications_queued",
                "guardian_leader",
                "guardian_redis_up",
                "guardian_storage_up",
            ][..],
        ),
    ];
    for (uid, metrics) in wanted {
        let named: BTreeSet<String> =
            queries_of(uid, &dashboard(uid)).iter().flat_map(|q| selectors(&q.expr)).map(|(name, _)| name).collect();
        for m in metrics {
            assert!(named.contains(*m), "{uid} does not show {m}");
        }
    }
    // Revenue in euros, latency in seconds.
    let slos = dashboard("nextgen-business-slos");
    for panel in panels(&slos) {
        let exprs = panel["targets"].as_array().into_iter().flatten().filter_map(|t| t["expr"].as_str());
        let unit = panel["fieldConfig"]["defaults"]["unit"].as_str().unwrap_or_default();
        for expr in exprs {
            if expr.contains("guardian_revenue_at_risk_eur") {
                assert_eq!(unit, "currencyEUR", "{}", panel["title"]);
            }
            if expr.contains("guardian:check_latency_seconds:p50_5m") {
                assert_eq!(unit, "s", "{}", panel["title"]);
            }
        }
    }
}

#[tokio::test]
async fn every_metric_the_dashboards_use_is_exported_by_a_running_guardian() {
    let exported = support::exported::metric_names().await;
    let missing = unknown_metrics(&queries(), &exported);
    assert!(missing.is_empty(), "named by the dashboards, not exported: {missing:?}\nexported: {exported:?}");
}

#[test]
fn every_recorded_series_the_dashboards_use_is_recorded_by_the_rule_file() {
    let used: BTreeSet<String> = queries().iter().flat_map(|q| recorded_series(&q.expr)).collect();
    assert!(used.contains("guardian:check_latency_seconds:p95_5m"), "{used:?}");
    let missing = unknown_recorded(&queries());
    assert!(missing.is_empty(), "not recorded by alerts/guardian-rules.yml: {missing:?}");
}

#[test]
fn provisioning_loads_the_dashboards_folder_and_the_datasource_they_use() {
    let read = |name: &str| -> Value {
        let text = std::fs::read_to_string(path(&format!("dashboards/provisioning/{name}"))).unwrap();
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let providers = read("dashboards.yaml");
    assert_eq!(providers["apiVersion"], 1);
    let provider = &providers["providers"].as_array().unwrap()[0];
    assert_eq!(provider["type"], "file");
    let folder = provider["options"]["path"].as_str().unwrap_or_default();
    assert!(folder.starts_with('/') && folder.trim_end_matches('/').ends_with("/dashboards"), "path {folder:?}");

    let datasources = read("datasources.yaml");
    assert_eq!(datasources["apiVersion"], 1);
    let prometheus = datasources["datasources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["type"] == "prometheus")
        .expect("a Prometheus datasource");
    assert_eq!(prometheus["url"], "http://prometheus:9090");
    let uid = prometheus["uid"].as_str().unwrap();
    for (file, d) in files() {
        let ds = variable(&d, "datasource").unwrap();
        assert_eq!(ds["current"]["value"], uid, "{file}: the datasource variable defaults to the provisioned uid");
    }
}

#[test]
fn promtool_parses_every_query() {
    let all = queries();
    for q in &all {
        let c = concrete(&q.expr, "prod");
        assert!(!c.contains('$'), "{} / {}: a variable left in {c}", q.dashboard, q.panel);
    }
    let Some((ok, text)) = promtool_parses(&all) else { return };
    assert!(ok, "promtool check rules on the dashboards' queries:\n{text}");
}

#[test]
fn promtool_rejects_a_query_that_does_not_parse() {
    let mut all = queries();
    all[0].expr.push_str(" +)");
    let Some((ok, text)) = promtool_parses(&all) else { return };
    assert!(!ok, "a broken query passed promtool:\n{text}");
}

#[test]
fn concrete_substitutes_every_variable() {
    let expr = r#"sum(rate(guardian_probes_total{environment=~"${environment}", check=~"$check"}[$__rate_interval])) / guardian_x{environment=~"$environment", check=~"${check}"}[$__range] offset $__interval"#;
    assert_eq!(
        concrete(expr, "prod"),
        r#"sum(rate(guardian_probes_total{environment=~"prod", check=~".*"}[1m])) / guardian_x{environment=~"prod", check=~".*"}[1m] offset 1m"#
    );
    assert_eq!(concrete("$__interval_ms $checks", "prod"), "$__interval_ms $checks", "other variables untouched");
}

#[test]
fn selectors_and_names_are_found_in_expressions() {
    let expr = r#"guardian:check_latency_seconds:p95_5m{environment=~"$environment", check=~"$check"}
  / on (environment, check) max by (environment, check) (guardian_check_budget_seconds {check=~"$check"}) + guardian_leader"#;
    assert_eq!(
        selectors(expr),
        [
            (
                "guardian:check_latency_seconds:p95_5m".to_string(),
                r#"environment=~"$environment", check=~"$check""#.to_string()
            ),
            ("guardian_check_budget_seconds".to_string(), r#"check=~"$check""#.to_string()),
            ("guardian_leader".to_string(), String::new()),
        ]
    );
    assert_eq!(recorded_series(expr), ["guardian:check_latency_seconds:p95_5m"]);
    assert_eq!(
        guardian_metrics(expr).into_iter().collect::<Vec<_>>(),
        ["guardian_check_budget_seconds", "guardian_leader"]
    );
}

/// The checks above catch what they are for: a renamed metric, an unknown
/// recorded series, a lost environment or check filter.
#[test]
fn the_checks_catch_a_broken_dashboard() {
    let all = queries();
    let exported: BTreeSet<String> = all.iter().flat_map(|q| guardian_metrics(&q.expr)).collect();
    let per_check = per_check_metrics();
    assert!(unknown_metrics(&all, &exported).is_empty());
    assert!(unknown_recorded(&all).is_empty());
    assert!(unfiltered(&all, &per_check).is_empty());

    let mutate = |from: &str, to: &str| -> Vec<Query> {
        let mut changed = all.clone();
        let q = changed.iter_mut().find(|q| q.expr.contains(from)).unwrap_or_else(|| panic!("no query has {from}"));
        q.expr = q.expr.replacen(from, to, 1);
        changed
    };
    let renamed = mutate("guardian_check_up{", "guardian_check_upp{");
    assert_eq!(unknown_metrics(&renamed, &exported).len(), 1, "a renamed metric");
    let unrecorded = mutate("guardian:check_sli:ratio_rate5m", "guardian:check_sli:ratio_rate7m");
    assert_eq!(unknown_recorded(&unrecorded).len(), 1, "an unknown recorded series");
    let no_env = mutate(r#"guardian_gate_go{environment=~"$environment"}"#, r#"guardian_gate_go{environment=~".+"}"#);
    assert_eq!(unfiltered(&no_env, &per_check).len(), 1, "a lost environment filter");
    let no_check = mutate(
        r#"guardian_check_up{environment=~"$environment", check=~"$check"}"#,
        r#"guardian_check_up{environment=~"$environment"}"#,
    );
    assert_eq!(unfiltered(&no_check, &per_check).len(), 1, "a lost check filter");
    let recorded_no_check = mutate(
        r#"guardian:check_sli:ratio_rate1d{environment=~"$environment", check=~"$check"}"#,
        r#"guardian:check_sli:ratio_rate1d{environment=~"$environment"}"#,
    );
    assert_eq!(unfiltered(&recorded_no_check, &per_check).len(), 1, "a lost check filter on a recorded series");
}
