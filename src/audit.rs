//! Owns the action audit log: every pause, rollback, resume and
//! notification Guardian performed or decided, with its outcome.

use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActionRecord {
    /// Unique; logging the same id twice keeps the first.
    pub id: String,
    pub at: Timestamp,
    /// `NAMESPACE/KIND/NAME`, or a channel name for notifications.
    pub target: String,
    /// `pause`, `rollback`, `resume`, `notify`.
    pub action: String,
    /// `ok`, `failed`, `dry_run`, `intent` (before the patch), `retry` (an attempt that will be retried).
    pub outcome: String,
    pub incident: Option<String>,
    pub detail: String,
}
