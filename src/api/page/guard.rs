//! What the guard watches and did: guarded targets and their rollout state,
//! open incidents, and the last actions from the audit log.

use std::fmt::Write;

use jiff::Timestamp;

use super::{STORAGE_WAIT, StatusBody, ago, t, when};
use crate::audit::ActionRecord;
use crate::targets::TargetStatus;
use crate::units::format_duration;

pub fn targets(out: &mut String, s: &StatusBody) {
    out.push_str("<section id=targets><h2>Guarded targets</h2>");
    if s.targets.is_empty() {
        let _ = write!(out, "<p class=none>No guarded target (guard {}).</p></section>", s.guard.mode);
        return;
    }
    out.push_str("<div class=grid>");
    for target in &s.targets {
        card(out, target, s.generated_at);
    }
    out.push_str("</div></section>");
}

fn card(out: &mut String, target: &TargetStatus, now: Timestamp) {
    let mut badges = Vec::new();
    if target.armed {
        badges.push(("warn", "ARMED"));
    }
    badges.push(match (&target.state_unknown, target.rolling_out) {
        (Some(_), _) => ("bad", "STATE UNKNOWN"),
        (None, Some(true)) => ("info", "ROLLING OUT"),
        (None, Some(false)) => ("good", "SETTLED"),
        (None, None) => ("warn", "NOT SEEN YET"),
    });
    if target.paused == Some(true) {
        badges.push(("bad", "PAUSED"));
    }
    let worst = |c: &str| badges.iter().any(|b| b.0 == c);
    let cls = ["bad", "warn"].into_iter().find(|c| worst(c)).unwrap_or("good");
    let _ =
        write!(out, "<article class=\"card {cls}\"><div class=row><span class=name>{}</span><span>", t(&target.target));
    for (c, label) in &badges {
        let _ = write!(out, "<span class=\"badge {c}\">{label}</span> ");
    }
    out.push_str("</span></div><dl class=kv>");
    if let Some(why) = &target.state_unknown {
        let _ = write!(out, "<dt>why unknown<dd>{}", t(why));
    }
    let revision = target.revision.map_or("-".into(), |r| r.to_string());
    let _ = write!(out, "<dt>revision<dd>{revision}");
    if let Some(template) = &target.template {
        let _ = write!(out, "<dt>template<dd>{}", t(template));
    }
    if let Some(to) = &target.rolled_back_to {
        let _ = write!(out, "<dt>rolled back to<dd>{}", t(to));
    }
    if let Some(since) = target.armed_since {
        let _ = write!(out, "<dt>armed since<dd>{} ({} ago)", when(since, now), ago(since, now));
    }
    let _ = write!(
        out,
        "<dt>detection bound<dd>{:.2} s<dt>checks<dd>{}</dl>",
        target.detection_bound_seconds,
        t(&target.checks.join(", "))
    );
    for m in &target.migrations {
        let _ = write!(
            out,
            "<p class=detail><span class=\"badge warn\">MIGRATION</span> <code>{id}</code> {what} \
             <span class=small>on breach: {on} · since {since}</span></p>",
            id = t(&m.id),
            what = t(&m.description),
            on = m.on_breach.as_str(),
            since = when(m.started_at, now),
        );
    }
    out.push_str("</article>");
}

pub fn incidents(out: &mut String, s: &StatusBody) {
    let _ = write!(out, "<section id=incidents><h2>Open incidents <small>{}</small></h2>", s.incidents.len());
    if s.incidents.is_empty() {
        out.push_str("<p class=none>No open incident.</p></section>");
        return;
    }
    out.push_str("<div class=grid>");
    for i in &s.incidents {
        let _ = write!(
            out,
            "<article class=\"card bad\"><div class=row><span class=name>{check}</span>\
             <span class=\"badge bad\">OPEN {ago}</span></div><p class=detail>{reason}</p><dl class=kv>\
             <dt>since<dd>{since}<dt>worst<dd>{worst} (p95 {p95})<dt>bad probes<dd>{bad} of {total}\
             <dt>revenue at risk<dd>€{risk:.2}<dt>incident<dd><code>{id}</code></dl></article>",
            check = t(&i.check),
            ago = ago(i.started_at, s.generated_at),
            reason = t(&i.reason),
            since = when(i.started_at, s.generated_at),
            worst = format_duration(i.worst_latency),
            p95 = format_duration(i.p95_latency),
            bad = i.probes_bad,
            total = i.probes_total,
            risk = i.revenue_at_risk_eur,
            id = t(&i.id),
        );
    }
    out.push_str("</div></section>");
}

pub fn actions(out: &mut String, actions: Option<&[ActionRecord]>, now: Timestamp) {
    out.push_str("<section id=actions><h2>Last actions</h2>");
    let Some(actions) = actions else {
        let _ = write!(
            out,
            "<p class=\"note warn\">Storage did not answer within {}: the audit log is not shown.</p></section>",
            format_duration(STORAGE_WAIT)
        );
        return;
    };
    if actions.is_empty() {
        out.push_str("<p class=none>No action yet.</p></section>");
        return;
    }
    out.push_str("<ol class=actions>");
    for a in actions {
        let cls = match a.outcome.as_str() {
            "ok" => "good",
            "failed" => "bad",
            "retry" | "dry_run" => "warn",
            _ => "info",
        };
        let _ = write!(
            out,
            "<li><div class=row><span><b>{action}</b> <span class=\"badge {cls}\">{outcome}</span></span>\
             <span class=small>{at}</span></div><p class=\"small url\">{target}</p><p class=detail>{detail}</p>",
            action = t(&a.action),
            outcome = t(&a.outcome),
            at = when(a.at, now),
            target = t(&a.target),
            detail = t(&a.detail),
        );
        if let Some(incident) = &a.incident {
            let _ = write!(out, "<p class=small>incident <code>{}</code></p>", t(incident));
        }
        out.push_str("</li>");
    }
    out.push_str("</ol></section>");
}
