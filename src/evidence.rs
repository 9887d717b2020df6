//! Owns turning probe events into guard triggers. Each check has a
//! `guard::CheckJudge` (breach on evidence only); when a check is breached
//! and a target it guards is armed, the actuator hears of it at once, on the
//! probe's own task. A loop looks for guarding checks without evidence for
//! `gate.stale_after` while armed (missing data: pause, never roll back).
//!
//! Time: the judges compare probe starts with arming times and with now, so
//! they work on a timeline of their own (`Timeline`): the wall clock's
//! reading when the guard started plus monotonic time since. A wall clock
//! stepped back would otherwise make every probe look older than the
//! arming it followed (no rollback until the clock caught up), and one
//! stepped forward would make fresh evidence look stale (a pause for
//! missing data that is not missing).

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
    /// Set by `Evidence::new`; until then wall times are taken as they are.
    timeline: Mutex<Option<Timeline>>,
}

/// Where the judges place probe starts, arming times and now: the wall
/// clock at start plus monotonic time since, so a jump of the wall clock
/// moves nothing already placed.
struct Timeline {
    clock: Arc<dyn Clock>,
    wall0: jiff::Timestamp,
    mono0: Instant,
    /// A suspect probe's wall start (with its check) → where it was placed,
    /// so its end resolves the same entry.
    suspects: HashMap<(String, jiff::Timestamp), jiff::Timestamp>,
    /// An arming time as `Targets` gives it (wall) → where it was placed when first seen.
    armed: HashMap<jiff::Timestamp, jiff::Timestamp>,
}

impl Judges {
    pub fn new(config: &Config) -> Self {
        let g = &config.guard;
        let judges = config.checks.iter().map(|c| (c.name.clone(), CheckJudge::new(g.breach_window, g.breach_max_bad)));
        Self { judges: Mutex::new(judges.collect()), stale_after: config.gate.stale_after, timeline: Mutex::new(None) }
    }

    /// Places what the judges see on a timeline that wall-clock jumps do not move.
    fn keep_time(&self, clock: Arc<dyn Clock>) {
        let wall0 = clock.now();
        let timeline =
            Timeline { clock, wall0, mono0: Instant::now(), suspects: HashMap::new(), armed: HashMap::new() };
        *lock(&self.timeline) = Some(timeline);
    }

    /// Records a probe started at `at` (wall) and `elapsed` ago (monotonic),
    /// or resolves a suspect one.
    fn observe(&self, check: &str, event: Seen, at: jiff::Timestamp, elapsed: Duration) {
        let placed = match lock(&self.timeline).as_mut() {
            None => at,
            Some(t) => t.place_probe(check, event, at, elapsed),
        };
        if let Some(judge) = lock(&self.judges).get_mut(check) {
            match event {
                Seen::Probe(v) => judge.observe(v, placed),
                Seen::Ended { answered } => judge.resolve(placed, answered),
            };
        }
    }

    /// `now`, or the timeline's now.
    fn now(&self, now: jiff::Timestamp) -> jiff::Timestamp {
        lock(&self.timeline).as_ref().map_or(now, Timeline::now)
    }

    /// An arming time (wall), or where it sits on the timeline.
    fn armed_at(&self, since: jiff::Timestamp) -> jiff::Timestamp {
        lock(&self.timeline).as_mut().map_or(since, |t| t.armed(since))
    }

    /// Forgets arming times no target has any more.
    fn forget_armings_but(&self, current: &[jiff::Timestamp]) {
        if let Some(t) = lock(&self.timeline).as_mut() {
            t.armed.retain(|wall, _| current.contains(wall));
        }
    }

    /// What `check` calls for on a target armed at `armed_since`, if anything.
    /// A breach begun before the target armed is not its change's doing;
    /// otherwise only probes since arming count against the change.
    pub fn trigger(&self, check: &str, armed_since: jiff::Timestamp) -> Option<Trigger> {
        let armed_since = self.armed_at(armed_since);
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
        let since = self.armed_at(since);
        lock(&self.judges).get(check).map_or(Standing::Fine, |j| j.standing_since(since))
    }

    pub fn standing(&self, check: &str) -> Standing {
        lock(&self.judges).get(check).map_or(Standing::Fine, CheckJudge::standing)
    }

    /// No evidence for `gate.stale_after`, counting from `since` at the earliest.
    pub fn is_stale(&self, check: &str, now: jiff::Timestamp, since: jiff::Timestamp) -> bool {
        let (now, since) = (self.now(now), self.armed_at(since));
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
        let evidence = Self {
            judges,
            budgets: config.checks.iter().map(|c| (c.name.clone(), c.budget)).collect(),
            targets,
            actuator,
            clock: clock.clone(),
            stale_after: config.gate.stale_after,
        };
        evidence.judges.keep_time(clock);
        evidence
    }

    fn observe(&self, check: &str, event: Seen, at: jiff::Timestamp, elapsed: Duration, reason: String) {
        self.judges.observe(check, event, at, elapsed);
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
        let armed = self.targets.armed();
        self.judges.forget_armings_but(&armed.iter().map(|(_, _, since)| *since).collect::<Vec<_>>());
        for (target, checks, since) in armed {
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
                let budget = self.budgets.get(check).copied().unwrap_or_default();
                let reason = format!("{check} did not answer within its {} budget", self.budget(check));
                self.observe(check, Seen::Probe(Verdict::Suspect), started_at, budget, reason);
            }
            ProbeEvent::Finished(r) => {
                self.observe(&r.check, seen(r), r.started_at, r.latency, format!("{}: {}", r.check, r.reason))
            }
            ProbeEvent::Skipped { .. } => {}
        }
    }
}

impl Timeline {
    /// Suspects unresolved for this long are forgotten: longer than any probe's timeout (10 min at most).
    const SUSPECT_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(1);

    fn now(&self) -> jiff::Timestamp {
        let since = jiff::SignedDuration::try_from(self.mono0.elapsed()).unwrap_or(jiff::SignedDuration::MAX);
        self.wall0.saturating_add(since).unwrap_or(self.wall0)
    }

    /// A probe's start: `elapsed` before now, whatever the wall clock did
    /// meanwhile; a suspect's end finds the place its start was given.
    fn place_probe(&mut self, check: &str, event: Seen, at: jiff::Timestamp, elapsed: Duration) -> jiff::Timestamp {
        let now = self.now();
        let ago = jiff::SignedDuration::try_from(elapsed).unwrap_or(jiff::SignedDuration::ZERO);
        let placed = now.checked_sub(ago).unwrap_or(now);
        let key = (check.to_string(), at);
        match event {
            Seen::Probe(Verdict::Suspect) => {
                let horizon = now.checked_sub(Self::SUSPECT_FOR).unwrap_or(now);
                self.suspects.retain(|_, t| *t > horizon);
                *self.suspects.entry(key).or_insert(placed)
            }
            Seen::Ended { .. } => self.suspects.remove(&key).unwrap_or(placed),
            Seen::Probe(_) => placed,
        }
    }

    /// An arming time, placed the first time it is seen: as long before now
    /// as the wall clock says (a target arms, and the guard looks within a
    /// tick), never after now.
    fn armed(&mut self, since: jiff::Timestamp) -> jiff::Timestamp {
        if let Some(placed) = self.armed.get(&since) {
            return *placed;
        }
        let ago = self.clock.now().duration_since(since).max(jiff::SignedDuration::ZERO);
        let now = self.now();
        let placed = now.checked_sub(ago).unwrap_or(now);
        self.armed.insert(since, placed);
        placed
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
