//! The SLOs section: one card per SLO with its SLI, the error budget left
//! as a bar (marked where the gate starts to hold), the burn rates, and the
//! burn-rate conditions that fire.

use std::fmt::Write;

use super::sparkline::bar;
use super::{StatusBody, t};
use crate::slo::{Severity, SloStatus};

/// Burn rates shown on a card; the others stay in `/api/v1/status`.
const BURN_WINDOWS: [&str; 4] = ["5m", "1h", "6h", "1d"];

pub fn render(out: &mut String, s: &StatusBody, min_budget: f64) {
    out.push_str("<section id=slos><h2>SLOs <small>error budget left</small></h2>");
    if s.slos.is_empty() {
        out.push_str("<p class=none>No SLO is configured.</p></section>");
        return;
    }
    out.push_str("<div class=grid>");
    for slo in &s.slos {
        card(out, slo, min_budget);
    }
    out.push_str("</div></section>");
}

fn card(out: &mut String, slo: &SloStatus, min_budget: f64) {
    let pct = |v: f64| format!("{:.3} %", v * 100.0);
    let (cls, state) = match slo.error_budget_remaining {
        None => ("warn", "NO DATA"),
        Some(left) if left < 0.0 => ("bad", "OVERSPENT"),
        Some(left) if left < min_budget => ("bad", "LOW"),
        Some(_) => ("good", "OK"),
    };
    let _ = write!(
        out,
        "<article class=\"card {cls}\"><div class=row><span class=name>{name}</span>\
         <span class=\"badge {cls}\">{state}</span></div><p class=small>objective {obj} over {window} · SLI {sli}</p>",
        name = t(&slo.name),
        obj = pct(slo.objective),
        window = t(&slo.window),
        sli = slo.sli.map_or("no data".into(), pct),
    );
    let left = slo.error_budget_remaining;
    let label = format!("the gate holds below {:.0} % left", min_budget * 100.0);
    bar(out, left.unwrap_or(0.0), Some(min_budget), cls, &label);
    let amount = match left {
        None => "<span class=big>no data</span>".to_string(),
        // 1 − left is the share spent: "-969 % left" reads worse than "970× spent".
        Some(v) if v < 0.0 => {
            format!("<span class=big>none</span> <span class=small>left, {:.1}× spent</span>", 1.0 - v)
        }
        Some(v) => format!("<span class=big>{:.1} %</span> <span class=small>left</span>", v * 100.0),
    };
    let _ = write!(out, "<div class=row><span>{amount}</span><span class=small>{label}</span></div>");
    let burns: Vec<String> = BURN_WINDOWS
        .iter()
        .filter_map(|w| slo.windows.iter().find(|s| s.window == *w))
        .map(|w| format!("{} {}", t(&w.window), w.burn_rate.map_or("-".into(), |b| format!("{b:.1}×"))))
        .collect();
    if !burns.is_empty() {
        let _ = write!(out, "<p class=small>burn rate {}</p>", burns.join(" · "));
    }
    for c in slo.conditions.iter().filter(|c| c.firing) {
        let severity = match c.condition.severity {
            Severity::Page => "page",
            Severity::Ticket => "ticket",
        };
        let _ = write!(
            out,
            "<p class=detail><span class=\"badge bad\">{}</span> burning {}× over {} and {}</p>",
            severity, c.condition.factor, c.condition.long, c.condition.short,
        );
    }
    out.push_str("</article>");
}
