//! The demo's timeline: it drives the fault, watches the guardian through
//! its own state (board, incidents, gate), prints each event once with its
//! time, and judges whether the story played as it should.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;

use crate::app::App;
use crate::probe::CheckStatus;
use crate::sim::{Fault, Simulator};
use crate::units::format_duration;

const FAULT_PATH: &str = "/api/payments/health";
const FAULT_CHECK: &str = "payments-health";
const FAULT_LATENCY_MS: u64 = 3_500;
const TICK: Duration = Duration::from_millis(250);
/// A status line every this many ticks.
const LINE_EVERY: u32 = 8;

/// What the demo saw, in order.
#[derive(Debug, Default)]
pub struct Story {
    first_go: Option<Duration>,
    injected: Option<Duration>,
    went_bad: Option<Duration>,
    opened: Option<(Duration, String)>,
    no_go: Option<Duration>,
    cleared: Option<Duration>,
    closed: Option<Duration>,
    go_again: Option<Duration>,
    /// Other checks seen bad after their first result.
    others_bad: BTreeSet<String>,
}

impl Story {
    pub fn verdict(&self) -> u8 {
        let missing: Vec<&str> = [
            ("the gate never said go at the start", self.first_go),
            ("payments never turned bad", self.went_bad),
            ("no incident opened", self.opened.as_ref().map(|(t, _)| *t)),
            ("the gate never said no-go", self.no_go),
            ("the incident never closed", self.closed),
            ("the gate never said go again", self.go_again),
        ]
        .into_iter()
        .filter_map(|(what, seen)| seen.is_none().then_some(what))
        .collect();
        if !self.others_bad.is_empty() {
            let others: Vec<&str> = self.others_bad.iter().map(String::as_str).collect();
            println!("demo: FAILED — other checks went bad too: {}", others.join(", "));
            return 1;
        }
        if !missing.is_empty() {
            println!("demo: FAILED — {}", missing.join("; "));
            return 1;
        }
        let (bad, injected) = (self.went_bad.unwrap_or_default(), self.injected.unwrap_or_default());
        println!(
            "demo: ok — payments seen bad {} after the fault; incident opened and closed; gate no-go then go",
            format_duration(bad.saturating_sub(injected))
        );
        0
    }
}

fn event(t: Duration, text: &str) {
    println!("t+{:>5.1}s  >>> {text}", t.as_secs_f64());
}

pub async fn play(app: &App, sim: &Simulator, duration: Duration) -> Story {
    let start = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    let mut story = Story::default();
    let mut ticks = 0u32;
    while start.elapsed() < duration {
        tick.tick().await;
        let t = start.elapsed();
        drive_fault(&mut story, sim, t, duration);
        observe(&mut story, app, t);
        ticks += 1;
        if ticks.is_multiple_of(LINE_EVERY) {
            println!("t+{:>5.1}s  {}", t.as_secs_f64(), line(&app.board.snapshot()));
        }
    }
    story
}

/// Fault at a fifth of the story, cleared half-way.
fn drive_fault(story: &mut Story, sim: &Simulator, t: Duration, duration: Duration) {
    if story.injected.is_none() && t >= duration / 5 {
        let fault = Fault { path: FAULT_PATH.into(), latency_ms: FAULT_LATENCY_MS, status: None, error_rate: 0.0 };
        sim.faults().set(fault);
        story.injected = Some(t);
        event(t, &format!("injected {FAULT_LATENCY_MS}ms latency on {FAULT_PATH} (budget 3s)"));
    }
    if story.cleared.is_none() && t >= duration / 2 {
        sim.faults().clear();
        story.cleared = Some(t);
        event(t, "fault cleared");
    }
}

fn observe(story: &mut Story, app: &App, t: Duration) {
    let snap = app.board.snapshot();
    let bad_others = snap.iter().filter(|c| c.name != FAULT_CHECK && c.last.is_some() && !c.up);
    story.others_bad.extend(bad_others.map(|c| c.name.clone()));
    let payments_bad = snap.iter().any(|c| c.name == FAULT_CHECK && c.last.is_some() && !c.up);
    if story.injected.is_some() && story.went_bad.is_none() && payments_bad {
        story.went_bad = Some(t);
        event(t, &format!("{FAULT_CHECK} is BAD: a probe passed its 3s budget (it is still running)"));
    }
    if story.opened.is_none()
        && let Some(i) = app.history.open_incidents().into_iter().next()
    {
        event(t, &format!("incident {} opened on {}: {}", i.id, i.check, i.reason));
        story.opened = Some((t, i.id));
    }
    if let Some((_, id)) = &story.opened
        && story.closed.is_none()
        && let Some(i) = app.history.recent_incidents().into_iter().find(|i| &i.id == id && !i.is_open())
    {
        story.closed = Some(t);
        let lasted = i.ended_at.map(|e| e.duration_since(i.started_at).unsigned_abs()).unwrap_or_default();
        event(
            t,
            &format!(
                "incident closed after {}: worst {}, revenue at risk €{:.2}",
                format_duration(lasted),
                format_duration(i.worst_latency),
                i.revenue_at_risk_eur
            ),
        );
    }
    observe_gate(story, app, t);
}

fn observe_gate(story: &mut Story, app: &App, t: Duration) {
    let d = app.gatekeeper.decide(app.config.environment, None);
    let codes: Vec<&str> = d.reasons.iter().map(|r| r.code).collect();
    if d.go && story.first_go.is_none() && story.injected.is_none() {
        story.first_go = Some(t);
        event(t, "gate: GO");
    }
    if !d.go && story.opened.is_some() && story.no_go.is_none() {
        story.no_go = Some(t);
        event(t, &format!("gate: NO-GO ({})", codes.join(", ")));
    }
    if d.go && story.closed.is_some() && story.go_again.is_none() {
        story.go_again = Some(t);
        event(t, "gate: GO again");
    }
}

/// How many checks are good, and what is wrong.
fn line(snap: &[CheckStatus]) -> String {
    let good = snap.iter().filter(|c| c.up).count();
    let waiting = snap.iter().filter(|c| c.last.is_none()).count();
    let mut text = format!("{good}/{} good", snap.len());
    if waiting > 0 {
        text += &format!(", {waiting} waiting for a first probe");
    }
    for c in snap.iter().filter(|c| !c.up && c.last.is_some()) {
        let why = match (&c.last, c.over_budget_in_flight) {
            (_, true) => "a probe is over its budget, still running".to_string(),
            (Some(r), false) => format!("{}: {}", r.outcome.code(), r.reason),
            (None, false) => String::new(),
        };
        text += &format!("  ·  {}: {why}", c.name);
    }
    text
}

pub fn table(snap: &[CheckStatus]) -> String {
    let mut out = format!("{:<20} {:<6} {:>8} {:>8}  {}\n", "CHECK", "STATE", "LATENCY", "BUDGET", "LAST");
    for c in snap {
        let (latency, last) = match &c.last {
            Some(r) => (format_duration(r.latency), format!("{}: {}", r.outcome.code(), r.reason)),
            None => ("-".into(), "no result yet".into()),
        };
        let state = if c.up { "good" } else { "BAD" };
        let budget = format_duration(Duration::from_secs_f64(c.budget_seconds));
        out += &format!("{:<20} {:<6} {:>8} {:>8}  {}\n", c.name, state, latency, budget, last);
    }
    out
}
