//! Owns turning what happened (an incident opened or closed, a notice from
//! the guard) into a `Message`: the check's budget from the config, the
//! incident's figures as of now, the gate as it answers now, and what
//! Guardian did. Reads shared state; sends nothing.

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;

use super::message::{Action, Event, GateState, Message, Statistic};
use super::{Did, Notice};
use crate::clock::Clock;
use crate::config::{Config, GuardMode};
use crate::gatekeeper::Gatekeeper;
use crate::history::History;
use crate::incident::Incident;
use crate::targets::Targets;

/// Why Guardian leaves a target alone when a breach comes with no change under way.
pub const UNARMED: &str = "no rollout or migration is under way, so a rollback cannot fix it";
const GUARD_OFF: &str = "the guard is off (guard.mode: off)";

pub struct Composer {
    config: Arc<Config>,
    gatekeeper: Arc<Gatekeeper>,
    history: Arc<History>,
    targets: Arc<Targets>,
    clock: Arc<dyn Clock>,
}

impl Composer {
    pub fn new(
        config: Arc<Config>,
        gatekeeper: Arc<Gatekeeper>,
        history: Arc<History>,
        targets: Arc<Targets>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self { config, gatekeeper, history, targets, clock }
    }

    /// An incident just opened: what broke, and whether the guard acts on it.
    pub fn opened(&self, incident: &Incident) -> Message {
        let now = self.clock.now();
        let incident = self.fresh(incident);
        self.message(&incident, Event::IncidentOpened, now, self.stance(&incident.check))
    }

    /// An incident closed; `last` is the last thing Guardian did about it.
    pub fn resolved(&self, incident: &Incident, last: Option<Action>) -> Message {
        let at = incident.ended_at.unwrap_or_else(|| self.clock.now());
        let action = last.unwrap_or_else(|| self.stance(&incident.check));
        let mut m = self.message(incident, Event::IncidentResolved, at, action);
        if !incident.p95_latency.is_zero() {
            (m.statistic, m.observed) = (Statistic::P95, incident.p95_latency);
        }
        m
    }

    /// A notice from the guard; its incident's figures as of now when it has one.
    pub fn notice(&self, n: &Notice) -> Message {
        let incident =
            n.incident.as_deref().and_then(|id| self.history.open_incidents().into_iter().find(|i| i.id == id));
        let target = n.target.clone();
        let (event, action) = match &n.did {
            Did::Paused { revision } => (Event::ActionTaken, Action::Paused { target, revision: *revision }),
            Did::RolledBack { from, to, after_pause } => {
                (Event::ActionTaken, Action::RolledBack { target, paused: *after_pause, from: *from, to: *to })
            }
            Did::LeftAlone { why } => (Event::ActionTaken, Action::NotActed { target: Some(target), why: why.clone() }),
            Did::Failed { why } => (Event::CouldNotAct, Action::NotActed { target: Some(target), why: why.clone() }),
        };
        let mut m = match &incident {
            Some(i) => self.message(i, event, n.at, action),
            None => Message {
                environment: self.config.environment,
                event,
                incident: n.incident.clone().unwrap_or_default(),
                check: n.check.clone(),
                reason: n.reason.clone(),
                budget: self.budget(&n.check),
                statistic: Statistic::Worst,
                observed: Duration::ZERO,
                lasted: Duration::ZERO,
                at: n.at,
                action,
                gate: self.gate(),
                revenue_at_risk_eur: 0.0,
                status_page: None,
            },
        };
        // The guard's own words say what its evidence was (missing data, say).
        m.reason = n.reason.clone();
        m
    }

    /// Incidents open now, with their figures as of now.
    pub fn open_incidents(&self) -> Vec<Incident> {
        self.history.open_incidents()
    }

    /// Whether the incidents open before a restart are back from storage.
    pub fn incidents_restored(&self) -> bool {
        self.history.is_restored()
    }

    pub fn open_incident_ids(&self) -> Vec<String> {
        self.history.open_incidents().into_iter().map(|i| i.id).collect()
    }

    fn message(&self, i: &Incident, event: Event, at: Timestamp, action: Action) -> Message {
        let lasted = i.ended_at.unwrap_or(at).duration_since(i.started_at);
        Message {
            environment: self.config.environment,
            event,
            incident: i.id.clone(),
            check: i.check.clone(),
            reason: i.reason.clone(),
            budget: self.budget(&i.check),
            statistic: Statistic::Worst,
            observed: i.worst_latency,
            lasted: Duration::try_from(lasted).unwrap_or_default(),
            at,
            action,
            gate: self.gate(),
            revenue_at_risk_eur: i.revenue_at_risk_eur,
            status_page: None,
        }
    }

    /// The open incident's figures as of now, if it is still open here.
    fn fresh(&self, incident: &Incident) -> Incident {
        let open = self.history.open_incidents().into_iter().find(|i| i.id == incident.id);
        open.unwrap_or_else(|| incident.clone())
    }

    /// What the guard does about a breach of `check`, before it acts.
    fn stance(&self, check: &str) -> Action {
        if self.config.guard.mode == GuardMode::Off {
            return Action::NotActed { target: None, why: GUARD_OFF.into() };
        }
        match self.targets.armed_for(check).into_iter().next() {
            Some((target, _, _)) => Action::Acting { target: target.to_string() },
            None => Action::NotActed { target: None, why: UNARMED.into() },
        }
    }

    fn budget(&self, check: &str) -> Duration {
        self.config.checks.iter().find(|c| c.name == check).map(|c| c.budget).unwrap_or_default()
    }

    fn gate(&self) -> GateState {
        GateState::from(&self.gatekeeper.decide(self.config.environment, None))
    }
}
