//! What the guard does about a target when something is wrong. Rules, in
//! order:
//! - unarmed (no rollout, no open migration): notify only — a rollback
//!   cannot fix what a change did not cause;
//! - a breach confirmed before the target armed: notify only, for the
//!   same reason (the release going out may even be its fix);
//! - armed, data stale (no fresh result): pause, never roll back — a
//!   rollback needs evidence, missing data is not evidence;
//! - armed, breach suspected (the breach rule tripped, but on probes past
//!   their budget with no answer yet, or not yet borne out by later
//!   probes): pause at once, roll back only when answers confirm it;
//! - armed, breach confirmed, on a migration declared `on_breach: pause`:
//!   pause only — rolling code back over a schema change makes it worse;
//! - already rolled back to the template running now, whatever the trigger:
//!   notify only — the breach outlived the rollback, so the change was not
//!   its cause; one rollback per revision is the limit, and pausing the way
//!   back would only stop the recovery;
//! - otherwise pause then roll back, as far as `guard.actions` allows.
//!
//! Pure: the view of the target and the trigger in, a decision out.

use crate::config::Action;
use crate::migration::OnBreach;

/// The target as the guard sees it at the moment of the trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetView {
    pub rolling_out: bool,
    /// The open migration declared for it, if any.
    pub migration: Option<OnBreach>,
    /// Identity of the pod template running now (its hash or revision).
    pub template: String,
    /// The template Guardian last rolled back to, if it did.
    pub rolled_back_to: Option<String>,
    pub paused: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The breach rule confirmed on a guarding check.
    Breach,
    /// A breach confirmed before the target armed, still going on.
    StandingBreach,
    /// The breach rule tripped on a guarding check, not yet proven: some
    /// probes are past their budget with no answer, or later probes have not
    /// borne it out yet (`guard::CheckJudge`).
    Suspected,
    /// A guarding check has no result newer than `gate.stale_after`.
    DataStale,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// What had to be done is done (already paused): nothing new to say.
    Nothing,
    /// Raise and notify; touch nothing.
    NotifyOnly {
        why: &'static str,
    },
    Pause {
        why: &'static str,
    },
    /// Pause first (it stops the bleeding at once), then roll back.
    PauseThenRollback,
    Rollback,
}

impl TargetView {
    pub fn armed(&self) -> bool {
        self.rolling_out || self.migration.is_some()
    }
}

pub fn decide(target: &TargetView, trigger: Trigger, allowed: &[Action]) -> Decision {
    let may = |a: Action| allowed.contains(&a);
    if !target.armed() {
        return Decision::NotifyOnly { why: "not rolling out: a rollback cannot fix what a change did not cause" };
    }
    let pause = |why| {
        if !may(Action::Pause) {
            Decision::NotifyOnly { why: "pausing is not among guard.actions" }
        } else if target.paused {
            Decision::Nothing
        } else {
            Decision::Pause { why }
        }
    };
    // The old template is on its way back: pausing or rolling back that
    // would only stop the recovery.
    if target.rolled_back_to.as_deref() == Some(target.template.as_str()) {
        return Decision::NotifyOnly {
            why: "already rolled back to this template: the breach outlived the rollback, so the change was not its cause",
        };
    }
    match trigger {
        Trigger::StandingBreach => {
            Decision::NotifyOnly { why: "the breach began before this change: a rollback cannot fix it" }
        }
        Trigger::DataStale => pause("no fresh data: paused, never rolled back without evidence"),
        // The pause is all there will be: say why it will stay a pause.
        Trigger::Suspected | Trigger::Breach if target.migration == Some(OnBreach::Pause) => {
            pause("the migration declared on_breach: pause")
        }
        Trigger::Suspected => {
            pause("the breach rule tripped: paused at once; a rollback waits until later answers bear the breach out")
        }
        Trigger::Breach => match (may(Action::Pause) && !target.paused, may(Action::Rollback)) {
            (true, true) => Decision::PauseThenRollback,
            (false, true) => Decision::Rollback,
            (true, false) => Decision::Pause { why: "rolling back is not among guard.actions" },
            (false, false) => Decision::NotifyOnly { why: "neither pause nor rollback is among guard.actions" },
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Action; 3] = [Action::Pause, Action::Rollback, Action::Notify];

    fn target() -> TargetView {
        TargetView {
            rolling_out: true,
            migration: None,
            template: "t-1.8.2".into(),
            rolled_back_to: None,
            paused: false,
        }
    }

    #[test]
    fn each_rule_in_order() {
        let back = || TargetView { template: "t-1.8.1".into(), rolled_back_to: Some("t-1.8.1".into()), ..target() };
        let outlived = Decision::NotifyOnly {
            why: "already rolled back to this template: the breach outlived the rollback, so the change was not its cause",
        };
        let table: [(&str, TargetView, Trigger, &[Action], Decision); 16] = [
            ("the way back is never paused on suspicion", back(), Trigger::Suspected, &ALL, outlived.clone()),
            ("nor for missing data", back(), Trigger::DataStale, &ALL, outlived.clone()),
            (
                "already paused: nothing new",
                TargetView { paused: true, ..target() },
                Trigger::Suspected,
                &ALL,
                Decision::Nothing,
            ),
            (
                "suspected: pause now, evidence decides the rollback",
                target(),
                Trigger::Suspected,
                &ALL,
                Decision::Pause {
                    why: "the breach rule tripped: paused at once; a rollback waits until later answers bear the breach out",
                },
            ),
            (
                "a breach older than the change",
                target(),
                Trigger::StandingBreach,
                &ALL,
                Decision::NotifyOnly { why: "the breach began before this change: a rollback cannot fix it" },
            ),
            ("bad rollout", target(), Trigger::Breach, &ALL, Decision::PauseThenRollback),
            (
                "breach without a rollout",
                TargetView { rolling_out: false, ..target() },
                Trigger::Breach,
                &ALL,
                Decision::NotifyOnly { why: "not rolling out: a rollback cannot fix what a change did not cause" },
            ),
            (
                "open migration arms it",
                TargetView { rolling_out: false, migration: Some(OnBreach::Rollback), ..target() },
                Trigger::Breach,
                &ALL,
                Decision::PauseThenRollback,
            ),
            (
                "stale data pauses, never rolls back",
                target(),
                Trigger::DataStale,
                &ALL,
                Decision::Pause { why: "no fresh data: paused, never rolled back without evidence" },
            ),
            (
                "stale data while unarmed",
                TargetView { rolling_out: false, ..target() },
                Trigger::DataStale,
                &ALL,
                Decision::NotifyOnly { why: "not rolling out: a rollback cannot fix what a change did not cause" },
            ),
            (
                "migration declared pause",
                TargetView { migration: Some(OnBreach::Pause), ..target() },
                Trigger::Breach,
                &ALL,
                Decision::Pause { why: "the migration declared on_breach: pause" },
            ),
            (
                "migration declared pause, from the trip on",
                TargetView { migration: Some(OnBreach::Pause), ..target() },
                Trigger::Suspected,
                &ALL,
                Decision::Pause { why: "the migration declared on_breach: pause" },
            ),
            (
                "never twice on one template",
                TargetView { template: "t-1.8.1".into(), rolled_back_to: Some("t-1.8.1".into()), ..target() },
                Trigger::Breach,
                &ALL,
                Decision::NotifyOnly {
                    why: "already rolled back to this template: the breach outlived the rollback, so the change was not its cause",
                },
            ),
            (
                "a new template after a rollback may be rolled back again",
                TargetView { template: "t-1.8.3".into(), rolled_back_to: Some("t-1.8.1".into()), ..target() },
                Trigger::Breach,
                &ALL,
                Decision::PauseThenRollback,
            ),
            (
                "already paused: roll back",
                TargetView { paused: true, ..target() },
                Trigger::Breach,
                &ALL,
                Decision::Rollback,
            ),
            (
                "rollback not allowed",
                target(),
                Trigger::Breach,
                &[Action::Pause, Action::Notify],
                Decision::Pause { why: "rolling back is not among guard.actions" },
            ),
        ];
        for (name, t, trigger, allowed, want) in table {
            assert_eq!(decide(&t, trigger, allowed), want, "{name}");
        }
    }
}
