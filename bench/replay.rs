//! Detection quality at scale: thousands of simulated rollouts replayed
//! through the real guard, on a manual clock (no real time, no network).
//!
//! `cargo bench --bench replay -- [--seed 9] [--rollouts 1000] [--onset-within 540]
//!  [--error-rate 0.002] [--timeout-rate 0.001] [--median-share 0.1] [--explain]`
//!
//! Plays `--rollouts` healthy-but-noisy rollouts and as many bad ones of
//! nextgen-dashboard, with `examples/nextgen.yaml` as it is (its five
//! guarding checks with their intervals, budgets and timeouts, `guard.breach`
//! 3 of 5 with 250 ms confirmations, `gate.stale_after` 30 s). Each rollout
//! gets a fresh guard: 30 s of probing unarmed, then the rollout starts and
//! stays in progress for 10 minutes, then completes — unless the guard paused
//! it: a paused Deployment makes no progress, so it stays armed, and is
//! played 2 minutes past its end.
//!
//! Real code, driven the way the running guardian drives it: `Evidence` (the
//! probe observer that turns probe events into triggers) and its `Judges`
//! (`guard::CheckJudge`, the breach rule), `Targets` (arming from the
//! cluster's watch, through its real `watch_loop`, and the `Confirmations`
//! flags it sets), and the `Actuator`'s worker (`guard::decide`, pause, then
//! rollback once) acting on a `MemoryCluster`; a `ManualClock` and tokio's
//! paused clock move together, event by event.
//!
//! Modelled, because it cannot be driven without HTTP: the probe scheduler
//! (`probe::Scheduler` needs the concrete HTTP `Prober`, and its confirmation
//! logic is private) and the prober. The model follows `scheduler.rs` and
//! `http.rs` step by step: each check probed at its interval from a random
//! phase; a regular probe of an armed check (as the real `Confirmations`
//! says) that is not good within `Confirmations::interval` brings
//! `Confirmations::count` confirmation probes forward, the first at once and
//! one every interval after, unless some are already on their way; regular
//! probes are skipped beyond ceil(timeout / interval) + 1 in flight,
//! confirmations never; a probe still running when its budget elapses is
//! reported `OverBudget` at that moment, and its end says whether it
//! answered; no answer within the timeout is a failure without a status.
//! Outcomes follow `probe::outcome::judge` (status, then latency against the
//! budget; bodies always meet their expectations). The stale loop's two calls
//! (`look_for_missing_data` every 500 ms, `raise_standing_breaches` every
//! 10th tick) are made at its exact ticks. Not modelled: the per-host rate
//! limit (never reached here), `no_drop` baselines, and the time a Kubernetes
//! API takes to answer (the in-memory cluster answers at once, so "pause
//! decided" is the moment the pause call is sent).
//!
//! Noise, on every guarding check: latency lognormal with its p50 at
//! `--median-share` of the budget and its p99 at 70 % of it; independently
//! per probe, a 503 with probability `--error-rate` (as slow as a healthy
//! answer) and no answer at all until the timeout with probability
//! `--timeout-rate`. A latency past the timeout is no answer too.
//!
//! Bad rollouts alternate two faults on payments-health, beginning at a
//! uniform random moment within the first `--onset-within` seconds of the
//! rollout: answers 3.3–3.7 s long (3.5 s on the 3 s budget, ± 0.2 s), or a
//! 503 with a probability drawn per rollout from 20 % to 100 % (as slow as a
//! healthy answer). Probes started after the rollback are healthy again (the
//! old pods answer); the rollback's own rollout completes 30 s later.
//!
//! Exits 1 when a goal is missed: a rollback during a healthy rollout (or
//! before the fault of a bad one began), a bad rollout not rolled back, a
//! second rollback in one rollout, or the harness lagging behind the guard.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use guardian::actuator::{self, Actuator};
use guardian::clock::{Clock, ManualClock};
use guardian::cluster::{Cluster, MemoryCluster, TargetRef};
use guardian::config::{self, Check, Config, GuardMode, MapEnv};
use guardian::evidence::{Evidence, Judges};
use guardian::gatekeeper::Gatekeeper;
use guardian::guard::{Standing, Trigger, check_detection_bound};
use guardian::history::History;
use guardian::leader::Solo;
use guardian::metrics::Metrics;
use guardian::notify::LogNotifier;
use guardian::probe::{Baselines, Board, Confirmations, Outcome, ProbeEvent, ProbeObserver, ProbeResult, SkipReason};
use guardian::store::memory::MemoryStore;
use guardian::store::{QueueConfig, StoreWriter};
use guardian::targets::{Effects, Targets};
use guardian::units::format_duration;
use jiff::{SignedDuration, Timestamp};
use rand::rngs::Xoshiro256PlusPlus;
use rand::{RngExt, SeedableRng};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

const CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/nextgen.yaml");
const TARGET: &str = "nextgen-dashboard";
const FAULTY: &str = "payments-health";
/// Probing before the rollout starts (unarmed).
const LEAD_IN: Duration = Duration::from_secs(30);
/// How long each rollout is in progress.
const ROLLOUT: Duration = Duration::from_secs(600);
/// How long the rollback's own rollout takes to complete.
const ROLLBACK_SETTLES: Duration = Duration::from_secs(30);
/// How much longer a rollout the guard paused is played past its end.
const PAUSED_WATCH: Duration = Duration::from_secs(120);
/// The stale loop's tick (`evidence::STALE_EVERY`) and its re-raise period in ticks.
const STALE_EVERY: Duration = Duration::from_millis(500);
const RAISE_AGAIN_EVERY: u64 = 10;
/// z of the 99th percentile of a standard normal.
const Z99: f64 = 2.326_347_874_040_841;
/// Yields after each event, so the actuator's worker and the watch loop run
/// within the same simulated instant (checked: see `Played::lagged`).
const SETTLE_YIELDS: usize = 4;
/// Probe events kept per check for `--explain`.
const EXPLAIN_LAST: usize = 8;
/// False actions printed in full.
const EXPLAIN_AT_MOST: usize = 12;

struct Args {
    seed: u64,
    rollouts: usize,
    onset_within: Duration,
    noise: Noise,
    /// Harness self-check: with too few yields the worker lags, and `lagged` says so.
    settle_yields: usize,
    explain: bool,
    /// Overrides of `guard.breach`, to compare rules.
    window: Option<u32>,
    max_bad: Option<u32>,
    /// Plays only this set (`healthy` or `bad`); both by default.
    only: Option<String>,
}

#[derive(Clone, Copy)]
struct Noise {
    median_share: f64,
    sigma: f64,
    error_rate: f64,
    timeout_rate: f64,
}

fn args() -> anyhow::Result<Args> {
    let args: Vec<String> = std::env::args().collect();
    let value = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
    fn parse<T: std::str::FromStr>(name: &str, v: Option<&String>, default: T) -> anyhow::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        v.map_or(Ok(default), |v| v.parse().map_err(|e| anyhow::anyhow!("{name} {v}: {e}")))
    }
    let median_share: f64 = parse("--median-share", value("--median-share"), 0.1)?;
    if !(median_share > 0.0 && median_share < 0.7) {
        bail!("--median-share must be between 0 and 0.7 (the p99 is at 0.7 of the budget)");
    }
    let onset_within = Duration::from_secs(parse("--onset-within", value("--onset-within"), 540)?);
    if onset_within > ROLLOUT {
        bail!("--onset-within is at most {} s", ROLLOUT.as_secs());
    }
    Ok(Args {
        seed: parse("--seed", value("--seed"), 9)?,
        rollouts: parse("--rollouts", value("--rollouts"), 1000)?,
        onset_within,
        noise: Noise {
            median_share,
            sigma: (0.7 / median_share).ln() / Z99,
            error_rate: parse("--error-rate", value("--error-rate"), 0.002)?,
            timeout_rate: parse("--timeout-rate", value("--timeout-rate"), 0.001)?,
        },
        settle_yields: parse("--settle-yields", value("--settle-yields"), SETTLE_YIELDS)?,
        explain: args.iter().any(|a| a == "--explain"),
        window: value("--window").map(|v| v.parse()).transpose().context("--window")?,
        max_bad: value("--max-bad").map(|v| v.parse()).transpose().context("--max-bad")?,
        only: value("--only").cloned(),
    })
}

/// What every rollout is played with.
struct Ctx {
    config: Arc<Config>,
    /// Indexes into `config.checks` of the target's guarding checks.
    guarding: Vec<usize>,
    /// Index into `config.checks` of payments-health.
    faulty: usize,
    noise: Noise,
    yields: usize,
    explain: bool,
}

fn main() -> anyhow::Result<()> {
    let args = args()?;
    let mut config =
        config::load(std::path::Path::new(CONFIG), &MapEnv::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The example ships with the guard off; everything else is as written.
    config.guard.mode = GuardMode::Simulated;
    if let Some(w) = args.window {
        config.guard.breach_window = w;
    }
    if let Some(m) = args.max_bad {
        config.guard.breach_max_bad = m;
    }
    let (play_healthy, play_bad) = match args.only.as_deref() {
        None => (true, true),
        Some("healthy") => (true, false),
        Some("bad") => (false, true),
        Some(other) => bail!("--only {other}: healthy or bad"),
    };
    let config = Arc::new(config);
    let target = config.guard.targets.iter().find(|t| t.name == TARGET).context("nextgen-dashboard in the example")?;
    let guarding: Vec<usize> = target
        .checks
        .iter()
        .map(|name| config.checks.iter().position(|c| &c.name == name).context("guarding check"))
        .collect::<anyhow::Result<_>>()?;
    let faulty = config.checks.iter().position(|c| c.name == FAULTY).context("payments-health")?;
    let ctx = Ctx { config, guarding, faulty, noise: args.noise, yields: args.settle_yields, explain: args.explain };

    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build()?;
    // The bench's own run time: tokio's clock is paused (simulated), so only the real one tells.
    #[allow(clippy::disallowed_types)]
    let started = std::time::Instant::now();
    let (healthy, bad) = runtime.block_on(async {
        let mut healthy = Vec::with_capacity(args.rollouts);
        let mut bad = Vec::with_capacity(args.rollouts);
        for i in (0..args.rollouts).filter(|_| play_healthy) {
            let mut rng = rng(args.seed, 0, i);
            healthy.push(play(&ctx, Scenario::Healthy, &mut rng).await?);
        }
        for i in (0..args.rollouts).filter(|_| play_bad) {
            let mut rng = rng(args.seed, 1, i);
            let onset = args.onset_within.mul_f64(rng.random::<f64>());
            let fault = if i % 2 == 0 { Fault::Slow } else { Fault::Errors { rate: 0.2 + 0.8 * rng.random::<f64>() } };
            let played = play(&ctx, Scenario::Bad { fault, onset }, &mut rng).await?;
            bad.push(Bad { fault, onset, played });
        }
        anyhow::Ok((healthy, bad))
    })?;
    if !report(&args, &ctx, &healthy, &bad, started.elapsed()) {
        std::process::exit(1);
    }
    Ok(())
}

/// One independent, reproducible stream per (set, rollout).
fn rng(seed: u64, set: u64, i: usize) -> Xoshiro256PlusPlus {
    let mix = seed ^ set.wrapping_mul(0xA076_1D64_78BD_642F) ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    Xoshiro256PlusPlus::seed_from_u64(mix)
}

#[derive(Debug, Clone, Copy)]
enum Fault {
    /// 3.5 s answers (± 0.2 s) on the 3 s budget.
    Slow,
    /// A 503 with this probability.
    Errors { rate: f64 },
}

#[derive(Debug, Clone, Copy)]
enum Scenario {
    Healthy,
    /// `onset` counts from the start of the rollout.
    Bad {
        fault: Fault,
        onset: Duration,
    },
}

struct Bad {
    fault: Fault,
    onset: Duration,
    played: Played,
}

/// What one rollout showed. Times count from the start of the rollout.
#[derive(Debug, Default)]
struct Played {
    pauses: Vec<Duration>,
    rollbacks: Vec<Duration>,
    probes: u64,
    confirmations: u64,
    skipped: u64,
    over_budget: u64,
    no_answer: u64,
    errors: u64,
    /// Moments the guard called for an action (its judges said so, on an
    /// armed target) that the cluster did not show by the end of the same
    /// simulated instant: the harness lagging behind the guard (must be 0).
    lagged: u64,
    /// `--explain`: each action with the probes behind it.
    notes: Vec<(Duration, String)>,
}

/// The guard as `App::build` wires it, on a manual clock and an in-memory cluster.
struct Rig {
    clock: Arc<ManualClock>,
    cluster: Arc<MemoryCluster>,
    targets: Arc<Targets>,
    confirmations: Arc<Confirmations>,
    judges: Arc<Judges>,
    evidence: Arc<Evidence>,
    stop: CancellationToken,
    tracker: TaskTracker,
}

impl Rig {
    fn build(config: &Arc<Config>, start: Timestamp) -> anyhow::Result<Self> {
        let clock = Arc::new(ManualClock::new(start));
        let dyn_clock: Arc<dyn Clock> = clock.clone();
        let writer = StoreWriter::new(Arc::new(MemoryStore::new()), dyn_clock.clone(), QueueConfig::default());
        let board = Arc::new(Board::new(&config.checks, dyn_clock.clone()));
        let history = Arc::new(History::new(config, dyn_clock.clone(), writer.clone()));
        let gatekeeper =
            Arc::new(Gatekeeper::new(config.clone(), board, history.clone(), dyn_clock.clone(), writer.clone()));
        let metrics = Arc::new(Metrics::new(config)?);
        let g = &config.guard;
        let confirmations = Arc::new(Confirmations::new(&config.checks, g.confirm_interval, g.breach_max_bad));
        let effects = Effects {
            confirmations: confirmations.clone(),
            baselines: Arc::new(Baselines::new()),
            gatekeeper,
            metrics: metrics.clone(),
            writer: writer.clone(),
        };
        let targets = Arc::new(Targets::new(config, dyn_clock.clone(), effects));
        let cluster = Arc::new(MemoryCluster::new());
        for t in &g.targets {
            cluster.add(&TargetRef::of(t), &format!("{}:stable", t.name));
        }
        let judges = Arc::new(Judges::new(config));
        let actuator = Arc::new(Actuator::new(actuator::Parts {
            config: config.clone(),
            cluster: cluster.clone(),
            targets: targets.clone(),
            leadership: Arc::new(Solo::new()),
            history,
            notifier: LogNotifier::new(writer.clone()),
            metrics,
            writer,
            clock: dyn_clock.clone(),
            judges: judges.clone(),
        }));
        let evidence = Arc::new(Evidence::new(config, judges.clone(), targets.clone(), actuator.clone(), dyn_clock));
        let (stop, tracker) = (CancellationToken::new(), TaskTracker::new());
        tracker.spawn(targets.clone().watch_loop(cluster.clone(), stop.clone()));
        actuator.start(&stop, &tracker);
        Ok(Self { clock, cluster, targets, confirmations, judges, evidence, stop, tracker })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Ev {
    /// A regular probe of check (index into the rollout's checks) falls due.
    Regular(usize),
    Confirmation(usize),
    /// A watched probe (index into the rollout's probes) reaches its confirm interval still running.
    Watch(usize),
    OverBudget(usize),
    Finish(usize),
    /// The stale loop's tick number k.
    Tick(u64),
    Arm,
    Onset,
    Complete,
    End,
}

struct CheckState {
    check: Check,
    max_in_flight: u32,
    in_flight: u32,
    seq: u64,
    confirming_until: Option<Duration>,
    /// The last probe events, for `--explain`: (when, probe).
    recent: VecDeque<(Duration, usize)>,
}

struct Probe {
    check: usize,
    confirming: bool,
    seq: u64,
    started: Duration,
    /// When it ends: its latency, or the timeout.
    end: Duration,
    /// `Some` with the status when an answer came within the timeout.
    status: Option<u16>,
    watched: bool,
}

/// Simulated time and the event queue of one rollout.
struct Sim {
    now: Duration,
    base: Timestamp,
    next: u64,
    queue: BinaryHeap<Reverse<(Duration, u64, Ev)>>,
}

impl Sim {
    fn at(&mut self, when: Duration, ev: Ev) {
        self.next += 1;
        self.queue.push(Reverse((when, self.next, ev)));
    }

    fn stamp(&self, t: Duration) -> Timestamp {
        let d = SignedDuration::try_from(t).unwrap_or(SignedDuration::MAX);
        self.base.saturating_add(d).unwrap_or(self.base)
    }
}

async fn settle(yields: usize) {
    for _ in 0..yields {
        tokio::task::yield_now().await;
    }
}

async fn play(ctx: &Ctx, scenario: Scenario, rng: &mut Xoshiro256PlusPlus) -> anyhow::Result<Played> {
    let config = &ctx.config;
    let base: Timestamp = "2026-11-26T12:00:00Z".parse()?;
    let rig = Rig::build(config, base)?;
    let target = TargetRef::of(config.guard.targets.iter().find(|t| t.name == TARGET).context("target")?);
    let mut sim = Sim { now: Duration::ZERO, base, next: 0, queue: BinaryHeap::new() };
    let mut checks: Vec<CheckState> = ctx
        .guarding
        .iter()
        .map(|&i| {
            let check = config.checks[i].clone();
            CheckState {
                max_in_flight: max_in_flight(check.timeout, check.interval),
                check,
                in_flight: 0,
                seq: 0,
                confirming_until: None,
                recent: VecDeque::new(),
            }
        })
        .collect();
    let faulty = ctx.guarding.iter().position(|&i| i == ctx.faulty).context("payments-health guards the target")?;
    for (i, c) in checks.iter().enumerate() {
        sim.at(c.check.interval.mul_f64(rng.random::<f64>()), Ev::Regular(i));
    }
    sim.at(Duration::ZERO, Ev::Tick(0));
    sim.at(LEAD_IN, Ev::Arm);
    sim.at(LEAD_IN + ROLLOUT, Ev::Complete);
    sim.at(LEAD_IN + ROLLOUT, Ev::End);
    if let Scenario::Bad { onset, .. } = scenario {
        sim.at(LEAD_IN + onset, Ev::Onset);
    }
    settle(ctx.yields).await;

    let mut probes: Vec<Probe> = Vec::new();
    let mut played = Played::default();
    let mut fault: Option<Fault> = None;
    let mut rolled_back = false;
    let mut extended = false;
    let mut armed_at: Option<tokio::time::Instant> = None;
    let mut armed_since: Option<Timestamp> = None;
    let mut calls_seen = 0;

    while let Some(Reverse((when, _, ev))) = sim.queue.pop() {
        if when > sim.now {
            let step = when - sim.now;
            sim.now = when;
            rig.clock.set(sim.stamp(when));
            tokio::time::advance(step).await;
        }
        let now = sim.now;
        match ev {
            Ev::Regular(c) => {
                let interval = checks[c].check.interval;
                sim.at(when + interval, Ev::Regular(c));
                let plan = draw(&checks[c].check, c == faulty, fault, &ctx.noise, rng);
                launch(&rig, &mut sim, &mut checks[c], &mut probes, &mut played, c, false, plan);
            }
            Ev::Confirmation(c) => {
                let plan = draw(&checks[c].check, c == faulty, fault, &ctx.noise, rng);
                launch(&rig, &mut sim, &mut checks[c], &mut probes, &mut played, c, true, plan);
            }
            Ev::Watch(p) => {
                let c = probes[p].check;
                suspect(&rig, &mut sim, &mut checks[c], c);
            }
            Ev::OverBudget(p) => {
                let probe = &probes[p];
                let s = &mut checks[probe.check];
                if ctx.explain {
                    remember(&mut s.recent, now, p);
                }
                let started_at = sim.stamp(probe.started);
                rig.evidence.on_event(ProbeEvent::OverBudget { check: &s.check.name, started_at });
            }
            Ev::Finish(p) => {
                let probe = &probes[p];
                let c = probe.check;
                let s = &mut checks[c];
                s.in_flight -= 1;
                if ctx.explain {
                    remember(&mut s.recent, now, p);
                }
                let result = result_of(probe, &s.check, sim.stamp(probe.started));
                let step = rig.confirmations.interval(s.check.interval);
                // Not good, and within the confirm interval: confirmations at once.
                if probe.watched && probe.end - probe.started <= step && !result.outcome.is_good() {
                    suspect(&rig, &mut sim, s, c);
                }
                rig.evidence.on_event(ProbeEvent::Finished(&result));
            }
            Ev::Tick(k) => {
                rig.evidence.look_for_missing_data();
                if (k + 1).is_multiple_of(RAISE_AGAIN_EVERY) {
                    rig.evidence.raise_standing_breaches();
                }
                sim.at(STALE_EVERY * (k as u32 + 1), Ev::Tick(k + 1));
            }
            Ev::Arm => {
                rig.cluster.start_rollout(&target, &format!("{TARGET}:new"))?;
                settle(ctx.yields).await;
                let armed = rig.targets.armed().into_iter().find(|(t, _, _)| *t == target);
                let Some((_, _, since)) = armed else { bail!("the rollout did not arm the guard") };
                armed_since = Some(since);
                armed_at = Some(tokio::time::Instant::now());
            }
            Ev::Onset => {
                if let Scenario::Bad { fault: f, .. } = scenario
                    && !rolled_back
                {
                    fault = Some(f);
                }
            }
            Ev::Complete => {
                // A paused Deployment makes no progress: it stays rolling out,
                // and the guard armed, until someone resumes or undoes it.
                if !rig.cluster.rollout(&target).await?.paused {
                    rig.cluster.complete_rollout(&target)?;
                }
            }
            Ev::End => {
                // A paused rollout has not ended: the guard goes on watching it
                // for a while, as it would until someone resumes or undoes it.
                if !extended && !rolled_back && rig.cluster.rollout(&target).await?.paused {
                    extended = true;
                    sim.at(now + PAUSED_WATCH, Ev::End);
                } else {
                    break;
                }
            }
        }
        settle(ctx.yields).await;

        // What the guard sent, and when.
        let calls = rig.cluster.calls_at();
        for (at, call) in calls.iter().skip(calls_seen) {
            let since_arm = armed_at.map_or(Duration::ZERO, |a| at.saturating_duration_since(a));
            if ctx.explain
                && let Some(since) = armed_since
            {
                for s in &checks {
                    if rig.judges.standing_since(&s.check.name, since) == Standing::Fine {
                        continue;
                    }
                    let what: Vec<String> =
                        s.recent.iter().map(|(t, p)| explain(&probes[*p], &s.check, *t, LEAD_IN)).collect();
                    let action = call.split(' ').next().unwrap_or("?");
                    played.notes.push((since_arm, format!("{action} on {}: {}", s.check.name, what.join("; "))));
                }
            }
            if call.starts_with("pause") {
                played.pauses.push(since_arm);
            } else if call.starts_with("rollback") {
                played.rollbacks.push(since_arm);
                if !rolled_back {
                    rolled_back = true;
                    // The old pods answer from now on; the rollback's rollout completes later.
                    fault = None;
                    sim.at(now + ROLLBACK_SETTLES, Ev::Complete);
                }
            }
        }
        calls_seen = calls.len();

        // The worker must have acted within this instant on whatever calls for it.
        if let Some(since) = armed_since
            && !rolled_back
        {
            let state = rig.cluster.rollout(&target).await?;
            if state.rolling_out {
                for s in &checks {
                    match rig.judges.trigger(&s.check.name, since) {
                        Some(Trigger::Breach) if played.rollbacks.is_empty() => played.lagged += 1,
                        Some(Trigger::Suspected) if !state.paused => played.lagged += 1,
                        _ => {}
                    }
                }
            }
        }
    }
    rig.stop.cancel();
    rig.tracker.close();
    settle(ctx.yields).await;
    Ok(played)
}

/// How one probe will go: its latency and status, `None` for no answer.
#[derive(Debug, Clone, Copy)]
struct Plan {
    latency: Duration,
    status: Option<u16>,
}

fn normal(rng: &mut Xoshiro256PlusPlus) -> f64 {
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn draw(check: &Check, faulty: bool, fault: Option<Fault>, noise: &Noise, rng: &mut Xoshiro256PlusPlus) -> Plan {
    // Anything past the timeout is cut there anyway.
    let share = (noise.median_share * (noise.sigma * normal(rng)).exp()).min(1_000.0);
    let latency = check.budget.mul_f64(share);
    let u = rng.random::<f64>();
    if faulty {
        match fault {
            Some(Fault::Slow) => {
                let slow = Duration::from_millis(3_300) + Duration::from_millis(400).mul_f64(rng.random());
                return Plan { latency: slow, status: Some(200) };
            }
            Some(Fault::Errors { rate }) if rng.random::<f64>() < rate => {
                return Plan { latency, status: Some(503) };
            }
            _ => {}
        }
    }
    if u < noise.error_rate {
        Plan { latency, status: Some(503) }
    } else if u < noise.error_rate + noise.timeout_rate {
        Plan { latency: check.timeout, status: None }
    } else {
        Plan { latency, status: Some(200) }
    }
}

/// `Scheduler::launch` and `Prober::measure`, on the event queue.
#[allow(clippy::too_many_arguments)]
fn launch(
    rig: &Rig,
    sim: &mut Sim,
    s: &mut CheckState,
    probes: &mut Vec<Probe>,
    played: &mut Played,
    c: usize,
    confirming: bool,
    plan: Plan,
) {
    // A confirmation may exceed the in-flight cap: it exists because the others are slow.
    if !confirming && s.in_flight >= s.max_in_flight {
        played.skipped += 1;
        rig.evidence.on_event(ProbeEvent::Skipped { check: &s.check.name, reason: SkipReason::TooManyInFlight });
        return;
    }
    s.seq += 1;
    s.in_flight += 1;
    played.probes += 1;
    played.confirmations += u64::from(confirming);
    let answered = plan.status.is_some() && plan.latency < s.check.timeout;
    let took = if answered { plan.latency } else { s.check.timeout };
    let status = if answered { plan.status } else { None };
    match status {
        None => played.no_answer += 1,
        Some(503) => played.errors += 1,
        Some(_) => {}
    }
    if took > s.check.budget {
        played.over_budget += 1;
    }
    // Only regular probes of a watched check may become suspect.
    let watched = !confirming && rig.confirmations.is_armed(&s.check.name);
    let p = probes.len();
    let started = sim.now;
    probes.push(Probe { check: c, confirming, seq: s.seq, started, end: started + took, status, watched });
    // Both selects are biased towards the answer: one at the very deadline wins.
    if took > s.check.budget {
        sim.at(started + s.check.budget, Ev::OverBudget(p));
    }
    let step = rig.confirmations.interval(s.check.interval);
    if watched && took > step {
        sim.at(started + step, Ev::Watch(p));
    }
    sim.at(started + took, Ev::Finish(p));
}

/// `Scheduler::confirm`: confirmation probes now and every interval after,
/// unless some are already on their way.
fn suspect(rig: &Rig, sim: &mut Sim, s: &mut CheckState, c: usize) {
    let now = sim.now;
    if s.confirming_until.is_some_and(|until| until > now) {
        return;
    }
    let step = rig.confirmations.interval(s.check.interval);
    let count = rig.confirmations.count();
    for k in 0..count {
        sim.at(now + step * k, Ev::Confirmation(c));
    }
    s.confirming_until = Some(now + step * count);
}

/// `probe::outcome::judge` for a body that meets every expectation.
fn result_of(probe: &Probe, check: &Check, started_at: Timestamp) -> ProbeResult {
    let latency = probe.end - probe.started;
    let (outcome, reason) = match probe.status {
        None => (Outcome::Failed, format!("no complete answer within the {} timeout", format_duration(check.timeout))),
        Some(200) if latency > check.budget => (
            Outcome::Slow,
            format!("answered in {}, over the {} budget", format_duration(latency), format_duration(check.budget)),
        ),
        Some(200) => (Outcome::Ok, "200".to_string()),
        Some(status) => (Outcome::Failed, format!("status {status}, expected 200")),
    };
    ProbeResult {
        check: check.name.clone(),
        seq: probe.seq,
        started_at,
        latency,
        ttfb: probe.status.map(|_| latency),
        status: probe.status,
        outcome,
        reason,
        over_budget_early: latency > check.budget,
    }
}

fn remember(recent: &mut VecDeque<(Duration, usize)>, at: Duration, probe: usize) {
    recent.push_back((at, probe));
    while recent.len() > EXPLAIN_LAST {
        recent.pop_front();
    }
}

/// One probe event in words, times in seconds since arming.
fn explain(p: &Probe, check: &Check, at: Duration, arm: Duration) -> String {
    let secs = |t: Duration| t.as_secs_f64() - arm.as_secs_f64();
    let took = p.end - p.started;
    let kind = if p.confirming { "confirmation" } else { "probe" };
    let what = if at < p.end {
        "past its budget".to_string()
    } else {
        match p.status {
            None => "no answer".into(),
            Some(200) if took > check.budget => format!("200 in {}", format_duration(took)),
            Some(200) => "ok".into(),
            Some(s) => format!("{s} in {}", format_duration(took)),
        }
    };
    format!("{kind} of {:.2} s: {what} at {:.2} s", secs(p.started), secs(at))
}

/// `scheduler::max_in_flight`.
fn max_in_flight(timeout: Duration, interval: Duration) -> u32 {
    let overlap = timeout.as_secs_f64() / interval.as_secs_f64().max(1e-3);
    (overlap.ceil() as u32).saturating_add(1)
}

fn quantiles(v: &mut [f64]) -> [f64; 4] {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v.get(((v.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
    [q(0.50), q(0.95), q(0.99), v.last().copied().unwrap_or(f64::NAN)]
}

/// Prints the tables; whether every goal was met.
fn report(args: &Args, ctx: &Ctx, healthy: &[Played], bad: &[Bad], took: Duration) -> bool {
    let (config, n, m) = (&ctx.config, healthy.len(), bad.len());
    let names: Vec<&str> = ctx.guarding.iter().map(|&i| config.checks[i].name.as_str()).collect();
    let p = &config.checks[ctx.faulty];
    let g = &config.guard;
    let hours = (n + m) as f64 * (LEAD_IN + ROLLOUT).as_secs_f64() / 3600.0;
    println!(
        "replay: seed {}, {n} healthy + {m} bad rollouts of {} min each ({hours:.0} simulated hours) in {:.1} s",
        args.seed,
        ROLLOUT.as_secs() / 60,
        took.as_secs_f64()
    );
    println!(
        "guard: {TARGET} guarded by {}; breach {} of {}, confirmations every {}; {FAULTY}: interval {}, budget {}, timeout {}, detection bound {}",
        names.join(", "),
        g.breach_max_bad,
        g.breach_window,
        format_duration(g.confirm_interval),
        format_duration(p.interval),
        format_duration(p.budget),
        format_duration(p.timeout),
        format_duration(check_detection_bound(config, p))
    );
    println!(
        "noise on every guarding check: latency lognormal, p50 at {:.0} % and p99 at 70 % of its budget (sigma {:.3}); per probe, 503 {:.2} %, no answer {:.2} %",
        args.noise.median_share * 100.0,
        args.noise.sigma,
        args.noise.error_rate * 100.0,
        args.noise.timeout_rate * 100.0
    );
    let sum = |f: fn(&Played) -> u64| healthy.iter().chain(bad.iter().map(|b| &b.played)).map(f).sum::<u64>();
    let hsum = |f: fn(&Played) -> u64| healthy.iter().map(f).sum::<u64>();
    let pct = |a: u64, b: u64| 100.0 * a as f64 / b.max(1) as f64;
    let hp = hsum(|p| p.probes);
    println!(
        "healthy rollouts as probed: {hp} probes, {:.2} % over budget, {:.2} % 503, {:.2} % without an answer",
        pct(hsum(|p| p.over_budget), hp),
        pct(hsum(|p| p.errors), hp),
        pct(hsum(|p| p.no_answer), hp)
    );
    let lagged = sum(|p| p.lagged);
    println!(
        "all rollouts: {} probes, {} of them confirmations; {} regular probes skipped (too many in flight); harness lag {lagged}",
        sum(|p| p.probes),
        sum(|p| p.confirmations),
        sum(|p| p.skipped)
    );

    // False actions: healthy rollouts, and bad ones before their fault began.
    let early =
        |b: &Bad| (b.played.pauses.iter().any(|t| *t < b.onset), b.played.rollbacks.iter().any(|t| *t < b.onset));
    let h_paused = healthy.iter().filter(|p| !p.pauses.is_empty()).count();
    let h_rolled = healthy.iter().filter(|p| !p.rollbacks.is_empty()).count();
    let b_paused = bad.iter().filter(|b| early(b).0).count();
    let b_rolled = bad.iter().filter(|b| early(b).1).count();
    let before_onset: f64 = bad.iter().map(|b| b.onset.as_secs_f64() / 60.0).sum();
    println!("\n| rollouts | armed time | false pauses | false rollbacks | goal |");
    println!("|---|---:|---:|---:|---:|");
    if n > 0 {
        println!(
            "| healthy-but-noisy | {n} × {} min | {h_paused} | {h_rolled} | 0 rollbacks |",
            ROLLOUT.as_secs() / 60
        );
    }
    if m > 0 {
        println!("| bad, before their fault began | {before_onset:.0} min | {b_paused} | {b_rolled} | 0 rollbacks |");
    }

    // Bad rollouts: misses and time to confirm, per kind. One acted on before
    // its fault began is counted above, and left out here.
    let clean: Vec<&Bad> = bad.iter().filter(|b| early(b) == (false, false)).collect();
    if m > 0 {
        println!("\n| fault | rollouts | action | missed | p50 | p95 | p99 | max |");
        println!("|---|---:|---|---:|---:|---:|---:|---:|");
    }
    type Pick = fn(&Fault) -> bool;
    let kinds: [(&str, Pick); 6] = [
        ("payments 3.3–3.7 s on a 3 s budget", |f| matches!(f, Fault::Slow)),
        ("payments 503 at 20–100 %", |f| matches!(f, Fault::Errors { .. })),
        ("… 503 at 20–40 %", |f| matches!(f, Fault::Errors { rate } if *rate < 0.4)),
        ("… 503 at 40–60 %", |f| matches!(f, Fault::Errors { rate } if (0.4..0.6).contains(rate))),
        ("… 503 at 60–80 %", |f| matches!(f, Fault::Errors { rate } if (0.6..0.8).contains(rate))),
        ("… 503 at 80–100 %", |f| matches!(f, Fault::Errors { rate } if *rate >= 0.8)),
    ];
    let first_after = |v: &[Duration], onset: Duration| v.first().map(|t| t.saturating_sub(onset).as_secs_f64());
    for (name, pick) in kinds.into_iter().filter(|_| m > 0) {
        let set: Vec<&&Bad> = clean.iter().filter(|b| pick(&b.fault)).collect();
        let mut pause: Vec<f64> = set.iter().filter_map(|b| first_after(&b.played.pauses, b.onset)).collect();
        let mut rollback: Vec<f64> = set.iter().filter_map(|b| first_after(&b.played.rollbacks, b.onset)).collect();
        for (action, v) in [("pause", &mut pause), ("rollback", &mut rollback)] {
            let missed = set.len() - v.len();
            let [p50, p95, p99, max] = quantiles(v);
            println!(
                "| {name} | {} | {action} | {missed} | {p50:.2} s | {p95:.2} s | {p99:.2} s | {max:.2} s |",
                set.len()
            );
        }
    }
    let missed = clean.iter().filter(|b| b.played.rollbacks.is_empty()).count();
    let second: usize =
        healthy.iter().chain(bad.iter().map(|b| &b.played)).map(|p| p.rollbacks.len().saturating_sub(1)).sum();
    if m > 0 {
        println!(
            "\nfault onset uniform over the first {} s of each rollout; time to confirm: onset to the call sent to the cluster",
            args.onset_within.as_secs()
        );
    }
    // A fault that begins too late is confirmed after the rollout completed and the guard disarmed.
    let late = clean.iter().filter(|b| b.played.rollbacks.is_empty()).map(|b| ROLLOUT.saturating_sub(b.onset)).max();
    if let Some(late) = late {
        println!(
            "every missed fault began at most {:.1} s before its rollout completed (the guard disarms then)",
            late.as_secs_f64()
        );
    }
    if bad.len() > clean.len() {
        println!(
            "{} bad rollouts acted on before their fault began are counted as false actions above, not here",
            bad.len() - clean.len()
        );
    }
    if ctx.explain {
        let healthy_notes = healthy.iter().flat_map(|p| p.notes.iter().map(move |n| ("healthy", n)));
        let early_notes = bad
            .iter()
            .flat_map(|b| b.played.notes.iter().filter(move |(t, _)| *t < b.onset).map(|n| ("bad, before onset", n)));
        for (set, (at, note)) in healthy_notes.chain(early_notes).take(EXPLAIN_AT_MOST) {
            println!("  {set}, {:.2} s into the rollout: {note}", at.as_secs_f64());
        }
    }
    let met = h_rolled + b_rolled == 0 && missed == 0 && second == 0 && lagged == 0;
    println!(
        "goals: false rollbacks {} (goal 0), missed bad rollouts {missed} (goal 0), second rollbacks {second} (goal 0): {}",
        h_rolled + b_rolled,
        if met { "met" } else { "MISSED" }
    );
    met
}
