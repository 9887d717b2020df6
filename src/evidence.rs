//! Owns turning probe events into guard triggers. Each check has a
//! `guard::CheckJudge` (breach on evidence only); when a check is breached
//! and a target it guards is armed, the actuator hears of it at once, on the
//! probe's own task. A loop looks for guarding checks without evidence for
//! `gate.stale_after` while armed (missing data: pause, never roll back).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::actuator::{Actuator, Cause};
use crate::clock::Clock;
use crate::config::Config;
use crate::guard::{CheckJudge, Trigger, Verdict};
use crate::probe::{Outcome, ProbeEvent, ProbeObserver, ProbeResult};
use crate::targets::Targets;
use crate::units::format_duration;

/// How often missing data is looked for.
const STALE_EVERY: Duration = Duration::from_millis(500);

/// Each check's judge, shared by the observer (which feeds them) and the
/// actuator (which asks, before every retry, whether the cause still holds).
pub struct Judges {
    judges: Mutex<HashMap<String, CheckJudge>>,
    stale_after: Duration,
}

impl Judges {
    pub fn new(config: &Config) -> Self {
        let g = &config.guard;
        let judges = config.checks.iter().map(|c| (c.name.clone(), CheckJudge::new(g.breach_window, g.breach_max_bad)));
        Self { judges: Mutex::new(judges.collect()), stale_after: config.gate.stale_after }
    }

    /// Records a probe; the breach going on now and when it was confirmed.
    fn observe(&self, check: &str, verdict: Verdict, at: jiff::Timestamp) -> Option<jiff::Timestamp> {
        let mut judges = lock(&self.judges);
        let judge = judges.get_mut(check)?;
        judge.observe(verdict, at);
        judge.breached_since()
    }

    pub fn breached(&self, check: &str) -> bool {
        lock(&self.judges).get(check).is_some_and(CheckJudge::breached)
    }

    /// No evidence for `gate.stale_after`, counting from `since` at the earliest.
    pub fn is_stale(&self, check: &str, now: jiff::Timestamp, since: jiff::Timestamp) -> bool {
        lock(&self.judges).get(check).is_some_and(|j| j.is_stale(now, since, self.stale_after))
    }

    /// Whether the trigger of `check` still holds (`since`: when its target armed).
    pub fn still(&self, trigger: Trigger, check: &str, now: jiff::Timestamp, since: jiff::Timestamp) -> bool {
        match trigger {
            Trigger::Breach | Trigger::StandingBreach => self.breached(check),
            Trigger::DataStale => self.is_stale(check, now, since),
        }
    }
}

pub struct Evidence {
    judges: Arc<Judges>,
    budgets: HashMap<String, Duration>,
    targets: Arc<Targets>,
    actuator: Arc<Actuator>,
    clock: Arc<dyn Clock>,
    stale_after: Duration,
}

impl Evidence {
    pub fn new(
        config: &Config,
        judges: Arc<Judges>,
        targets: Arc<Targets>,
        actuator: Arc<Actuator>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            judges,
            budgets: config.checks.iter().map(|c| (c.name.clone(), c.budget)).collect(),
            targets,
            actuator,
            clock,
            stale_after: config.gate.stale_after,
        }
    }

    fn observe(&self, check: &str, verdict: Verdict, at: jiff::Timestamp, reason: String) {
        let Some(breached_since) = self.judges.observe(check, verdict, at) else { return };
        if verdict != Verdict::Bad {
            return;
        }
        for (target, armed_since, _) in self.targets.armed_for(check) {
            // Confirmed before the target armed: its change did not cause it.
            let trigger = if breached_since < armed_since { Trigger::StandingBreach } else { Trigger::Breach };
            let cause = Cause { trigger, check: check.to_string(), reason: reason.clone(), since: Instant::now() };
            self.actuator.trigger(&target, cause);
        }
    }

    /// Raises missing data on armed targets until `stop`.
    pub async fn stale_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(STALE_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => self.look_for_missing_data(),
            }
        }
    }

    pub fn look_for_missing_data(&self) {
        let now = self.clock.now();
        for (target, checks, since) in self.targets.armed() {
            let stale = checks.iter().find(|c| self.judges.is_stale(c, now, since)).cloned();
            if let Some(check) = stale {
                let reason = format!("{check} has had no answer for {}", format_duration(self.stale_after));
                let cause = Cause { trigger: Trigger::DataStale, check, reason, since: Instant::now() };
                self.actuator.trigger(&target, cause);
            }
        }
    }

    fn budget(&self, check: &str) -> String {
        self.budgets.get(check).map_or_else(|| "?".into(), |b| format_duration(*b))
    }
}

/// What a finished probe proves. No answer at all (refused, unresolvable,
/// no route) is not evidence; a probe that outlived its budget is (it was
/// counted bad at that moment already, so its end adds nothing).
fn verdict(r: &ProbeResult) -> Option<Verdict> {
    if r.over_budget_early {
        return None;
    }
    Some(match r.outcome {
        Outcome::Ok => Verdict::Good,
        Outcome::Failed if r.status.is_none() => Verdict::Unreachable,
        Outcome::Slow | Outcome::Failed => Verdict::Bad,
    })
}

impl ProbeObserver for Evidence {
    fn on_event(&self, event: ProbeEvent<'_>) {
        match event {
            ProbeEvent::OverBudget { check, started_at } => {
                let reason = format!("{check} did not answer within its {} budget", self.budget(check));
                self.observe(check, Verdict::Bad, started_at, reason);
            }
            ProbeEvent::Finished(r) => {
                if let Some(v) = verdict(r) {
                    self.observe(&r.check, v, r.started_at, format!("{}: {}", r.check, r.reason));
                }
            }
            ProbeEvent::Skipped { .. } => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
