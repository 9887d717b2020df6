//! Owns acting on guarded targets: a trigger (a breach with evidence, or
//! data missing while armed) becomes a decision (`guard::decide`) on the
//! target as the cluster shows it now, then a pause and a rollback — once.
//!
//! Why it is safe:
//! - only the leader acts (`Leadership`); followers leave triggers alone;
//! - one worker per target, so two actions on one target never overlap;
//! - every attempt re-reads the target and decides again: a conflict (409)
//!   is never re-sent blindly, and a retry after a pause sees the pause;
//! - the rollback's intent is written to storage before the patch (waiting
//!   a moment at most, so a storage outage never delays it) and its result
//!   after; the target itself carries `rolled-back-to`, so after a restart,
//!   or on another replica, the same revision is never rolled back twice;
//! - Kubernetes errors are retried with exponential back-off and jitter
//!   until `GIVE_UP`, then recorded as failed.
//!
//! Why it is fast: a trigger is handed over without waiting; the pause goes
//! first, the rollback right after it; notices and storage writes are queued.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::audit::ActionRecord;
use crate::clock::Clock;
use crate::cluster::{Cluster, Error as ClusterError, RolloutState, TargetRef};
use crate::config::Config;
use crate::evidence::Judges;
use crate::guard::{Decision, TargetView, Trigger, decide};
use crate::history::History;
use crate::leader::Leadership;
use crate::metrics::Metrics;
use crate::notify::{Did, Notice, Notifier};
use crate::store::{Store, StoreWriter};
use crate::targets::Targets;

/// How long an action is retried before it is recorded as failed.
const GIVE_UP: Duration = Duration::from_secs(60);
/// First back-off after a failed call; doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The longest a rollback waits for its intent to reach storage.
const INTENT_WAIT: Duration = Duration::from_millis(250);
/// The longest one call to the cluster may take before it counts as failed
/// (and the target is read again: the call may have been applied).
const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// Audit rows read back to find actions a restart interrupted.
const RECONCILE_ROWS: u32 = 2_000;

/// Why the guard wants to act on a target.
#[derive(Debug, Clone)]
pub struct Cause {
    pub trigger: Trigger,
    pub check: String,
    /// In words: what the probes showed.
    pub reason: String,
    /// When the breach was confirmed (or data was found missing).
    pub since: Instant,
}

pub struct Actuator {
    config: Arc<Config>,
    cluster: Arc<dyn Cluster>,
    targets: Arc<Targets>,
    leadership: Arc<dyn Leadership>,
    history: Arc<History>,
    notifier: Arc<dyn Notifier>,
    metrics: Arc<Metrics>,
    writer: StoreWriter,
    clock: Arc<dyn Clock>,
    judges: Arc<Judges>,
    slots: BTreeMap<TargetRef, Slot>,
    /// (target, template rolled back from) done by this process.
    rolled_back: Mutex<HashSet<(TargetRef, String)>>,
    /// Decisions already told about, per target and template, so a breach
    /// that goes on is told once, not at every probe.
    told: Mutex<HashSet<(TargetRef, String)>>,
}

#[derive(Default)]
struct Slot {
    pending: Mutex<Option<Cause>>,
    wake: Notify,
}

/// Everything the actuator works with.
pub struct Parts {
    pub config: Arc<Config>,
    pub cluster: Arc<dyn Cluster>,
    pub targets: Arc<Targets>,
    pub leadership: Arc<dyn Leadership>,
    pub history: Arc<History>,
    pub notifier: Arc<dyn Notifier>,
    pub metrics: Arc<Metrics>,
    pub writer: StoreWriter,
    pub clock: Arc<dyn Clock>,
    pub judges: Arc<Judges>,
}

impl Actuator {
    pub fn new(p: Parts) -> Self {
        let slots = p.targets.refs().into_iter().map(|t| (t, Slot::default())).collect();
        Self {
            config: p.config,
            cluster: p.cluster,
            targets: p.targets,
            leadership: p.leadership,
            history: p.history,
            notifier: p.notifier,
            metrics: p.metrics,
            writer: p.writer,
            clock: p.clock,
            judges: p.judges,
            slots,
            rolled_back: Mutex::default(),
            told: Mutex::default(),
        }
    }

    /// Hands a cause over to the target's worker; never waits. A breach
    /// replaces pending missing data (it is the stronger evidence), not the reverse.
    pub fn trigger(&self, target: &TargetRef, cause: Cause) {
        let Some(slot) = self.slots.get(target) else { return };
        {
            let mut pending = lock(&slot.pending);
            let keep = pending.as_ref().is_some_and(|p| rank(p.trigger) > rank(cause.trigger));
            if !keep {
                *pending = Some(cause);
            }
        }
        slot.wake.notify_one();
    }

    /// One worker per target until `stop`.
    pub fn start(self: &Arc<Self>, stop: &CancellationToken, tracker: &TaskTracker) {
        for target in self.slots.keys() {
            let (me, target, stop) = (self.clone(), target.clone(), stop.clone());
            tracker.spawn(async move { me.work(target, stop).await });
        }
    }

    async fn work(self: Arc<Self>, target: TargetRef, stop: CancellationToken) {
        let Some(slot) = self.slots.get(&target) else { return };
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = slot.wake.notified() => {}
            }
            let Some(cause) = lock(&slot.pending).take() else { continue };
            if !self.leadership.is_leader() {
                tracing::debug!(target = %target, "not the leader: the leader acts");
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = self.act(&target, &cause) => {}
            }
        }
    }

    /// Reads, decides and acts until the decision is carried out, nothing is
    /// left to do, or `GIVE_UP` passes.
    async fn act(&self, target: &TargetRef, cause: &Cause) {
        let deadline = Instant::now() + GIVE_UP;
        let mut failures = 0u32;
        let mut last_error = String::new();
        let mut attempt = 0u32;
        // The action under way, for the record if it never goes through.
        let mut acting = "pause";
        while Instant::now() < deadline {
            if !self.leadership.is_leader() {
                tracing::warn!(target = %target, "lost the leadership while acting; the new leader decides");
                return;
            }
            attempt += 1;
            if attempt > 1 && !self.still_holds(target, cause) {
                tracing::info!(target = %target, check = %cause.check, "the cause cleared before the action went through; not acting");
                return;
            }
            let state = match timed(target, self.cluster.rollout(target)).await {
                Ok(s) => s,
                Err(e) if e.is_transient() => {
                    last_error = e.to_string();
                    failures += 1;
                    tokio::time::sleep(backoff(failures)).await;
                    continue;
                }
                Err(e) => return self.give_up(target, cause, acting, &e.to_string()),
            };
            let view = self.view(target, &state);
            let decision = decide(&view, cause.trigger, &self.config.guard.actions);
            let step = match decision {
                Decision::Nothing => return,
                Decision::NotifyOnly { why } => return self.tell_once(target, &state, cause, why),
                Decision::Pause { why } => Step::Pause { then_rollback: false, why },
                Decision::PauseThenRollback => Step::Pause { then_rollback: true, why: "" },
                Decision::Rollback => Step::Rollback,
            };
            if self.config.guard.dry_run {
                return self.dry_run(target, &state, cause, &decision);
            }
            let done = match step {
                Step::Pause { then_rollback, why } => match self.pause(target, &state, cause, why).await {
                    Ok(()) if then_rollback => {
                        acting = "rollback";
                        self.roll_back(target, &state, cause, true).await
                    }
                    Ok(()) => return,
                    Err(e) => {
                        acting = "pause";
                        Err(e)
                    }
                },
                Step::Rollback => {
                    acting = "rollback";
                    self.roll_back(target, &state, cause, false).await
                }
            };
            match done {
                Ok(()) => return,
                Err(ClusterError::Conflict(_)) => {
                    // Changed under us: read it again and decide again, at once.
                    tracing::info!(target = %target, "conflict: re-reading and deciding again");
                    last_error = "conflict".into();
                    tokio::time::sleep(jitter(Duration::from_millis(20))).await;
                }
                Err(e) if e.is_transient() => {
                    last_error = e.to_string();
                    failures += 1;
                    tracing::warn!(target = %target, error = %e, attempt = failures, "action failed; retrying");
                    tokio::time::sleep(backoff(failures)).await;
                }
                Err(e) => return self.give_up(target, cause, acting, &e.to_string()),
            }
        }
        self.give_up(
            target,
            cause,
            acting,
            &format!("gave up after {}: {last_error}", humantime::format_duration(GIVE_UP)),
        );
    }

    /// Whether a retry may still act: the breach (or missing data) goes on
    /// and the target is still armed.
    fn still_holds(&self, target: &TargetRef, cause: &Cause) -> bool {
        let armed = self.targets.armed().into_iter().find(|(t, _, _)| t == target);
        armed.is_some_and(|(_, _, since)| self.judges.still(cause.trigger, &cause.check, self.clock.now(), since))
    }

    /// Right before a patch: this replica must still lead as the authority
    /// says (the Redis lock checks its fencing token in Redis), so a leader
    /// that stalled past its lock's expiry cannot act on a stale token.
    async fn fence(&self, target: &TargetRef) -> Result<(), ClusterError> {
        // Read first: a refused confirmation ends the leadership and its token.
        let token = self.leadership.fencing_token();
        if self.leadership.confirm().await {
            return Ok(());
        }
        let detail = match token {
            Some(token) => format!(
                "not confirmed as the leader with fencing token {token} (another replica holds the lock, or Redis did not answer)"
            ),
            None => "no longer the leader".into(),
        };
        Err(ClusterError::NotLeader { target: target.clone(), detail })
    }

    fn view(&self, target: &TargetRef, state: &RolloutState) -> TargetView {
        let migration = self.targets.on_breach(target);
        // A template this process already rolled back from counts as done,
        // even if the cluster does not show the annotation (yet).
        let done_here = lock(&self.rolled_back).contains(&(target.clone(), state.template.clone()));
        let rolled_back_to = if done_here { Some(state.template.clone()) } else { state.rolled_back_to.clone() };
        TargetView {
            rolling_out: state.rolling_out,
            migration,
            template: state.template.clone(),
            rolled_back_to,
            paused: state.paused,
        }
    }

    async fn pause(
        &self,
        target: &TargetRef,
        state: &RolloutState,
        cause: &Cause,
        why: &str,
    ) -> Result<(), ClusterError> {
        let span = action_span(target, "pause", &cause.check);
        let why = if why.is_empty() { cause.reason.clone() } else { format!("{}; {why}", cause.reason) };
        let now = self.clock.now();
        let id = format!("pause:{target}:{}:{}", state.template, now.as_millisecond());
        self.record(&id, "intent", target, "pause", cause, &why);
        // A refused fence is recorded like a failed call: the intent never stands alone.
        let sent = async {
            match self.fence(target).await {
                Ok(()) => timed(target, self.cluster.pause(target, &why, now)).await,
                Err(e) => Err(e),
            }
        }
        .instrument(span.clone())
        .await;
        let took = cause.since.elapsed().as_secs_f64();
        end_action_span(&span, sent.as_ref().err(), took);
        match &sent {
            Ok(()) => {
                self.metrics.guard.action(target, "pause", "ok");
                self.metrics.guard.breach_to_action("pause", took);
                tracing::warn!(target = %target, check = %cause.check, seconds = took, "paused: {why}");
                self.record(
                    &id,
                    "ok",
                    target,
                    "pause",
                    cause,
                    &format!("paused {:.3} s after confirmation: {why}", took),
                );
                self.tell(target, cause, Did::Paused { revision: state.revision }, format!("{target} paused: {why}"));
            }
            // Retried: only the final failure counts (in `give_up`).
            Err(e) if e.is_transient() => self.record(&id, "retry", target, "pause", cause, &e.to_string()),
            Err(e) => {
                self.metrics.guard.action(target, "pause", "failed");
                self.record(&id, "failed", target, "pause", cause, &e.to_string());
            }
        }
        sent
    }

    async fn roll_back(
        &self,
        target: &TargetRef,
        state: &RolloutState,
        cause: &Cause,
        after_pause: bool,
    ) -> Result<(), ClusterError> {
        let span = action_span(target, "rollback", &cause.check);
        let id = format!("rollback:{target}:{}", state.template);
        let intent = self.action_record(&id, "intent", target, "rollback", cause, &cause.reason);
        // Written before the patch, but a storage outage must not hold a rollback back.
        let store = self.writer.store().clone();
        match tokio::time::timeout(INTENT_WAIT, store.log_action(&intent)).await {
            Ok(Ok(())) => {}
            _ => self.writer.enqueue(intent),
        }
        let sent = async {
            match self.fence(target).await {
                Ok(()) => timed(target, self.cluster.roll_back(target, &state.template)).await,
                Err(e) => Err(e),
            }
        }
        .instrument(span.clone())
        .await;
        let took = cause.since.elapsed().as_secs_f64();
        end_action_span(&span, sent.as_ref().err(), took);
        match &sent {
            Ok(done) => {
                lock(&self.rolled_back).insert((target.clone(), state.template.clone()));
                self.metrics.guard.action(target, "rollback", "ok");
                self.metrics.guard.breach_to_action("rollback", took);
                let what = format!("rolled back from revision {} to {}", done.from_revision, done.to_revision);
                tracing::warn!(target = %target, check = %cause.check, seconds = took, "{what}: {}", cause.reason);
                self.record(
                    &id,
                    "ok",
                    target,
                    "rollback",
                    cause,
                    &format!("{what}, {took:.3} s after confirmation: {}", cause.reason),
                );
                let did = Did::RolledBack { from: done.from_revision, to: done.to_revision, after_pause };
                self.tell(target, cause, did, format!("{target} {what}: {}", cause.reason));
            }
            Err(e) if e.is_transient() => self.record(&id, "retry", target, "rollback", cause, &e.to_string()),
            Err(e) => {
                self.metrics.guard.action(target, "rollback", "failed");
                self.record(&id, "failed", target, "rollback", cause, &e.to_string());
            }
        }
        sent.map(|_| ())
    }

    fn dry_run(&self, target: &TargetRef, state: &RolloutState, cause: &Cause, decision: &Decision) {
        let key = format!("dry_run {decision:?} on {}", state.template);
        if !self.first_time(target, &key) {
            return;
        }
        let actions: &[&str] = match decision {
            Decision::PauseThenRollback => &["pause", "rollback"],
            Decision::Pause { .. } => &["pause"],
            Decision::Rollback => &["rollback"],
            Decision::NotifyOnly { .. } | Decision::Nothing => &[],
        };
        for action in actions {
            let id = format!("{action}:{target}:{}:dry_run", state.template);
            self.metrics.guard.action(target, action, "dry_run");
            self.record(&id, "dry_run", target, action, cause, &format!("dry run, not sent: {}", cause.reason));
        }
        tracing::warn!(target = %target, ?decision, "dry run: decided, not sent: {}", cause.reason);
        let why = format!("dry run: decided to {}, not sent", actions.join(" and "));
        self.tell(
            target,
            cause,
            Did::LeftAlone { why },
            format!("dry run: would {} {target}: {}", actions.join(" and "), cause.reason),
        );
    }

    fn tell_once(&self, target: &TargetRef, state: &RolloutState, cause: &Cause, why: &str) {
        // Probes started before the rollback landed still fail while it rolls
        // out: the breach has not outlived it yet. The breach is raised again
        // while it lasts, so this is told then, if it does.
        let back = self.view(target, state).rolled_back_to.as_deref() == Some(state.template.as_str());
        if back && state.rolling_out {
            if self.first_time(target, &format!("{why} on {}, while rolling back", state.template)) {
                tracing::info!(target = %target, check = %cause.check, "not acting: {why}; the rollback is still rolling out, so people hear of it only if the breach outlives it");
            }
            return;
        }
        if self.first_time(target, &format!("{why} on {}", state.template)) {
            tracing::warn!(target = %target, check = %cause.check, "not acting: {why}");
            let did = Did::LeftAlone { why: why.to_string() };
            self.tell(target, cause, did, format!("{target} left as it is ({why}): {}", cause.reason));
        }
    }

    fn first_time(&self, target: &TargetRef, key: &str) -> bool {
        lock(&self.told).insert((target.clone(), key.to_string()))
    }

    fn give_up(&self, target: &TargetRef, cause: &Cause, action: &str, error: &str) {
        tracing::error!(target = %target, action, error, "could not act on a breach");
        self.metrics.guard.action(target, action, "failed");
        let id = format!("{action}:{target}:gave-up:{}", self.clock.now().as_millisecond());
        self.record(&id, "failed", target, action, cause, &format!("could not {action}: {error}"));
        let did = Did::Failed { why: format!("could not {action}: {error}") };
        self.tell(target, cause, did, format!("Guardian could not act on {target}: {error}; {}", cause.reason));
    }

    fn tell(&self, target: &TargetRef, cause: &Cause, did: Did, summary: String) {
        if !self.config.guard.actions.contains(&crate::config::Action::Notify) {
            return;
        }
        self.notifier.notify(Notice {
            at: self.clock.now(),
            target: target.to_string(),
            check: cause.check.clone(),
            incident: self.incident_of(&cause.check),
            reason: cause.reason.clone(),
            did,
            summary,
        });
    }

    fn incident_of(&self, check: &str) -> Option<String> {
        self.history.open_incidents().into_iter().find(|i| i.check == check).map(|i| i.id)
    }

    fn action_record(
        &self,
        id: &str,
        outcome: &str,
        target: &TargetRef,
        action: &str,
        cause: &Cause,
        detail: &str,
    ) -> ActionRecord {
        ActionRecord {
            id: format!("{id}:{outcome}"),
            at: self.clock.now(),
            target: target.to_string(),
            action: action.into(),
            outcome: outcome.into(),
            incident: self.incident_of(&cause.check),
            detail: detail.to_string(),
        }
    }

    fn record(&self, id: &str, outcome: &str, target: &TargetRef, action: &str, cause: &Cause, detail: &str) {
        self.writer.enqueue(self.action_record(id, outcome, target, action, cause, detail));
    }

    /// Finishes the books on rollbacks a restart interrupted between intent
    /// and result: done if the target shows it, else failed (a breach that
    /// goes on is decided afresh). Never re-sends anything itself. A done
    /// one is counted and told here: the process that sent it died before
    /// it could record, count or tell it (its result never reached storage),
    /// so without this people would never hear of that rollback.
    pub async fn reconcile(&self, store: &dyn Store) -> crate::store::Result<()> {
        let rows = store.actions(RECONCILE_ROWS).await?;
        let finished: HashSet<&str> = rows
            .iter()
            .filter(|r| r.outcome != "intent" && r.outcome != "retry")
            .filter_map(|r| r.id.rsplit_once(':').map(|(k, _)| k))
            .collect();
        for intent in rows.iter().filter(|r| r.action == "rollback" && r.outcome == "intent") {
            let Some((key, _)) = intent.id.rsplit_once(':') else { continue };
            if finished.contains(key) {
                continue;
            }
            let Ok(target) = self.targets.resolve(&intent.target) else { continue };
            let from = key.rsplit_once(':').map(|(_, t)| t.to_string()).unwrap_or_default();
            let state = match self.cluster.rollout(&target).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(target = %target, error = %e, "cannot reconcile an interrupted rollback yet");
                    continue;
                }
            };
            let done = state.template != from && state.rolled_back_to.as_deref() == Some(state.template.as_str());
            let (outcome, detail) = if done {
                lock(&self.rolled_back).insert((target.clone(), from));
                self.metrics.guard.action(&target, "rollback", "ok");
                self.tell_reconciled(&target, intent).await;
                ("ok", "completed before a restart (the target shows it); reconciled")
            } else {
                ("failed", "interrupted by a restart before it was applied; the guard decides afresh")
            };
            tracing::warn!(target = %target, outcome, "reconciled a rollback left half-done");
            self.writer.enqueue(ActionRecord {
                id: format!("{key}:{outcome}"),
                at: self.clock.now(),
                target: intent.target.clone(),
                action: "rollback".into(),
                outcome: outcome.into(),
                incident: intent.incident.clone(),
                detail: detail.into(),
            });
        }
        Ok(())
    }
}

impl Actuator {
    /// Tells of a rollback found done after a restart, as the process that
    /// sent it would have.
    async fn tell_reconciled(&self, target: &TargetRef, intent: &ActionRecord) {
        let done = match timed(target, self.cluster.rolled_back(target)).await {
            Ok(Some(done)) => done,
            Ok(None) => {
                return tracing::warn!(target = %target, "rolled back, but from and to which revision is lost; not told");
            }
            Err(e) => return tracing::warn!(target = %target, error = %e, "cannot read the rollback to tell of it"),
        };
        // The intent names the incident; its check is the incident's, else the target's first.
        let open = self.history.open_incidents();
        let by_incident =
            open.iter().find(|i| intent.incident.as_deref() == Some(i.id.as_str())).map(|i| i.check.clone());
        let guarded = self.config.guard.targets.iter().find(|t| TargetRef::of(t) == *target);
        let check = by_incident.or_else(|| guarded.and_then(|t| t.checks.first().cloned())).unwrap_or_default();
        let cause = Cause { trigger: Trigger::Breach, check, reason: intent.detail.clone(), since: Instant::now() };
        let what = format!("rolled back from revision {} to {}", done.from_revision, done.to_revision);
        let did = Did::RolledBack { from: done.from_revision, to: done.to_revision, after_pause: false };
        self.tell(target, &cause, did, format!("{target} {what} (before a restart): {}", intent.detail));
    }
}

/// A cluster call bounded by `CALL_TIMEOUT`; running out of time is an
/// `Unavailable` error, retried like a 5xx.
async fn timed<T>(
    target: &TargetRef,
    call: impl Future<Output = crate::cluster::Result<T>>,
) -> crate::cluster::Result<T> {
    tokio::time::timeout(CALL_TIMEOUT, call).await.unwrap_or_else(|_| {
        Err(ClusterError::Unavailable {
            target: target.clone(),
            detail: format!("no answer within {}", humantime::format_duration(CALL_TIMEOUT)),
        })
    })
}

/// The span of one pause or rollback attempt, exported with the probe
/// spans (see `telemetry`).
fn action_span(target: &TargetRef, action: &'static str, check: &str) -> tracing::Span {
    tracing::info_span!(
        "action",
        otel.kind = "internal",
        otel.status_code = tracing::field::Empty,
        target = %target,
        action,
        check,
        outcome = tracing::field::Empty,
        breach_to_action_seconds = tracing::field::Empty,
    )
}

/// Records how the attempt ended (`ok`; `conflict` or `retry`, both tried
/// again; `failed`) and the seconds since the breach was confirmed.
fn end_action_span(span: &tracing::Span, error: Option<&ClusterError>, took: f64) {
    let outcome = match error {
        None => "ok",
        Some(ClusterError::Conflict(_)) => "conflict",
        Some(e) if e.is_transient() => "retry",
        Some(_) => "failed",
    };
    span.record("outcome", outcome);
    span.record("breach_to_action_seconds", took);
    if error.is_some() {
        span.record("otel.status_code", "error");
    }
}

/// Which cause wins when two wait for one worker: evidence of a breach the
/// change caused, then a suspected one, then missing data, then a breach
/// older than the change.
fn rank(trigger: Trigger) -> u8 {
    match trigger {
        Trigger::Breach => 3,
        Trigger::Suspected => 2,
        Trigger::DataStale => 1,
        Trigger::StandingBreach => 0,
    }
}

enum Step {
    Pause { then_rollback: bool, why: &'static str },
    Rollback,
}

/// Exponential from `FIRST_BACKOFF`, capped, with ±50 % jitter so replicas
/// and targets do not retry in step.
fn backoff(failures: u32) -> Duration {
    let base = FIRST_BACKOFF.saturating_mul(1 << failures.saturating_sub(1).min(16)).min(MAX_BACKOFF);
    jitter(base)
}

fn jitter(d: Duration) -> Duration {
    d.mul_f64(0.5 + rand::random::<f64>())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn back_off_doubles_is_capped_and_jittered() {
        for (failures, base) in [(1, 100), (2, 200), (3, 400), (7, 5_000), (40, 5_000)] {
            let d = backoff(failures).as_millis() as u64;
            assert!((base / 2..=base * 3 / 2).contains(&d), "{failures} failures: {d} ms, base {base}");
        }
    }
}
