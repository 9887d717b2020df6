//! The result of one probe and the rule that names its outcome.

use std::time::Duration;

use serde::Serialize;

use super::expect::{Baseline, Firsts, evaluate};
use crate::config::Check;
use crate::units::format_duration;

/// SPEC outcomes: `ok`; `slow` (expectations met, over budget); `failed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Ok,
    Slow,
    Failed,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Self::Ok, Self::Slow, Self::Failed];

    /// The metric label and API value.
    pub fn code(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Slow => "slow",
            Self::Failed => "failed",
        }
    }

    pub fn is_good(self) -> bool {
        self == Self::Ok
    }
}

/// One finished probe.
#[derive(Debug, Clone, Serialize)]
pub struct ProbeResult {
    pub check: String,
    /// Launch order within its check: which of two overlapping probes is newer,
    /// whatever the wall clock did meanwhile.
    #[serde(skip)]
    pub seq: u64,
    pub started_at: jiff::Timestamp,
    /// From sending the request to the last body byte (or to the failure).
    #[serde(serialize_with = "secs")]
    pub latency: Duration,
    /// From sending the request to the response head.
    #[serde(serialize_with = "opt_secs")]
    pub ttfb: Option<Duration>,
    pub status: Option<u16>,
    pub outcome: Outcome,
    /// Why, in words a person understands.
    pub reason: String,
    /// The budget elapsed while it was still running (an early verdict was given).
    pub over_budget_early: bool,
}

/// What came back before judging: the response, or why there is none.
#[derive(Debug)]
pub enum Fetched {
    Answer { status: u16, ttfb: Duration, body: bytes::Bytes, redirect_to: Option<String> },
    Failure { ttfb: Option<Duration>, status: Option<u16>, reason: String },
}

/// Names the outcome: status, then body, then latency against the budget.
/// `baseline` says where each `no_drop` path stands; the values to record as
/// first baselines come back only when the body met every expectation.
pub fn judge<'a>(
    check: &'a Check,
    fetched: &Fetched,
    latency: Duration,
    baseline: impl Fn(&str) -> Baseline,
) -> (Outcome, String, Firsts<'a>) {
    let (status, body, redirect_to) = match fetched {
        Fetched::Failure { reason, .. } => return (Outcome::Failed, reason.clone(), Vec::new()),
        Fetched::Answer { status, body, redirect_to, .. } => (*status, body, redirect_to),
    };
    if !check.expect.status.contains(&status) {
        let wanted = check.expect.status.iter().map(u16::to_string).collect::<Vec<_>>().join(" or ");
        let redirect = redirect_to.as_ref().map(|to| format!(" (redirect to {to}, not followed)")).unwrap_or_default();
        return (Outcome::Failed, format!("status {status}{redirect}, expected {wanted}"), Vec::new());
    }
    let firsts = match evaluate(&check.expect, body, baseline) {
        Ok(firsts) => firsts,
        Err(why) => return (Outcome::Failed, why, Vec::new()),
    };
    let took = format_duration(latency);
    // A slow answer still carries good data: its values may become baselines.
    if latency > check.budget {
        (Outcome::Slow, format!("answered in {took}, over the {} budget", format_duration(check.budget)), firsts)
    } else {
        (Outcome::Ok, format!("{status} in {took}"), firsts)
    }
}

fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn opt_secs<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}
