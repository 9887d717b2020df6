//! The checks section: one card per check, in config order, with its state,
//! its last latency against the budget, the sparkline of its last probes,
//! why it is what it is, and its URL without credentials.

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use super::sparkline::{latency_bar, sparkline};
use super::{StatusBody, ago, t};
use crate::probe::{CheckStatus, Outcome, RecentProbe};
use crate::units::format_duration;

pub fn render(out: &mut String, s: &StatusBody, recent: &HashMap<String, Vec<RecentProbe>>) {
    let up = s.checks.iter().filter(|c| c.up).count();
    let _ = write!(
        out,
        "<section id=checks><h2>Checks <small>{up} of {} good</small></h2><div class=grid>",
        s.checks.len()
    );
    for c in &s.checks {
        card(out, s, c, recent.get(&c.name).map_or(&[][..], Vec::as_slice));
    }
    out.push_str("</div></section>");
}

fn card(out: &mut String, s: &StatusBody, c: &CheckStatus, probes: &[RecentProbe]) {
    let (cls, state) = state(c);
    let budget = Duration::from_secs_f64(c.budget_seconds);
    let _ = write!(
        out,
        "<article class=\"card {cls}\"><div class=row><span class=name>{name}</span>\
         <span class=\"badge {cls}\">{state}</span></div>",
        name = t(&c.name),
    );
    match &c.last {
        Some(r) => {
            let pct = r.latency.as_secs_f64() / c.budget_seconds.max(f64::EPSILON) * 100.0;
            let _ = write!(
                out,
                "<div class=row><span><span class=big>{lat}</span> <span class=small>of the {b} budget</span></span>\
                 <span class=small>{pct:.0} %</span></div>",
                lat = format_duration(r.latency),
                b = format_duration(budget),
            );
            latency_bar(out, r.latency, budget);
        }
        None => {
            let _ = write!(
                out,
                "<div class=row><span class=small>no result yet · budget {}</span></div>",
                format_duration(budget)
            );
        }
    }
    sparkline(out, &c.name, probes, budget);
    if let Some(r) = &c.last {
        let _ = write!(out, "<p class=detail>{}: {}</p>", r.outcome.code(), t(&r.reason));
    }
    out.push_str("<p class=small>");
    if let Some(since) = c.bad_since {
        let _ = write!(out, "bad for {} · ", ago(since, s.generated_at));
    }
    let bound = s.detection_bounds.get(&c.name).map_or("-".into(), |b| format!("{b:.2} s"));
    let _ =
        write!(out, "every {} · detection bound {bound}", format_duration(Duration::from_secs_f64(c.interval_seconds)));
    if c.skipped_total > 0 {
        let _ = write!(out, " · {} probes skipped", c.skipped_total);
    }
    let _ = write!(out, "</p><p class=\"small url\">{}</p></article>", t(&c.url));
}

/// The badge: what is wrong first, in the order a person should read it.
fn state(c: &CheckStatus) -> (&'static str, &'static str) {
    match &c.last {
        _ if c.over_budget_in_flight => ("bad", "OVER BUDGET NOW"),
        None => ("warn", "NO DATA"),
        Some(_) if c.stale => ("bad", "STALE"),
        Some(r) => match r.outcome {
            Outcome::Ok => ("good", "OK"),
            Outcome::Slow => ("bad", "SLOW"),
            Outcome::Failed => ("bad", "FAILED"),
        },
    }
}
