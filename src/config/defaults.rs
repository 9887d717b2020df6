//! Defaults for everything a config may leave out, each with why.

use std::time::Duration;

/// SPEC: checks run every 5 s unless told otherwise; fast enough to catch a
/// rollout's first bad pods, slow enough not to load production.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// SPEC: timeout defaults to twice the budget so a slow answer is still
/// measured, but never below 1 s so tiny budgets don't time out on a blip.
pub const TIMEOUT_BUDGET_FACTOR: u32 = 2;
pub const TIMEOUT_FLOOR: Duration = Duration::from_secs(1);
/// SPEC: bodies over 1 MiB fail the check; NEXTGEN's largest answer (230
/// domains) is about 60 KiB, so this leaves room without risking memory.
pub const MAX_BODY: u64 = 1 << 20;
pub const STATUS: [u16; 1] = [200];
/// A probe interval below this is almost surely a typo (`5ms` for `5s`).
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
/// A check probed less than daily guards nothing.
pub const MAX_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// No business endpoint is worth waiting on for more than 10 minutes.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(600);
/// No duration in a guardian config is longer than a year.
pub const MAX_DURATION: Duration = Duration::from_secs(365 * 24 * 3600);
/// SLO windows are kept minute by minute in memory: 90 days is 129,600 minutes.
pub const MAX_SLO_WINDOW: Duration = Duration::from_secs(90 * 24 * 3600);
/// Per host:port: generous for NEXTGEN's dozen checks, a brake on a typo
/// that would otherwise hammer production.
pub const PER_HOST_PER_SECOND: u32 = 50;

/// Per API client: far above what deploy scripts and scrapers need (the gate
/// is benchmarked at 200 requests/s), low enough that a runaway loop gets 429s.
pub const API_REQUESTS_PER_SECOND: u32 = 300;

pub const LISTEN: &str = "0.0.0.0:9090";
/// Embedded default: works on a laptop with nothing installed.
pub const STORAGE_URL: &str = "sqlite://guardian.db";
/// NEXTGEN's annual recurring revenue (migration plan).
pub const ARR_EUR: f64 = 2_300_000.0;

/// SPEC: 99.9 % availability over 30 days.
pub const SLO_OBJECTIVE: f64 = 0.999;
pub const SLO_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// 3 bad of the last 5 probes: one blip never rolls back a release.
pub const BREACH_WINDOW: u32 = 5;
pub const BREACH_MAX_BAD: u32 = 3;
/// After a bad probe, confirm quickly rather than wait a whole interval.
pub const CONFIRM_INTERVAL: Duration = Duration::from_millis(250);

/// client-go's usual lease: another replica takes over 15 s after the
/// leader last renewed; renewing every 5 s lets two renewals fail first.
pub const LEASE_DURATION: Duration = Duration::from_secs(15);
pub const LEASE_RENEW_EVERY: Duration = Duration::from_secs(5);

/// Alertmanager resolves an alert it has not heard of for its
/// `resolve_timeout` (5 m by default): a firing alert is sent again every
/// minute, so four re-sends may be lost before that happens.
pub const ALERT_RESEND_EVERY: Duration = Duration::from_secs(60);
pub const ALERT_RESEND_MAX: Duration = Duration::from_secs(240);

pub const STALE_AFTER: Duration = Duration::from_secs(30);
pub const MIN_ERROR_BUDGET_REMAINING: f64 = 0.1;

/// A check whose URL path starts with one of these carries the whole ARR at
/// risk by default (`revenue_share: 1.0`); every other check carries none
/// unless its config says so. Revenue and payments stop the money itself;
/// `/api/analytics/revenue` only reports on it.
pub const REVENUE_PATHS: [&str; 4] = ["/api/revenue", "/api/payments", "/revenue", "/payments"];
