//! The gate's reason codes (SPEC), written by hand: dashboards, deploy
//! scripts and the store match on these exact strings, so they never come
//! from `Debug`.

use super::Reason;

pub const CHECK_FAILING: &str = "check_failing";
pub const SLO_BUDGET_LOW: &str = "slo_budget_low";
pub const INCIDENT_OPEN: &str = "incident_open";
pub const OUTSIDE_WINDOW: &str = "outside_window";
pub const BACKUP_STALE: &str = "backup_stale";
pub const DATA_STALE: &str = "data_stale";
pub const ROLLOUT_IN_PROGRESS: &str = "rollout_in_progress";

/// Why the gate can say no-go. The order of the variants is the order in
/// which reasons are listed in an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ReasonCode {
    CheckFailing,
    SloBudgetLow,
    IncidentOpen,
    OutsideWindow,
    BackupStale,
    DataStale,
    RolloutInProgress,
}

impl ReasonCode {
    /// Every code, in answer order.
    pub const ALL: [Self; 7] = [
        Self::CheckFailing,
        Self::SloBudgetLow,
        Self::IncidentOpen,
        Self::OutsideWindow,
        Self::BackupStale,
        Self::DataStale,
        Self::RolloutInProgress,
    ];

    /// The code as SPEC writes it, e.g. `outside_window`.
    pub const fn code(self) -> &'static str {
        match self {
            Self::CheckFailing => CHECK_FAILING,
            Self::SloBudgetLow => SLO_BUDGET_LOW,
            Self::IncidentOpen => INCIDENT_OPEN,
            Self::OutsideWindow => OUTSIDE_WINDOW,
            Self::BackupStale => BACKUP_STALE,
            Self::DataStale => DATA_STALE,
            Self::RolloutInProgress => ROLLOUT_IN_PROGRESS,
        }
    }

    /// The code for a SPEC string, e.g. when reading a stored decision back.
    pub fn from_code(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.code() == text)
    }
}

impl std::fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.code())
    }
}

impl Reason {
    pub fn new(code: ReasonCode, message: impl Into<String>) -> Self {
        Self { code: code.code(), message: message.into() }
    }

    /// The code as a `ReasonCode`; `None` only for a code this build does not know.
    pub fn kind(&self) -> Option<ReasonCode> {
        ReasonCode::from_code(self.code)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_spelled_as_spec_writes_them_and_round_trip() {
        let spelled: Vec<_> = ReasonCode::ALL.iter().map(|c| c.code()).collect();
        assert_eq!(
            spelled,
            [
                "check_failing",
                "slo_budget_low",
                "incident_open",
                "outside_window",
                "backup_stale",
                "data_stale",
                "rollout_in_progress"
            ]
        );
        for code in ReasonCode::ALL {
            assert_eq!(ReasonCode::from_code(code.code()), Some(code));
        }
        assert_eq!(ReasonCode::from_code("CheckFailing"), None);
    }
}
