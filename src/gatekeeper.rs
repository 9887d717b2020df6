//! Owns answering the gate at run time: gathers what the pure decision
//! needs (checks from the board, SLO budgets and open incidents from the
//! history, backups, rollouts in progress), and records each change of
//! its environment's answer from a loop of its own (never from a request).
//! Everything it reads is in memory, so a storage outage never stops the gate.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::{Config, Environment};
use crate::gate::{Backup, CheckView, GateDecision, GateInput, IncidentView, Reason, ReasonCode, SloView, decide};
use crate::history::History;
use crate::probe::{Board, GateState};
use crate::store::{Store, StoreWriter};

/// How often the answer is looked at for recording.
const RECORD_EVERY: Duration = Duration::from_secs(5);

pub struct Gatekeeper {
    config: Arc<Config>,
    board: Arc<Board>,
    history: Arc<History>,
    clock: Arc<dyn Clock>,
    writer: StoreWriter,
    backups: RwLock<HashMap<Environment, Backup>>,
    rollouts: RwLock<Vec<String>>,
    last: Mutex<HashMap<Environment, (bool, Vec<&'static str>)>>,
}

impl Gatekeeper {
    pub fn new(
        config: Arc<Config>,
        board: Arc<Board>,
        history: Arc<History>,
        clock: Arc<dyn Clock>,
        writer: StoreWriter,
    ) -> Self {
        let (backups, rollouts, last) = Default::default();
        Self { config, board, history, clock, writer, backups, rollouts, last }
    }

    /// Loads the newest backup of each environment kept from before a restart.
    pub async fn restore(&self, store: &dyn Store) {
        for env in Environment::ALL {
            match store.latest_backup(env).await {
                Ok(Some(b)) => self.remember(b),
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, environment = %env, "cannot read backups from storage"),
            }
        }
    }

    /// Records a reported backup; the gate sees it at once, storage soon.
    pub fn record_backup(&self, backup: Backup) {
        self.remember(backup.clone());
        self.writer.enqueue(backup);
    }

    /// Keeps the newest successful backup per environment, as storage does:
    /// a failed attempt does not erase an earlier good backup.
    fn remember(&self, backup: Backup) {
        if !backup.ok {
            return;
        }
        let mut map = self.backups.write().unwrap_or_else(|p| p.into_inner());
        let newer = map.get(&backup.environment).is_none_or(|b| b.completed_at <= backup.completed_at);
        if newer {
            map.insert(backup.environment, backup);
        }
    }

    /// Targets (`NAMESPACE/KIND/NAME`) rolling out now, as the guard sees them.
    pub fn set_rollouts_in_progress(&self, targets: Vec<String>) {
        *self.rollouts.write().unwrap_or_else(|p| p.into_inner()) = targets;
    }

    /// The answer for `environment`. `asking` names the target that asks
    /// (a Flagger canary or an Argo rollout): its own rollout does not count.
    pub fn decide(&self, environment: Environment, asking: Option<&str>) -> GateDecision {
        let now = self.clock.now();
        let checks = self.board.gate_states();
        let check_views: Vec<CheckView> = checks.iter().map(check_view).collect();
        let budgets = self.history.slo_budgets();
        let slo_views: Vec<SloView> =
            budgets.iter().map(|(name, b)| SloView { name, error_budget_remaining: *b }).collect();
        let incidents = self.history.open_incidents();
        let incident_views: Vec<IncidentView> =
            incidents.iter().map(|i| IncidentView { id: &i.id, check: &i.check, started_at: i.started_at }).collect();
        let rollouts = self.rollouts.read().unwrap_or_else(|p| p.into_inner()).clone();
        let rolling: Vec<&str> =
            rollouts.iter().map(String::as_str).filter(|t| asking.is_none_or(|a| !is_same_target(t, a))).collect();
        let backup = self.backups.read().unwrap_or_else(|p| p.into_inner()).get(&environment).cloned();
        let mut decision = decide(&GateInput {
            environment,
            now,
            config: &self.config.gate,
            checks: &check_views,
            slos: &slo_views,
            open_incidents: &incident_views,
            rollouts_in_progress: &rolling,
            latest_backup: backup.as_ref(),
        });
        if !self.history.is_restored() && !self.config.slos.is_empty() {
            unknown_budgets(&mut decision);
        }
        decision
    }

    /// Records the answer for this guardian's environment when it changes,
    /// every few seconds, from here only: answering a request never writes.
    pub async fn record_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(RECORD_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                _ = tick.tick() => {
                    let decision = self.decide(self.config.environment, None);
                    self.record_if_changed(&decision);
                }
            }
        }
    }

    /// Stores a decision only when the answer or its reason codes change:
    /// the history of the gate without a row per request.
    fn record_if_changed(&self, d: &GateDecision) {
        let codes: Vec<&'static str> = d.reasons.iter().map(|r| r.code).collect();
        let mut last = self.last.lock().unwrap_or_else(|p| p.into_inner());
        let changed = last.get(&d.environment).is_none_or(|(go, c)| *go != d.go || *c != codes);
        if changed {
            tracing::info!(environment = %d.environment, go = d.go, reasons = ?codes, "gate answer changed");
            last.insert(d.environment, (d.go, codes));
            self.writer.enqueue(d.clone());
        }
    }
}

/// Until stored history is loaded, the error budgets are unknown: missing
/// data is never a pass.
fn unknown_budgets(decision: &mut GateDecision) {
    let reason = Reason::new(
        ReasonCode::SloBudgetLow,
        "SLO history is not loaded yet (storage has not answered since the start): the error budgets are unknown",
    );
    let rank = |r: &Reason| ReasonCode::ALL.iter().position(|c| Some(*c) == r.kind()).unwrap_or(usize::MAX);
    let at = decision.reasons.iter().position(|r| rank(r) > rank(&reason)).unwrap_or(decision.reasons.len());
    decision.reasons.insert(at, reason);
    decision.go = false;
}

fn check_view<'a>(c: &'a GateState<'_>) -> CheckView<'a> {
    let reason =
        if c.over_budget_in_flight { Some("a probe is still running past its budget") } else { c.reason.as_deref() };
    CheckView {
        name: c.name,
        // Staleness is the gate's own reason (data_stale), judged against gate.stale_after.
        up: c.last_ok && !c.over_budget_in_flight,
        last_result_at: c.last_result_at,
        reason,
        bad_since: c.bad_since,
    }
}

/// `ns/Kind/name` matches an asker named `ns/name` (Flagger) or `ns/Kind/name` (Argo).
fn is_same_target(target: &str, asking: &str) -> bool {
    let parts: Vec<&str> = target.split('/').collect();
    match parts.as_slice() {
        [ns, _, name] => asking == target || asking == format!("{ns}/{name}"),
        _ => asking == target,
    }
}

#[cfg(test)]
mod tests {
    use super::is_same_target;

    #[test]
    fn the_asking_target_is_recognised_by_either_name_form() {
        let t = "blueocean-nextgen-prod/Deployment/nextgen-dashboard";
        assert!(is_same_target(t, "blueocean-nextgen-prod/nextgen-dashboard"));
        assert!(is_same_target(t, t));
        assert!(!is_same_target(t, "blueocean-nextgen-prod/nextgen-admin"));
        assert!(!is_same_target(t, "blueocean-nextgen-dev/nextgen-dashboard"));
    }
}
