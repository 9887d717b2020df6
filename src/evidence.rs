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
use crate::guard::{CheckJudge, Standing, Trigger, Verdict};
use crate::probe::{Outcome, ProbeEvent, ProbeObserver, ProbeResult};
use crate::targets::Targets;
use crate::units::format_duration;

/// How often missing data is looked for.
const STALE_EVERY: Duration = Duration::from_millis(500);
/// Every this many ticks (5 s), breaches that go on are raised again.
const RAISE_AGAIN_EVERY: u32 = 10;

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

    /// Records a probe (or resolves a suspect one); since when the check has
    /// been breached, if it is.
    fn observe(&self, check: &str, event: Seen, at: jiff::Timestamp) {
        if let Some(judge) = lock(&self.judges).get_mut(check) {
            match event {
                Seen::Probe(v) => judge.observe(v, at),
                Seen::Ended { answered } => judge.resolve(at, answered),
            };
        }
    }

    /// What `check` calls for on a target armed at `armed_since`, if anything.
    /// A breach begun before the target armed is not its change's doing;
    /// otherwise only probes since arming count against the change.
    pub fn trigger(&self, check: &str, armed_since: jiff::Timestamp) -> Option<Trigger> {
        let judges = lock(&self.judges);
        let judge = judges.get(check)?;
        let breached_since = judge.breached_since()?;
        match judge.standing_since(armed_since) {
            _ if breached_since < armed_since => Some(Trigger::StandingBreach),
            Standing::Confirmed => Some(Trigger::Breach),
            Standing::Suspected => Some(Trigger::Suspected),
            Standing::Fine => None,
        }
    }

    /// Where `check` stands on probes started since `since` only.
    pub fn standing_since(&self, check: &str, since: jiff::Timestamp) -> Standing {
        lock(&self.judges).get(check).map_or(Standing::Fine, |j| j.standing_since(since))
    }

    pub fn standing(&self, check: &str) -> Standing {
        lock(&self.judges).get(check).map_or(Standing::Fine, CheckJudge::standing)
    }

    /// No evidence for `gate.stale_after`, counting from `since` at the earliest.
    pub fn is_stale(&self, check: &str, now: jiff::Timestamp, since: jiff::Timestamp) -> bool {
        lock(&self.judges).get(check).is_some_and(|j| j.is_stale(now, since, self.stale_after))
    }

    /// Whether the trigger of `check` still holds (`since`: when its target armed).
    pub fn still(&self, trigger: Trigger, check: &str, now: jiff::Timestamp, since: jiff::Timestamp) -> bool {
        match trigger {
            Trigger::Breach => self.standing_since(check, since) == Standing::Confirmed,
            Trigger::Suspected => self.standing_since(check, since) != Standing::Fine,
            Trigger::StandingBreach => self.standing(check) != Standing::Fine,
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

    fn observe(&self, check: &str, event: Seen, at: jiff::Timestamp, reason: String) {
        self.judges.observe(check, event, at);
        // Good news and no news never call for action.
        if matches!(event, Seen::Probe(Verdict::Good | Verdict::Unreachable)) {
            return;
        }
        for (target, armed_since, _) in self.targets.armed_for(check) {
            let Some(trigger) = self.judges.trigger(check, armed_since) else { continue };
            let cause = Cause { trigger, check: check.to_string(), reason: reason.clone(), since: Instant::now() };
            self.actuator.trigger(&target, cause);
        }
    }

    /// Raises missing data on armed targets until `stop`.
    /// Also raises, every few seconds, breaches that go on without a new
    /// bad probe: a trigger a follower dropped is taken up once it leads.
    pub async fn stale_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(STALE_EVERY);
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => self.look_for_missing_data(),
            }
            ticks = ticks.wrapping_add(1);
            if ticks.is_multiple_of(RAISE_AGAIN_EVERY) {
                self.raise_standing_breaches();
            }
        }
    }

    /// Triggers every armed target whose guarding checks are breached now.
    pub fn raise_standing_breaches(&self) {
        for (target, checks, armed_since) in self.targets.armed() {
            for check in checks {
                let Some(trigger) = self.judges.trigger(&check, armed_since) else { continue };
                let reason = format!("{check} is still breached");
                self.actuator.trigger(&target, Cause { trigger, check, reason, since: Instant::now() });
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

/// What the judges are told.
#[derive(Debug, Clone, Copy)]
enum Seen {
    Probe(Verdict),
    /// A probe already counted as a suspect ended, with an answer or without.
    Ended {
        answered: bool,
    },
}

/// What a finished probe shows. No answer at all (refused, unresolvable, a
/// timeout with nothing back) is not evidence; a probe that outlived its
/// budget was a suspect since then, and its end says whether it answered.
fn seen(r: &ProbeResult) -> Seen {
    if r.over_budget_early {
        return Seen::Ended { answered: r.status.is_some() };
    }
    Seen::Probe(match r.outcome {
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
                self.observe(check, Seen::Probe(Verdict::Suspect), started_at, reason);
            }
            ProbeEvent::Finished(r) => {
                self.observe(&r.check, seen(r), r.started_at, format!("{}: {}", r.check, r.reason))
            }
            ProbeEvent::Skipped { .. } => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
