#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers panic on setup failure by design
//! `alerts/alertmanager.yml` against the real Alertmanager tooling: `amtool
//! check-config` accepts it, `amtool config routes test` routes business
//! warnings, business pages and everything else where the file says, and its
//! inhibit rule silences warnings while a page fires in the same environment.
//! Without amtool on PATH the amtool tests print a note and pass, except under
//! `CI=true`, where they fail.

mod support;

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;
use support::tools::report;

fn config_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("alerts/alertmanager.yml")
}

fn config() -> Value {
    let text = std::fs::read_to_string(config_path()).unwrap();
    serde_saphyr::from_str(&text).expect("alerts/alertmanager.yml is valid YAML")
}

/// Runs amtool with `args`; `None` when amtool is not on PATH (outside CI).
fn amtool(args: &[&str]) -> Option<Output> {
    support::tools::run("amtool", args)
}

/// Asserts that `labels` route to exactly `receivers`, in order.
fn assert_routes(labels: &[&str], receivers: &str) {
    let config = config_path();
    let verify = format!("--verify.receivers={receivers}");
    let mut args = vec!["config", "routes", "test", "--config.file", config.to_str().unwrap(), &verify];
    args.extend(labels);
    let Some(out) = amtool(&args) else { return };
    assert!(out.status.success(), "{labels:?} should route to {receivers}:\n{}", report(&out));
    let routed = String::from_utf8_lossy(&out.stdout);
    assert_eq!(routed.trim(), receivers, "{labels:?}");
}

#[test]
fn amtool_check_config_accepts_the_file() {
    let Some(out) = amtool(&["check-config", config_path().to_str().unwrap()]) else { return };
    assert!(out.status.success(), "amtool check-config failed:\n{}", report(&out));
    assert!(report(&out).contains("SUCCESS"), "{}", report(&out));
}

#[test]
fn a_business_warning_goes_to_the_business_receiver() {
    let alert = [
        "alertname=GuardianCheckSlow",
        "team=business",
        "severity=warning",
        "environment=prod",
        "check=payments-health",
    ];
    assert_routes(&alert, "business");
}

#[test]
fn a_business_page_goes_to_the_pager_and_the_business_receiver() {
    let alert = ["alertname=GuardianIncident", "team=business", "severity=page", "environment=prod", "incident=42"];
    assert_routes(&alert, "business-page,business");
}

#[test]
fn anything_else_goes_to_the_default_receiver() {
    assert_routes(&["alertname=NodeDown", "team=infra", "severity=page", "environment=prod"], "ops");
    assert_routes(&["alertname=Watchdog"], "ops");
}

#[test]
fn alerts_are_grouped_by_incident() {
    let config = config();
    let group_by: Vec<&str> =
        config["route"]["group_by"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(group_by, ["environment", "incident"], "an incident's alerts share a group whatever their alertname");
}

#[test]
fn a_page_inhibits_warnings_and_tickets_in_its_environment() {
    let config = config();
    let rules = config["inhibit_rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{rules:?}");
    let rule = &rules[0];
    assert_eq!(rule["source_matchers"], serde_json::json!(["severity=\"page\""]));
    assert_eq!(rule["target_matchers"], serde_json::json!(["severity=~\"warning|ticket\""]));
    assert_eq!(rule["equal"], serde_json::json!(["environment"]));
}

#[test]
fn receivers_are_webhooks_with_the_documented_placeholders() {
    let config = config();
    let url = |name: &str| {
        let receivers = config["receivers"].as_array().unwrap();
        let receiver = receivers.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no receiver {name}"));
        receiver["webhook_configs"][0]["url"].as_str().unwrap().to_owned()
    };
    // Deploy overlays and the end-to-end tests replace these exact strings.
    assert_eq!(url("business"), "http://business-webhook.blueocean-nextgen-prod.svc:8080/alerts");
    assert_eq!(url("business-page"), "http://business-pager.blueocean-nextgen-prod.svc:8080/page");
    assert_eq!(url("ops"), "http://ops-webhook.blueocean-nextgen-prod.svc:8080/alerts");
}
