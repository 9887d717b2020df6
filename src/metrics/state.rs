//! Gauges that describe state rather than count events: SLOs, the gate,
//! incidents, revenue at risk, storage. They are set from their sources
//! each time `/metrics` is rendered, so they are never stale.

use prometheus::{Gauge, GaugeVec, Opts, Registry};

use crate::gatekeeper::Gatekeeper;
use crate::history::History;
use crate::store::StoreWriter;

/// Where the state gauges read from.
pub struct Sources<'a> {
    pub board: &'a crate::probe::Board,
    pub history: &'a History,
    pub gatekeeper: &'a Gatekeeper,
    pub writer: &'a StoreWriter,
    pub environment: crate::config::Environment,
}

pub struct StateGauges {
    slo_objective: GaugeVec,
    slo_sli: GaugeVec,
    slo_budget: GaugeVec,
    slo_burn: GaugeVec,
    slo_condition: GaugeVec,
    gate_go: Gauge,
    incidents_open: Gauge,
    revenue_at_risk: Gauge,
    storage_up: Gauge,
    storage_queued: Gauge,
}

impl StateGauges {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let vec = |name: &str, help: &str, labels: &[&str]| GaugeVec::new(Opts::new(name, help), labels);
        let one = |name: &str, help: &str| Gauge::with_opts(Opts::new(name, help));
        let g = Self {
            slo_objective: vec(
                "guardian_slo_objective_ratio",
                "Objective of the SLO (share of good probes)",
                &["slo"],
            )?,
            slo_sli: vec("guardian_slo_sli_ratio", "Share of good probes over the window", &["slo", "window"])?,
            slo_budget: vec(
                "guardian_slo_error_budget_remaining_ratio",
                "Share of the error budget left over the SLO window (below 0 once overspent)",
                &["slo"],
            )?,
            slo_burn: vec("guardian_slo_burn_rate", "Error budget burn rate over the window", &["slo", "window"])?,
            slo_condition: vec(
                "guardian_slo_burn_alert",
                "1 while a multi-window burn-rate condition holds (SRE workbook)",
                &["slo", "severity", "long", "short"],
            )?,
            gate_go: one("guardian_gate_go", "1 when the gate says go, 0 when no-go")?,
            incidents_open: one("guardian_incidents_open", "Incidents open now")?,
            revenue_at_risk: one("guardian_revenue_at_risk_eur", "Estimated revenue at risk in open incidents, EUR")?,
            storage_up: one("guardian_storage_up", "1 while storage answers, 0 while writes are queued for it")?,
            storage_queued: one("guardian_storage_queued_writes", "Writes waiting for storage")?,
        };
        for c in [&g.slo_objective, &g.slo_sli, &g.slo_budget, &g.slo_burn, &g.slo_condition] {
            registry.register(Box::new(c.clone()))?;
        }
        for c in [&g.gate_go, &g.incidents_open, &g.revenue_at_risk, &g.storage_up, &g.storage_queued] {
            registry.register(Box::new(c.clone()))?;
        }
        Ok(g)
    }

    pub fn refresh(&self, s: &Sources<'_>) {
        for slo in s.history.slo_status() {
            self.slo_objective.with_label_values(&[&slo.name]).set(slo.objective);
            // No data is no series, not a fake 1.0: absent() and dashboards tell them apart.
            for w in &slo.windows {
                set_or_remove(&self.slo_sli, &[&slo.name, &w.window], w.sli);
                set_or_remove(&self.slo_burn, &[&slo.name, &w.window], w.burn_rate);
            }
            let budget = slo.error_budget_remaining;
            set_or_remove(&self.slo_budget, &[&slo.name], budget);
            for c in &slo.conditions {
                let labels = [slo.name.as_str(), severity(c), c.condition.long, c.condition.short];
                self.slo_condition.with_label_values(&labels).set(if c.firing { 1.0 } else { 0.0 });
            }
        }
        let go = s.gatekeeper.decide(s.environment, None).go;
        self.gate_go.set(if go { 1.0 } else { 0.0 });
        self.incidents_open.set(s.history.open_incidents().len() as f64);
        // Never "-0": a sum of nothing can come out negative zero, which dashboards print as "-€0".
        let at_risk = s.history.revenue_at_risk();
        self.revenue_at_risk.set(if at_risk > 0.0 { at_risk } else { 0.0 });
        let health = s.writer.health();
        self.storage_up.set(if health.reachable { 1.0 } else { 0.0 });
        self.storage_queued.set(health.queued as f64);
    }
}

fn set_or_remove(vec: &GaugeVec, labels: &[&str], value: Option<f64>) {
    match value {
        Some(v) => vec.with_label_values(labels).set(v),
        None => {
            let _ = vec.remove_label_values(labels);
        }
    }
}

fn severity(c: &crate::slo::ConditionState) -> &'static str {
    match c.condition.severity {
        crate::slo::Severity::Page => "page",
        crate::slo::Severity::Ticket => "ticket",
    }
}
