//! Owns the go/no-go gate: the pure decision with its reason codes, deploy
//! windows in real time zones, the backups it requires, and the JSON body
//! that `GET /api/v1/gate` answers and `guardian gate` reads.
//!
//! - `decide`  — the rules: data and `now` in, a `GateDecision` out.
//! - `slot`    — deploy windows: open or not, and when they next open.
//! - `reason`  — the reason codes of SPEC, each with a hand-written `code()`.
//! - `body`    — the wire form `{"decision","environment","reasons","evaluated_at"}`.
//! - `wording` — how gate messages write times, durations and shares.

mod body;
mod decide;
mod reason;
mod slot;
mod wording;

pub use body::{BodyReason, GateBody, Verdict};
pub use decide::{CheckView, GateInput, IncidentView, SloView, decide};
pub use reason::{
    BACKUP_STALE, CHECK_FAILING, DATA_STALE, INCIDENT_OPEN, OUTSIDE_WINDOW, ROLLOUT_IN_PROGRESS, ReasonCode,
    SLO_BUDGET_LOW,
};
pub use slot::{Opening, WindowState, describe_opening, describe_window, is_open, next_opening, open_window};

use jiff::Timestamp;
use serde::Serialize;

use crate::config::Environment;

/// A backup reported by `POST /api/v1/backups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Backup {
    pub environment: Environment,
    pub id: String,
    pub completed_at: Timestamp,
    pub ok: bool,
}

/// Why the gate says no-go.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Reason {
    /// One of SPEC's reason codes.
    pub code: &'static str,
    /// What is wrong, in words a person can act on.
    pub message: String,
}

/// One gate answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateDecision {
    pub environment: Environment,
    pub go: bool,
    pub reasons: Vec<Reason>,
    pub evaluated_at: Timestamp,
}
