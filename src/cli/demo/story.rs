//! The demo's timeline: it plays a bad release of nextgen-dashboard on the
//! simulated cluster, watches the guardian through its own state (board,
//! cluster calls, audit log, incidents, gate), prints each event once with
//! its time, and judges whether the story played as it should.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::app::App;
use crate::cluster::{MemoryCluster, TargetRef};
use crate::config::TargetKind;
use crate::probe::CheckStatus;
use crate::sim::{Fault, Simulator};
use crate::units::format_duration;

use super::inbox::Inbox;

const FAULT_PATH: &str = "/api/payments/health";
const FAULT_CHECK: &str = "payments-health";
const FAULT_LATENCY_MS: u64 = 3_500;
pub const GOOD: &str = "nextgen-dashboard:1.8.1";
const BAD: &str = "nextgen-dashboard:1.8.2";
const TICK: Duration = Duration::from_millis(100);
/// A status line every this many ticks.
const LINE_EVERY: u32 = 20;
/// How long the rolled-back release takes to be fully out again.
const ROLLOUT_TAKES: Duration = Duration::from_secs(2);

pub fn dashboard() -> TargetRef {
    TargetRef {
        kind: TargetKind::Deployment,
        namespace: "blueocean-nextgen-prod".into(),
        name: "nextgen-dashboard".into(),
    }
}

/// What the demo saw, in order.
#[derive(Debug, Default)]
pub struct Story {
    first_go: Option<Duration>,
    deployed: Option<Duration>,
    went_bad: Option<Duration>,
    paused: Option<Duration>,
    rolled_back: Option<Duration>,
    completed: Option<Duration>,
    notified: Option<Duration>,
    opened: Option<(Duration, String)>,
    no_go: Option<Duration>,
    closed: Option<Duration>,
    go_again: Option<Duration>,
    calls: Vec<String>,
    notices: usize,
    /// Other checks seen bad after their first result.
    others_bad: BTreeSet<String>,
}

impl Story {
    pub fn verdict(&self) -> u8 {
        let missing: Vec<&str> = [
            ("the gate never said go at the start", self.first_go),
            ("payments never turned bad", self.went_bad),
            ("the rollout was never paused", self.paused),
            ("the rollout was never rolled back", self.rolled_back),
            ("nobody was notified", self.notified),
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
        if self.calls.len() != 2 {
            println!("demo: FAILED — expected one pause and one rollback, the cluster saw {:?}", self.calls);
            return 1;
        }
        let since = |t: Option<Duration>| {
            format_duration(t.unwrap_or_default().saturating_sub(self.deployed.unwrap_or_default()))
        };
        println!(
            "demo: ok — bad release paused {} and rolled back {} after it went out; incident opened and closed; gate no-go then go",
            since(self.paused),
            since(self.rolled_back)
        );
        0
    }
}

fn event(t: Duration, text: &str) {
    println!("t+{:>5.1}s  >>> {text}", t.as_secs_f64());
}

pub async fn play(
    app: &App,
    sim: &Simulator,
    cluster: &Arc<MemoryCluster>,
    inbox: &Inbox,
    duration: Duration,
) -> Story {
    let start = Instant::now();
    let mut tick = tokio::time::interval(TICK);
    let mut story = Story::default();
    let mut ticks = 0u32;
    while start.elapsed() < duration {
        tick.tick().await;
        let t = start.elapsed();
        drive(&mut story, app, sim, cluster, start, t, duration);
        observe(&mut story, app, t);
        observe_inbox(&mut story, inbox, t);
        ticks += 1;
        if ticks.is_multiple_of(LINE_EVERY) {
            println!("t+{:>5.1}s  {}", t.as_secs_f64(), line(&app.board.snapshot()));
        }
    }
    story
}

/// Deploys the bad release at a fifth of the story; once the guardian has
/// rolled it back, the good release is healthy again and finishes rolling out.
fn drive(
    story: &mut Story,
    app: &App,
    sim: &Simulator,
    cluster: &MemoryCluster,
    start: Instant,
    t: Duration,
    duration: Duration,
) {
    let target = dashboard();
    if story.deployed.is_none() && t >= duration / 5 {
        if let Err(e) = cluster.start_rollout(&target, BAD) {
            event(t, &format!("cannot start the rollout: {e}"));
        }
        // 1.8.2 slows payments down: that is the bad release.
        sim.faults().set(Fault { latency_ms: FAULT_LATENCY_MS, ..Fault::on(FAULT_PATH) });
        story.deployed = Some(t);
        let check = app.config.checks.iter().find(|c| c.name == FAULT_CHECK);
        let bound = check.map_or(0.0, |c| crate::guard::check_detection_bound(&app.config, c).as_secs_f64());
        event(
            t,
            &format!(
                "deploying {BAD} — it makes {FAULT_PATH} take {FAULT_LATENCY_MS}ms (budget 3s); detection bound {bound:.1}s"
            ),
        );
    }
    let Some(deployed) = story.deployed else { return };
    let calls = cluster.calls_at();
    story.calls = calls.iter().map(|(_, c)| c.clone()).collect();
    let after = |at: Instant| format_duration(at.duration_since(start).saturating_sub(deployed));
    for (at, call) in &calls {
        let seen = at.duration_since(start);
        if call.starts_with("pause") && story.paused.is_none() {
            story.paused = Some(seen);
            event(seen, &format!("guardian PAUSED the rollout of {BAD}, {} after the fault began", after(*at)));
        }
        if call.starts_with("rollback") && story.rolled_back.is_none() {
            story.rolled_back = Some(seen);
            event(
                seen,
                &format!("guardian ROLLED BACK nextgen-dashboard to {GOOD}, {} after the fault began", after(*at)),
            );
            sim.faults().clear();
        }
    }
    if let Some(back) = story.rolled_back
        && story.completed.is_none()
        && t >= back + ROLLOUT_TAKES
    {
        let _ = cluster.complete_rollout(&target);
        story.completed = Some(t);
        event(t, &format!("{GOOD} is fully rolled out again"));
    }
    // Whatever the guardian did, the fault ends half-way so the story can finish.
    if story.rolled_back.is_none() && t >= duration / 2 && story.completed.is_none() {
        sim.faults().clear();
        let _ = cluster.complete_rollout(&target);
        story.completed = Some(t);
        event(t, "fault cleared by hand: the guardian did not roll back");
    }
}

fn observe(story: &mut Story, app: &App, t: Duration) {
    let snap = app.board.snapshot();
    let bad_others = snap.iter().filter(|c| c.name != FAULT_CHECK && c.last.is_some() && !c.up);
    story.others_bad.extend(bad_others.map(|c| c.name.clone()));
    let payments_bad = snap.iter().any(|c| c.name == FAULT_CHECK && c.last.is_some() && !c.up);
    if story.deployed.is_some() && story.went_bad.is_none() && payments_bad {
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

/// What reached the business team's webhook, once each.
fn observe_inbox(story: &mut Story, inbox: &Inbox, t: Duration) {
    let messages = inbox.messages();
    for m in messages.iter().skip(story.notices) {
        if m["action"] != "not_acted" {
            story.notified.get_or_insert(t);
        }
        let summary = m["summary"].as_str().unwrap_or_default();
        event(t, &format!("business team notified ({}): {summary}", m["event"].as_str().unwrap_or_default()));
    }
    story.notices = story.notices.max(messages.len());
}

fn observe_gate(story: &mut Story, app: &App, t: Duration) {
    let d = app.gatekeeper.decide(app.config.environment, None);
    let codes: Vec<&str> = d.reasons.iter().map(|r| r.code).collect();
    if d.go && story.first_go.is_none() && story.deployed.is_none() {
        story.first_go = Some(t);
        event(t, "gate: GO");
    }
    if !d.go && story.opened.is_some() && story.no_go.is_none() {
        story.no_go = Some(t);
        event(t, &format!("gate: NO-GO ({})", codes.join(", ")));
    }
    if d.go && story.closed.is_some() && story.completed.is_some() && story.go_again.is_none() {
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
