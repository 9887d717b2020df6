//! Owns the configuration: the typed `Config` every other module reads, and
//! the one loader (`load`) shared by `run`, `probe` and `check-config`.
//!
//! Loading is two steps: YAML into the raw serde types of `raw` (unknown
//! keys rejected, every value with its line:col), then `validate` into the
//! types below, collecting every problem before failing.

mod check;
pub mod defaults;
mod env;
mod error;
mod load;
mod raw;
mod sections;
mod validate;

use std::net::SocketAddr;
use std::time::Duration;

pub use env::{Env, MapEnv, ProcessEnv, Secret};
pub use error::{ConfigError, Problem};
pub use load::{load, parse};

/// The environment this guardian watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    Dev,
    StagingShared,
    Prod,
}

impl Environment {
    pub const ALL: [Environment; 3] = [Self::Dev, Self::StagingShared, Self::Prod];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Dev => "dev",
            Self::StagingShared => "staging-shared",
            Self::Prod => "prod",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|e| e.as_str() == text)
    }
}

impl std::fmt::Display for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub listen: SocketAddr,
    /// Name of the environment variable holding the API bearer token.
    pub api_token_env: Option<String>,
    pub storage_url: String,
    pub redis_url: Option<String>,
    pub arr_eur: f64,
    pub probing: Probing,
    pub checks: Vec<Check>,
    pub slos: Vec<Slo>,
    pub guard: Guard,
    pub notify: Notify,
    pub gate: Gate,
}

/// Engine-wide probing limits (an extension of SPEC, under `probing:`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Probing {
    /// Probes per second allowed to any one host:port; excess probes are skipped.
    pub per_host_per_second: std::num::NonZeroU32,
}

/// One probed endpoint.
#[derive(Debug, Clone)]
pub struct Check {
    pub name: String,
    pub url: url::Url,
    pub method: http::Method,
    pub headers: Vec<(http::HeaderName, Secret)>,
    pub interval: Duration,
    pub timeout: Duration,
    pub budget: Duration,
    pub max_body: u64,
    pub follow_redirects: bool,
    pub expect: Expect,
}

impl Check {
    /// The URL as it may be shown to people: no user or password.
    pub fn display_url(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.to_string()
    }
}

/// What a good answer looks like.
#[derive(Debug, Clone)]
pub struct Expect {
    pub status: Vec<u16>,
    pub json: Vec<JsonAssertion>,
    pub body_contains: Option<String>,
}

/// One JSON Pointer assertion with one or more operators.
#[derive(Debug, Clone)]
pub struct JsonAssertion {
    /// RFC 6901 pointer, already checked for syntax.
    pub path: String,
    pub ops: Vec<JsonOp>,
}

#[derive(Debug, Clone)]
pub enum JsonOp {
    Equals(serde_json::Value),
    NotEquals(serde_json::Value),
    Length(u64),
    Min(f64),
    Max(f64),
    Exists(bool),
    Matches(regex::Regex),
    /// Never below its value when the guard armed (enforced by the guard).
    NoDrop,
}

#[derive(Debug, Clone)]
pub struct Slo {
    pub name: String,
    pub checks: Vec<String>,
    pub objective: f64,
    pub window: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuardMode {
    Kubernetes,
    Simulated,
    Off,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Deployment,
    Rollout,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub kind: TargetKind,
    pub namespace: String,
    pub name: String,
    /// Guarding checks; every check when the config names none.
    pub checks: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Pause,
    Rollback,
    Notify,
}

#[derive(Debug, Clone)]
pub struct Guard {
    pub mode: GuardMode,
    pub dry_run: bool,
    pub targets: Vec<Target>,
    pub breach_window: u32,
    pub breach_max_bad: u32,
    pub confirm_interval: Duration,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Slack,
    Teams,
    Generic,
}

#[derive(Debug, Clone)]
pub struct Webhook {
    pub url: url::Url,
    pub format: WebhookFormat,
}

#[derive(Debug, Clone, Default)]
pub struct Notify {
    pub alertmanager: Vec<url::Url>,
    pub webhooks: Vec<Webhook>,
}

#[derive(Debug, Clone)]
pub struct Gate {
    pub stale_after: Duration,
    pub min_error_budget_remaining: f64,
    pub require_backup_within: Option<Duration>,
    pub windows: Vec<DeployWindow>,
}

/// A deploy slot: local wall-clock times in a real time zone.
#[derive(Debug, Clone)]
pub struct DeployWindow {
    pub name: String,
    pub environments: Vec<Environment>,
    pub timezone: jiff::tz::TimeZone,
    pub days: Vec<jiff::civil::Weekday>,
    pub start: jiff::civil::Time,
    pub end: jiff::civil::Time,
}
