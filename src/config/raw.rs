//! The config file as written: serde types that reject unknown keys and keep
//! each value's line:col, so validation can say where a problem is.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

pub type S<T> = Spanned<T>;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub environment: Option<S<String>>,
    pub listen: Option<S<String>>,
    pub api: Option<RawApi>,
    pub storage: Option<RawStorage>,
    pub redis: Option<RawRedis>,
    pub business: Option<RawBusiness>,
    pub probing: Option<RawProbing>,
    pub checks: Option<S<Vec<RawCheck>>>,
    pub slos: Option<Vec<RawSlo>>,
    pub guard: Option<RawGuard>,
    pub notify: Option<RawNotify>,
    pub gate: Option<RawGate>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApi {
    pub token_env: Option<S<String>>,
    pub requests_per_second: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawStorage {
    pub url: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRedis {
    pub url: S<String>,
    pub key_prefix: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBusiness {
    pub arr_eur: Option<S<f64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbing {
    pub per_host_per_second: Option<S<u32>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCheck {
    pub name: S<String>,
    pub url: S<String>,
    pub method: Option<S<String>>,
    pub headers: Option<BTreeMap<String, S<String>>>,
    pub interval: Option<S<String>>,
    pub timeout: Option<S<String>>,
    pub budget: S<String>,
    pub max_body: Option<S<String>>,
    pub follow_redirects: Option<S<bool>>,
    pub revenue_share: Option<S<f64>>,
    pub expect: Option<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawExpect {
    pub status: Option<S<Vec<S<u16>>>>,
    pub json: Option<Vec<RawJsonAssertion>>,
    pub body_contains: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawJsonAssertion {
    pub path: S<String>,
    pub equals: Option<S<serde_json::Value>>,
    pub not_equals: Option<S<serde_json::Value>>,
    pub length: Option<S<u64>>,
    pub min: Option<S<f64>>,
    pub max: Option<S<f64>>,
    pub exists: Option<S<bool>>,
    pub matches: Option<S<String>>,
    pub no_drop: Option<S<bool>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSlo {
    pub name: S<String>,
    pub checks: S<Vec<S<String>>>,
    pub objective: Option<S<f64>>,
    pub window: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuard {
    pub mode: Option<S<String>>,
    pub dry_run: Option<S<bool>>,
    pub targets: Option<Vec<RawTarget>>,
    pub breach: Option<RawBreach>,
    pub actions: Option<Vec<S<String>>>,
    pub lease: Option<RawLease>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLease {
    pub name: Option<S<String>>,
    pub duration: Option<S<String>>,
    pub renew_every: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTarget {
    pub kind: S<String>,
    pub namespace: S<String>,
    pub name: S<String>,
    pub checks: Option<Vec<S<String>>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBreach {
    pub window: Option<S<u32>>,
    pub max_bad: Option<S<u32>>,
    pub confirm_interval: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNotify {
    pub alertmanager: Option<Vec<S<String>>>,
    pub resend_every: Option<S<String>>,
    pub webhooks: Option<Vec<RawWebhook>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWebhook {
    pub url: S<String>,
    pub format: Option<S<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGate {
    pub stale_after: Option<S<String>>,
    pub min_error_budget_remaining: Option<S<f64>>,
    pub require_backup_within: Option<S<String>>,
    pub windows: Option<Vec<RawWindow>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWindow {
    pub name: S<String>,
    pub environments: S<Vec<S<String>>>,
    pub timezone: S<String>,
    pub days: Option<S<Vec<S<String>>>>,
    pub start: S<String>,
    pub end: S<String>,
}
