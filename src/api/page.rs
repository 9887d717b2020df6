//! `GET /`: the status page for people — checks against their budgets and
//! detection bounds, SLO budgets, the gate, guarded targets, open incidents
//! and the last actions. Server-rendered from the same state as
//! `/api/v1/status`, no external assets, refreshes itself every 5 s.
//! Everything shown is escaped: check names, reasons and URLs come from
//! config and from probed targets.

use std::fmt::Write;

use axum::extract::State;
use axum::response::Html;

use super::ApiState;
use super::status::{StatusBody, build};
use crate::units::format_duration;

/// Actions shown at the bottom.
const LAST_ACTIONS: u32 = 10;
/// How long the page waits for storage to list them.
const STORAGE_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

pub async fn page(State(state): State<ApiState>) -> Html<String> {
    let s = build(&state);
    // The page must not hang on a storage outage: the rest of it is in memory.
    let actions = tokio::time::timeout(STORAGE_WAIT, state.writer.store().actions(LAST_ACTIONS)).await;
    let actions = actions.ok().and_then(Result::ok).unwrap_or_default();
    let mut out = String::with_capacity(16 * 1024);
    head(&mut out, &s);
    checks(&mut out, &s);
    slos(&mut out, &s);
    targets(&mut out, &s);
    let _ = write!(out, "<h2>Incidents open</h2>");
    if s.incidents.is_empty() {
        out.push_str("<p>none</p>");
    }
    for i in &s.incidents {
        let _ =
            write!(out, "<p class=bad>{} on {} since {}: {}</p>", e(&i.id), e(&i.check), i.started_at, e(&i.reason));
    }
    let _ = write!(out, "<h2>Last actions</h2><table><tr><th>at<th>target<th>action<th>outcome<th>detail</tr>");
    for a in &actions {
        let _ = write!(
            out,
            "<tr><td>{}<td>{}<td>{}<td>{}<td>{}</tr>",
            a.at,
            e(&a.target),
            e(&a.action),
            e(&a.outcome),
            e(&a.detail)
        );
    }
    out.push_str("</table></body></html>");
    Html(out)
}

fn head(out: &mut String, s: &StatusBody) {
    let go = s.gate.decision == crate::gate::Verdict::Go;
    let _ = write!(
        out,
        "<!doctype html><html><head><meta charset=utf-8><meta name=viewport content=\"width=device-width\">\
         <meta http-equiv=refresh content=5><title>Guardian · {env}</title><style>\
         body{{font:14px system-ui,sans-serif;margin:1em;max-width:60em}}table{{border-collapse:collapse;width:100%}}\
         td,th{{text-align:left;padding:2px 6px;border-bottom:1px solid #ddd;vertical-align:top}}\
         .good{{color:#070}}.bad{{color:#b00;font-weight:bold}}</style></head><body>\
         <h1>Guardian · {env}</h1><p>gate: <span class={cls}>{gate}</span>{reasons} · guard: {mode}{dry}{leader} · \
         revenue at risk €{risk:.2} · {at}</p>",
        env = e(s.environment),
        cls = if go { "good" } else { "bad" },
        gate = if go { "GO" } else { "NO-GO" },
        reasons = s.gate.reasons.iter().fold(String::new(), |acc, r| acc + " · " + &e(&r.message)),
        mode = s.guard.mode,
        dry = if s.guard.dry_run { " (dry run)" } else { "" },
        leader = if s.guard.leader { ", acting (leader)" } else { "" },
        risk = s.revenue_at_risk_eur,
        at = s.generated_at,
    );
}

fn checks(out: &mut String, s: &StatusBody) {
    out.push_str("<h2>Checks</h2><table><tr><th>check<th>state<th>latency<th>budget<th>detection bound<th>last</tr>");
    for c in &s.checks {
        let (latency, last) = match &c.last {
            Some(r) => (format_duration(r.latency), format!("{}: {}", r.outcome.code(), r.reason)),
            None => ("-".into(), "no result yet".into()),
        };
        let bound = s.detection_bounds.get(&c.name).map_or("-".into(), |b| format!("{b:.2} s"));
        let _ = write!(
            out,
            "<tr><td>{}<td class={}>{}<td>{}<td>{}<td>{}<td>{}</tr>",
            e(&c.name),
            if c.up { "good" } else { "bad" },
            if c.up { "good" } else { "BAD" },
            latency,
            format_duration(std::time::Duration::from_secs_f64(c.budget_seconds)),
            bound,
            e(&last)
        );
    }
    out.push_str("</table>");
}

fn slos(out: &mut String, s: &StatusBody) {
    out.push_str("<h2>SLOs</h2><table><tr><th>SLO<th>objective<th>SLI<th>error budget left</tr>");
    for slo in &s.slos {
        let pct = |v: Option<f64>| v.map_or("no data".into(), |v| format!("{:.3} %", v * 100.0));
        let _ = write!(
            out,
            "<tr><td>{}<td>{:.3} %<td>{}<td>{}</tr>",
            e(&slo.name),
            slo.objective * 100.0,
            pct(slo.sli),
            pct(slo.error_budget_remaining)
        );
    }
    out.push_str("</table>");
}

fn targets(out: &mut String, s: &StatusBody) {
    out.push_str(
        "<h2>Guarded targets</h2><table><tr><th>target<th>state<th>revision<th>detection bound<th>checks</tr>",
    );
    for t in &s.targets {
        let state = match (t.rolling_out, t.paused, &t.state_unknown) {
            (_, _, Some(why)) => format!("unknown: {why}"),
            (Some(true), Some(true), _) => "rolling out, PAUSED".into(),
            (Some(true), _, _) => "rolling out".into(),
            _ => "settled".into(),
        };
        let armed = if t.armed { " · ARMED" } else { "" };
        let migrations = t.migrations.iter().fold(String::new(), |acc, m| {
            acc + &format!(" · migration {} ({}, on breach {})", e(&m.id), e(&m.description), m.on_breach.as_str())
        });
        let _ = write!(
            out,
            "<tr><td>{}<td>{}{armed}{migrations}<td>{}<td>{:.2} s<td>{}</tr>",
            e(&t.target),
            e(&state),
            t.revision.map_or("-".into(), |r| r.to_string()),
            t.detection_bound_seconds,
            e(&t.checks.join(", "))
        );
    }
    out.push_str("</table>");
}

/// HTML-escapes text for element content and quoted attributes.
fn e(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(e(r#"<script>"a" & 'b'</script>"#), "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;");
    }
}
