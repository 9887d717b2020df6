//! Owns incidents: what a confirmed breach of one check looked like, from
//! the moment it was confirmed to its recovery.

use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;

/// A confirmed breach of one check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Incident {
    pub id: String,
    pub check: String,
    pub started_at: Timestamp,
    /// `None` while open.
    pub ended_at: Option<Timestamp>,
    #[serde(serialize_with = "crate::incident::secs")]
    pub worst_latency: Duration,
    #[serde(serialize_with = "crate::incident::secs")]
    pub p95_latency: Duration,
    pub probes_total: u64,
    pub probes_bad: u64,
    /// `business.arr_eur` per minute × duration × the check's revenue share.
    pub revenue_at_risk_eur: f64,
    /// The reason of the probe that confirmed the breach.
    pub reason: String,
}

impl Incident {
    pub fn is_open(&self) -> bool {
        self.ended_at.is_none()
    }
}

pub(crate) fn secs<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

mod breach;
mod tracker;

pub use breach::{BreachRule, BreachState, Transition};
pub use tracker::{IncidentChange, IncidentTracker, Observation};
