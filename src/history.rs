//! Owns what Guardian learns from probes over time: the SLO tracker and the
//! incident tracker, fed by probe events and persisted through the store
//! queue. Observing is cheap and never waits on storage: incident changes
//! are queued at once, roll-ups every few seconds by `persist_loop`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::config::Config;
use crate::incident::{BreachRule, Incident, IncidentChange, IncidentTracker, Observation};
use crate::probe::{ProbeEvent, ProbeObserver};
use crate::slo::{MINUTE_RESOLUTION_UP_TO, SloStatus, SloTracker};
use crate::store::{Store, StoreWriter};

/// How often roll-ups of the current minutes are queued for storage.
const PERSIST_EVERY: Duration = Duration::from_secs(5);
/// How often a failed restore is retried.
const RESTORE_RETRY: Duration = Duration::from_secs(5);
/// Open incidents are few; this bounds a restore reading a broken table.
const RESTORE_INCIDENTS: u32 = 100_000;
/// How often storage is pruned to the retention horizon.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// Told of incidents as they open and close (the notifier); must not block.
pub trait IncidentListener: Send + Sync + 'static {
    fn opened(&self, incident: &Incident);
    fn closed(&self, incident: &Incident);
}

pub struct History {
    listener: std::sync::OnceLock<Arc<dyn IncidentListener>>,
    slos: Mutex<SloTracker>,
    incidents: Mutex<IncidentTracker>,
    clock: Arc<dyn Clock>,
    writer: StoreWriter,
    restored: AtomicBool,
}

impl History {
    pub fn new(config: &Config, clock: Arc<dyn Clock>, writer: StoreWriter) -> Self {
        let rule = BreachRule { window: config.guard.breach_window, max_bad: config.guard.breach_max_bad };
        let shares: HashMap<String, f64> = config.checks.iter().map(|c| (c.name.clone(), c.revenue_share)).collect();
        let longest = config.checks.iter().map(|c| c.timeout).max().unwrap_or_default();
        Self {
            listener: std::sync::OnceLock::new(),
            slos: Mutex::new(SloTracker::new(&config.slos, longest)),
            incidents: Mutex::new(IncidentTracker::new(rule, config.arr_eur, shares)),
            clock,
            writer,
            restored: AtomicBool::new(false),
        }
    }

    /// Sets who hears of incidents opening and closing; the first call wins.
    pub fn listen(&self, listener: Arc<dyn IncidentListener>) {
        if self.listener.set(listener).is_err() {
            tracing::warn!("an incident listener was already set; keeping the first");
        }
    }

    /// Loads what storage kept from before a restart: roll-ups (per minute
    /// for the last hours, hourly sums before, a day at a time so memory
    /// stays small) and open incidents. Fails while storage does not answer;
    /// `restore_loop` retries. Until it succeeds nothing is persisted, so
    /// counts made meanwhile are added to the stored ones, not written over them.
    pub async fn restore(&self, store: &dyn Store) -> crate::store::Result<()> {
        let now = self.clock.now();
        let now_minute = crate::slo::minute_of(now);
        let retention = lock(&self.slos).retention_minutes();
        let hourly_until = (now_minute - MINUTE_RESOLUTION_UP_TO).div_euclid(60) * 60;
        let mut rows = 0;
        let mut from = (now_minute - retention).div_euclid(60) * 60;
        while from <= now_minute {
            let hourly = from < hourly_until;
            let to = if hourly { (from + 1_440).min(hourly_until) } else { from + 60 };
            let chunk = store.rollups_between(from, to, hourly).await?;
            rows += chunk.len();
            lock(&self.slos).restore(&chunk, now);
            from = to;
        }
        let open: Vec<Incident> =
            store.incidents(RESTORE_INCIDENTS).await?.into_iter().filter(Incident::is_open).collect();
        let closed = lock(&self.incidents).restore(open, now);
        for incident in closed {
            tracing::info!(incident = %incident.id, check = %incident.check, "closed an incident left open before the restart");
            self.writer.enqueue(incident);
        }
        self.restored.store(true, Ordering::Release);
        tracing::info!(rows, "SLO windows and open incidents restored from storage");
        Ok(())
    }

    /// Retries `restore` until storage answers, then returns.
    pub async fn restore_loop(self: Arc<Self>, store: Arc<dyn Store>, stop: CancellationToken) {
        loop {
            match self.restore(store.as_ref()).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot restore SLO history yet; the gate says no-go until it can")
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(RESTORE_RETRY) => {}
            }
        }
    }

    /// Whether stored history has been loaded; until then SLO budgets are unknown.
    pub fn is_restored(&self) -> bool {
        self.restored.load(Ordering::Acquire)
    }

    /// Own-window error budget of each SLO, for the gate.
    pub fn slo_budgets(&self) -> Vec<(String, Option<f64>)> {
        lock(&self.slos).budgets(self.clock.now()).into_iter().map(|(n, b)| (n.to_string(), b)).collect()
    }

    pub fn slo_status(&self) -> Vec<SloStatus> {
        lock(&self.slos).status(self.clock.now())
    }

    pub fn open_incidents(&self) -> Vec<Incident> {
        lock(&self.incidents).open(self.clock.now())
    }

    /// Open ones first, then recently closed ones, newest first.
    pub fn recent_incidents(&self) -> Vec<Incident> {
        lock(&self.incidents).recent(self.clock.now())
    }

    pub fn revenue_at_risk(&self) -> f64 {
        lock(&self.incidents).revenue_at_risk(self.clock.now())
    }

    /// Queues changed roll-ups and open incidents' latest figures (once restored).
    pub fn persist(&self) {
        if !self.is_restored() {
            return;
        }
        let now = self.clock.now();
        for row in lock(&self.slos).take_dirty(now) {
            self.writer.enqueue(row);
        }
        for incident in lock(&self.incidents).open(now) {
            self.writer.enqueue(incident);
        }
    }

    /// Persists every few seconds until `stop`, and once more at the end.
    pub async fn persist_loop(self: Arc<Self>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(PERSIST_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => self.persist(),
            }
        }
        self.persist();
    }

    /// Deletes what is older than the longest window plus a day, hourly.
    /// A failed prune is retried at the next tick; nothing depends on it.
    pub async fn prune_loop(self: Arc<Self>, store: Arc<dyn Store>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(PRUNE_EVERY);
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let keep = lock(&self.slos).retention_minutes();
            let Ok(before) = self.clock.now().checked_sub(jiff::SignedDuration::from_mins(keep)) else { continue };
            match store.prune(before).await {
                Ok(p) => tracing::debug!(?p, %before, "pruned storage"),
                Err(e) => tracing::warn!(error = %e, "cannot prune storage; will retry in an hour"),
            }
        }
    }

    fn observe(&self, obs: Observation<'_>) {
        let change = lock(&self.incidents).observe(obs, self.clock.now());
        match change {
            Some(IncidentChange::Opened(i)) => {
                tracing::warn!(incident = %i.id, check = %i.check, reason = %i.reason, "incident opened");
                if let Some(l) = self.listener.get() {
                    l.opened(&i);
                }
                self.writer.enqueue(i);
            }
            Some(IncidentChange::Closed(i)) => {
                tracing::info!(incident = %i.id, check = %i.check, revenue_at_risk_eur = i.revenue_at_risk_eur, "incident closed");
                if let Some(l) = self.listener.get() {
                    l.closed(&i);
                }
                self.writer.enqueue(i);
            }
            // Figures of open incidents are queued by `persist`, not every probe.
            Some(IncidentChange::Updated(_)) | None => {}
        }
    }
}

impl ProbeObserver for History {
    fn on_event(&self, event: ProbeEvent<'_>) {
        match event {
            ProbeEvent::OverBudget { check, started_at } => {
                let reason = "still running past its budget";
                self.observe(Observation::Bad { check, at: started_at, latency: None, reason });
            }
            ProbeEvent::Finished(r) => {
                lock(&self.slos).record(&r.check, r.started_at, r.outcome.is_good());
                let obs = match (r.over_budget_early, r.outcome.is_good()) {
                    // Already counted bad by its early verdict: only its latency is new.
                    (true, _) => Observation::Latency { check: &r.check, latency: r.latency },
                    (false, true) => Observation::Good { check: &r.check, at: r.started_at, latency: r.latency },
                    (false, false) => Observation::Bad {
                        check: &r.check,
                        at: r.started_at,
                        latency: Some(r.latency),
                        reason: &r.reason,
                    },
                };
                self.observe(obs);
            }
            ProbeEvent::Skipped { .. } => {}
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
