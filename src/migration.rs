//! Owns declared migrations (`POST /api/v1/migrations`): a change the guard
//! watches even when no rollout is visible, and what a breach should do.

use jiff::Timestamp;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnBreach {
    Rollback,
    Pause,
}

impl OnBreach {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rollback => "rollback",
            Self::Pause => "pause",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Migration {
    pub id: String,
    /// `NAMESPACE/KIND/NAME`.
    pub target: String,
    pub description: String,
    pub on_breach: OnBreach,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
}
