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
pub(crate) mod validate;

use std::net::SocketAddr;
use std::time::Duration;

pub use env::{Env, MapEnv, ProcessEnv, Secret};
pub use error::{ConfigError, Problem};
pub use load::{load, parse};
pub use validate::redact_url;

/// The environment this guardian watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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

/// A connection URL that may carry a password: `Debug` and `Display` mask it.
#[derive(Clone, PartialEq, Eq)]
pub struct ConnUrl(String);

impl ConnUrl {
    pub fn new(url: String) -> Self {
        Self(url)
    }

    /// The real URL, for the one place that connects.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for ConnUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&validate::redact_url(&self.0))
    }
}

impl std::fmt::Debug for ConnUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self}")
    }
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub environment: Environment,
    pub listen: SocketAddr,
    /// Name of the environment variable holding the API bearer token.
    pub api_token_env: Option<String>,
    /// Requests per second each API client may make (429 beyond, after a burst of twice that).
    pub api_requests_per_second: std::num::NonZeroU32,
    pub storage_url: ConnUrl,
    pub redis_url: Option<ConnUrl>,
    /// Where this guardian's Redis keys live; `nextgen:{environment}:` unless set.
    pub redis_key_prefix: Option<String>,
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
#[derive(Clone)]
pub struct Check {
    pub name: String,
    pub url: url::Url,
    pub method: http::Method,
    /// Values are marked sensitive: never printed, logged or exported.
    pub headers: Vec<(http::HeaderName, http::HeaderValue)>,
    pub interval: Duration,
    pub timeout: Duration,
    pub budget: Duration,
    pub max_body: u64,
    pub follow_redirects: bool,
    /// Share of ARR at risk while this check is breached (0 to 1).
    pub revenue_share: f64,
    pub expect: Expect,
}

impl std::fmt::Debug for Check {
    // By hand so the URL's password never reaches a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Check")
            .field("name", &self.name)
            .field("url", &self.display_url())
            .field("method", &self.method)
            .field("headers", &self.headers)
            .field("interval", &self.interval)
            .field("timeout", &self.timeout)
            .field("budget", &self.budget)
            .field("max_body", &self.max_body)
            .field("follow_redirects", &self.follow_redirects)
            .field("revenue_share", &self.revenue_share)
            .field("expect", &self.expect)
            .finish()
    }
}

impl Check {
    /// The URL as it may be shown to people: no user or password, and no
    /// credential in its query.
    pub fn display_url(&self) -> String {
        let mut url = self.url.clone();
        let _ = url.set_username("");
        let _ = url.set_password(None);
        validate::mask_password_params(url.as_str())
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
    /// Never below its value when the guard armed (baselines in `probe::Baselines`).
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
    pub lease: Lease,
}

/// Leader election through a `coordination.k8s.io/v1` Lease (Kubernetes mode).
#[derive(Debug, Clone)]
pub struct Lease {
    /// Default `guardian-ENVIRONMENT`.
    pub name: Option<String>,
    pub duration: Duration,
    pub renew_every: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WebhookFormat {
    Slack,
    Teams,
    Generic,
}

#[derive(Clone)]
pub struct Webhook {
    pub url: url::Url,
    pub format: WebhookFormat,
}

/// The URL is a credential (Slack and Teams put the secret in it).
impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Webhook")
            .field("url", &format_args!("{}://{}/…", self.url.scheme(), self.url.host_str().unwrap_or("?")))
            .field("format", &self.format)
            .finish()
    }
}

#[derive(Debug, Clone)]
pub struct Notify {
    pub alertmanager: Vec<url::Url>,
    /// How often firing alerts are sent to Alertmanager again.
    pub resend_every: Duration,
    pub webhooks: Vec<Webhook>,
}

impl Default for Notify {
    fn default() -> Self {
        Self { alertmanager: Vec::new(), resend_every: defaults::ALERT_RESEND_EVERY, webhooks: Vec::new() }
    }
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
