//! `GET /`: the status page for people — the gate and its reasons, checks
//! against their budgets (with a sparkline of the last probes), SLO error
//! budgets, guarded targets and their rollout state, open incidents and the
//! last actions. Server-rendered from the same state as `/api/v1/status`
//! plus the board's recent latencies; storage is asked only for the last
//! actions, and never waited on for more than [`STORAGE_WAIT`].
//!
//! Rules: no external asset of any kind (the style is inline, the
//! sparklines are inline SVG, the refresh is a meta tag), one column of
//! cards on a phone, and every value from outside (config, probed targets,
//! API bodies, storage) is HTML-escaped with any `user:password@` in a URL
//! masked. Header values never reach this module.

mod checks;
mod guard;
mod slos;
mod sparkline;

use std::fmt::Write;
use std::time::Duration;

use axum::extract::State;
use axum::response::Html;
use jiff::Timestamp;

use super::ApiState;
use super::status::{StatusBody, build};
use crate::audit::ActionRecord;
use crate::gate::Verdict;
use crate::probe::RecentProbe;

/// The whole style sheet, inline: the page loads nothing else.
const STYLE: &str = include_str!("page/style.css");
/// Seconds between reloads: the gate and the checks change within seconds during a rollout.
const REFRESH_SECONDS: u32 = 5;
/// Actions shown at the bottom.
const LAST_ACTIONS: u32 = 10;
/// How long the page waits for storage to list them: the rest of it is in memory.
const STORAGE_WAIT: Duration = Duration::from_millis(500);

/// Everything one rendering reads.
struct View<'a> {
    s: &'a StatusBody,
    recent: &'a std::collections::HashMap<String, Vec<RecentProbe>>,
    /// The gate holds while an SLO has less error budget left than this.
    min_budget: f64,
    /// `None` when storage did not answer in time.
    actions: Option<&'a [ActionRecord]>,
}

pub async fn page(State(state): State<ApiState>) -> Html<String> {
    let s = build(&state);
    let recent = state.board.recent();
    let actions = tokio::time::timeout(STORAGE_WAIT, state.writer.store().actions(LAST_ACTIONS)).await;
    let actions = actions.ok().and_then(Result::ok);
    let view = View {
        s: &s,
        recent: &recent,
        min_budget: state.config.gate.min_error_budget_remaining,
        actions: actions.as_deref(),
    };
    Html(render(&view))
}

fn render(v: &View<'_>) -> String {
    let mut out = String::with_capacity(8 * 1024 + 2 * 1024 * v.s.checks.len());
    head(&mut out, v.s);
    out.push_str("<main>");
    gate(&mut out, v.s);
    checks::render(&mut out, v.s, v.recent);
    slos::render(&mut out, v.s, v.min_budget);
    guard::targets(&mut out, v.s);
    guard::incidents(&mut out, v.s);
    guard::actions(&mut out, v.actions, v.s.generated_at);
    out.push_str("</main>");
    let _ = write!(
        out,
        "<footer><p class=small>Guardian · the data of <a href=\"/api/v1/status\">/api/v1/status</a> · \
         reloads every {REFRESH_SECONDS} s</p></footer></body></html>"
    );
    out
}

fn head(out: &mut String, s: &StatusBody) {
    let env = t(s.environment);
    let (cls, verdict) = verdict(s.gate.decision);
    let _ = write!(
        out,
        "<!doctype html><html lang=en><head><meta charset=utf-8>\
         <meta name=viewport content=\"width=device-width,initial-scale=1\">\
         <meta http-equiv=refresh content={REFRESH_SECONDS}><title>{title}Guardian · {env}</title>\
         <style>{STYLE}</style></head><body><header><h1>Guardian · {env} <span class=\"badge {cls}\">{verdict}</span></h1>\
         <p class=meta>updated {at} UTC · guard {mode}{dry}{leader} · revenue at risk <b>€{risk:.2}</b></p>",
        title = if cls == "good" { "" } else { "NO-GO · " },
        at = s.generated_at.strftime("%H:%M:%S"),
        mode = s.guard.mode,
        dry = if s.guard.dry_run { " (dry run: decides, never patches)" } else { "" },
        leader = match (s.guard.leader, &s.guard.holder) {
            (true, _) => ", this replica acts".to_string(),
            (false, Some(h)) => format!(", {} acts", t(h)),
            (false, None) => String::new(),
        },
        risk = s.revenue_at_risk_eur,
    );
    let st = &s.storage;
    if !st.reachable || st.queued > 0 {
        let since = st.last_ok.map(|at| format!(" (last answered {})", when(at, s.generated_at))).unwrap_or_default();
        let why = st.last_error.as_deref().map(|w| format!(": {}", t(w))).unwrap_or_default();
        let state = if st.reachable { "storage is catching up" } else { "storage is not answering" };
        let _ = write!(out, "<p class=\"note warn\">{state}{since}{why}; {} writes queued</p>", st.queued);
    }
    out.push_str(
        "<nav><a href=#gate>Gate</a><a href=#checks>Checks</a><a href=#slos>SLOs</a><a href=#targets>Targets</a>\
         <a href=#incidents>Incidents</a><a href=#actions>Actions</a></nav></header>",
    );
}

fn gate(out: &mut String, s: &StatusBody) {
    let (cls, verdict) = verdict(s.gate.decision);
    let _ = write!(
        out,
        "<section id=gate><h2>Gate <small>{env}</small></h2><div class=\"card gate {cls}\"><div class=row>\
         <span class=verdict>{verdict}</span><span class=small>evaluated {at}</span></div>",
        env = t(&s.gate.environment),
        at = when(s.gate.evaluated_at, s.generated_at),
    );
    if s.gate.reasons.is_empty() {
        out.push_str("<p class=small>Nothing holds a deploy to this environment.</p>");
    } else {
        out.push_str("<ul class=reasons>");
        for r in &s.gate.reasons {
            let _ = write!(out, "<li><code>{}</code> {}</li>", t(&r.code), t(&r.message));
        }
        out.push_str("</ul>");
    }
    out.push_str("</div></section>");
}

fn verdict(v: Verdict) -> (&'static str, &'static str) {
    match v {
        Verdict::Go => ("good", "GO"),
        Verdict::NoGo => ("bad", "NO-GO"),
    }
}

/// A time of day (UTC), with the date when it is not today's, and the
/// full timestamp for machines and tooltips.
fn when(at: Timestamp, now: Timestamp) -> String {
    let same_day = at.strftime("%F").to_string() == now.strftime("%F").to_string();
    let shown = if same_day { at.strftime("%H:%M:%S") } else { at.strftime("%F %H:%M") };
    format!("<time datetime=\"{at}\" title=\"{at}\">{shown}</time>")
}

/// How long ago, in at most two units: `45s`, `2m 10s`, `3h 5m`, `2d 4h`.
fn ago(at: Timestamp, now: Timestamp) -> String {
    let secs = now.duration_since(at).as_secs().max(0);
    let (d, h, m, s) = (secs / 86_400, secs / 3_600 % 24, secs / 60 % 60, secs % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, _) => format!("{h}h {m}m"),
        _ => format!("{d}d {h}h"),
    }
}

/// Text from outside, ready for element content or a quoted attribute: any
/// `user:password@` of a URL masked, then escaped.
fn t(text: &str) -> String {
    e(&mask_userinfo(text))
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

/// Replaces the user info of every `scheme://user:pass@host` in free text
/// with `***`: a probe's reason may quote a redirect target, an error may
/// quote a URL, and either could carry credentials.
fn mask_userinfo(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.contains("://") || !text.contains('@') {
        return text.into();
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (before, after) = rest.split_at(i + 3);
        out.push_str(before);
        let authority_end = after.find(|c: char| c == '/' || c == '?' || c == '#' || c.is_whitespace());
        let authority = &after[..authority_end.unwrap_or(after.len())];
        match authority.rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &after[at..];
            }
            None => rest = after,
        }
    }
    out.push_str(rest);
    out.into()
}

#[cfg(test)]
mod tests;
