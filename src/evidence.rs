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

pub struct Evidence {
    judges: Mutex<HashMap<String, CheckJudge>>,
    budgets: HashMap<String, Duration>,
    targets: Arc<Targets>,
    actuator: Arc<Actuator>,
    clock: Arc<dyn Clock>,
    stale_after: Duration,
}

impl Evidence {
    pub fn new(config: &Config, targets: Arc<Targets>, actuator: Arc<Actuator>, clock: Arc<dyn Clock>) -> Self {
        let g = &config.guard;
        let judges = config.checks.iter().map(|c| (c.name.clone(), CheckJudge::new(g.breach_window, g.breach_max_bad)));
        Self {
            judges: Mutex::new(judges.collect()),
            budgets: config.checks.iter().map(|c| (c.name.clone(), c.budget)).collect(),
            targets,
            actuator,
            clock,
            stale_after: config.gate.stale_after,
        }
    }

    fn observe(&self, check: &str, verdict: Verdict, at: jiff::Timestamp, reason: String) {
        let breached = {
            let mut judges = lock(&self.judges);
            let Some(judge) = judges.get_mut(check) else { return };
            judge.observe(verdict, at)
        };
        if !breached || verdict != Verdict::Bad {
            return;
        }
        for (target, _, _) in self.targets.armed_for(check) {
            let cause = Cause {
                trigger: Trigger::Breach,
                check: check.to_string(),
                reason: reason.clone(),
                since: Instant::now(),
            };
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
            let stale = {
                let judges = lock(&self.judges);
                checks
                    .iter()
                    .find(|c| judges.get(*c).is_some_and(|j| j.is_stale(now, since, self.stale_after)))
                    .cloned()
            };
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
