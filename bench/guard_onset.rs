//! Fault onset to pause, in simulated mode, and false rollbacks.
//!
//! `cargo bench --bench guard_onset -- [--pairs 10] [--rounds 3] [--dead-receivers]`
//!
//! Each pair is a real simulator and a real guardian (in process) guarding
//! nextgen-dashboard on `payments-health` (1 s interval, 3 s budget, 3 of 5,
//! 250 ms confirmations; detection bound 4.5 s). Per round, each pair plays
//! one bad rollout with payments slowed to 3.5 s, one with payments answering
//! 503, and one healthy-but-noisy rollout lasting 10 s whose latency p99 sits
//! at 70 % of the budget. Onset is when the fault is set on the simulator; the
//! pause is when the in-memory cluster received it. The fault starts at a
//! random moment of the probe cycle, so the spread covers every phase.
//!
//! `--dead-receivers` also configures notifications that never get through:
//! a Slack webhook that accepts connections and never answers (each send
//! hangs until its 5 s timeout) and an Alertmanager on a closed port, to
//! show that no receiver delays a pause or a rollback.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use guardian::app::App;
use guardian::clock::SystemClock;
use guardian::cluster::{MemoryCluster, TargetRef};
use guardian::config::{self, MapEnv, TargetKind};
use guardian::sim::{Fault, Simulator};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

const PATH: &str = "/api/payments/health";
const HEALTHY_FOR: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Tally {
    slow: Vec<f64>,
    errors: Vec<f64>,
    slow_rollback: Vec<f64>,
    errors_rollback: Vec<f64>,
    missed: usize,
    /// Rollbacks beyond the first during one bad rollout (must stay 0).
    extra_rollbacks: usize,
    healthy: usize,
    false_rollbacks: usize,
    false_pauses: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| -> anyhow::Result<usize> {
        let value = args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
        value.map_or(Ok(default), |v| v.parse().with_context(|| format!("{name} {v}")))
    };
    let (pairs, rounds) = (flag("--pairs", 10)?, flag("--rounds", 3)?);
    let dead_receivers = args.iter().any(|a| a == "--dead-receivers");
    // Kept open so connections are accepted and never answered.
    let hanging = std::net::TcpListener::bind("127.0.0.1:0")?;
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let notify = if dead_receivers {
        format!(
            "notify:\n  alertmanager: ['http://{closed}/']\n  webhooks:\n    - {{ url: 'http://{}/hook', format: slack }}\n",
            hanging.local_addr()?
        )
    } else {
        String::new()
    };
    let started = Instant::now();
    // Joined, not spawned: building a guardian borrows its environment.
    let done = futures_util::future::join_all((0..pairs).map(|_| pair(rounds, &notify))).await;
    let mut all = Tally::default();
    for t in done {
        let t = t?;
        all.slow.extend(t.slow);
        all.errors.extend(t.errors);
        all.slow_rollback.extend(t.slow_rollback);
        all.errors_rollback.extend(t.errors_rollback);
        all.missed += t.missed;
        all.extra_rollbacks += t.extra_rollbacks;
        all.healthy += t.healthy;
        all.false_rollbacks += t.false_rollbacks;
        all.false_pauses += t.false_pauses;
    }
    let receivers = if dead_receivers { ", every notification receiver dead" } else { "" };
    println!("guard_onset: {pairs} pairs × {rounds} rounds in {:.0} s{receivers}", started.elapsed().as_secs_f64());
    println!("| fault | rollouts | p50 | p95 | p99 | max | goal |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    row("payments slowed to 3.5 s: pause", &mut all.slow, "4.5 s");
    row("payments slowed to 3.5 s: rollback", &mut all.slow_rollback, "-");
    row("payments answering 503: pause", &mut all.errors, "1.5 s");
    row("payments answering 503: rollback", &mut all.errors_rollback, "-");
    println!("\nmissed bad rollouts (no pause within 15 s): {}", all.missed);
    println!("second rollbacks during a bad rollout: {}", all.extra_rollbacks);
    println!(
        "healthy-but-noisy rollouts (p99 at 70 % of budget, 10 s each): {} — false rollbacks {}, false pauses {}",
        all.healthy, all.false_rollbacks, all.false_pauses
    );
    Ok(())
}

fn row(name: &str, v: &mut [f64], goal: &str) {
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v.get(((v.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
    println!(
        "| {name} | {} | {:.2} s | {:.2} s | {:.2} s | {:.2} s | {goal} |",
        v.len(),
        q(0.50),
        q(0.95),
        q(0.99),
        v.last().copied().unwrap_or(f64::NAN)
    );
}

fn target() -> TargetRef {
    TargetRef {
        kind: TargetKind::Deployment,
        namespace: "blueocean-nextgen-prod".into(),
        name: "nextgen-dashboard".into(),
    }
}

async fn pair(rounds: usize, notify: &str) -> anyhow::Result<Tally> {
    let stop = CancellationToken::new();
    let sim = Simulator::start(IpAddr::V4(Ipv4Addr::LOCALHOST), [0, 0, 0], stop.clone()).await?;
    let yaml = format!(
        "environment: prod\nstorage: {{ url: 'sqlite::memory:' }}\nprobing: {{ per_host_per_second: 100 }}\nchecks:\n  - {{ name: payments-health, url: 'http://{}{PATH}', interval: 1s, budget: 3s, timeout: 6s }}\nguard:\n  mode: simulated\n  targets:\n    - {{ kind: Deployment, namespace: blueocean-nextgen-prod, name: nextgen-dashboard }}\n  breach: {{ window: 5, max_bad: 3, confirm_interval: 250ms }}\ngate: {{ stale_after: 8s }}\n{notify}",
        sim.dashboard()
    );
    let config = config::parse(&yaml, "bench.yaml", &MapEnv(HashMap::new())).map_err(|e| anyhow::anyhow!("{e}"))?;
    let app = App::build(config, Arc::new(SystemClock), &MapEnv::default()).await?;
    let cluster = app.guard.as_ref().and_then(|g| g.simulated.clone()).context("simulated guard")?;
    let t = target();
    cluster.add(&t, "v0");
    let _running = app.start(TcpListener::bind("127.0.0.1:0").await?, stop.clone());
    let mut tally = Tally::default();
    let mut version = 0;
    settle(&app).await;
    for _ in 0..rounds {
        for slow in [true, false] {
            version += 1;
            let fault = if slow {
                Fault { latency_ms: 3_500, ..Fault::on(PATH) }
            } else {
                Fault { status: Some(503), error_rate: 1.0, ..Fault::on(PATH) }
            };
            let (paused, rolled_back, rollbacks) = bad_rollout(&sim, &cluster, &t, version, fault).await?;
            tally.extra_rollbacks += rollbacks.saturating_sub(1);
            match (paused, rolled_back) {
                (Some(p), r) if slow => {
                    tally.slow.push(p);
                    tally.slow_rollback.extend(r);
                }
                (Some(p), r) => {
                    tally.errors.push(p);
                    tally.errors_rollback.extend(r);
                }
                (None, _) => tally.missed += 1,
            }
            settle(&app).await;
        }
        version += 1;
        let (pauses, rollbacks) = healthy_rollout(&sim, &cluster, &t, version).await?;
        tally.healthy += 1;
        tally.false_pauses += pauses;
        tally.false_rollbacks += rollbacks;
        settle(&app).await;
    }
    stop.cancel();
    Ok(tally)
}

/// Seconds from the fault to the pause and to the rollback, each `None` if
/// it did not come within 15 s, and how many rollbacks were sent in all.
async fn bad_rollout(
    sim: &Simulator,
    cluster: &MemoryCluster,
    t: &TargetRef,
    version: usize,
    fault: Fault,
) -> anyhow::Result<(Option<f64>, Option<f64>, usize)> {
    let before = cluster.calls_at().len();
    cluster.start_rollout(t, &format!("v{version}"))?;
    // A random moment of the 1 s probe cycle.
    tokio::time::sleep(Duration::from_millis(200 + rand::random::<u64>() % 1_000)).await;
    sim.faults().set(fault);
    let onset = Instant::now();
    let after = |what: &str| {
        let calls = cluster.calls_at().into_iter().skip(before);
        calls.filter(|(_, c)| c.starts_with(what)).map(|(at, _)| at.duration_since(onset).as_secs_f64()).next()
    };
    while onset.elapsed() < Duration::from_secs(15) && after("rollback").is_none() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Slow probes still in flight land after the rollback: they must not bring a second one.
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The old version is healthy again and settles.
    sim.faults().clear();
    cluster.complete_rollout(t)?;
    let rollbacks = cluster.calls_at().into_iter().skip(before).filter(|(_, c)| c.starts_with("rollback")).count();
    Ok((after("pause"), after("rollback"), rollbacks))
}

/// A rollout of a healthy release whose latency is noisy: p99 near 2.1 s
/// (70 % of the 3 s budget). Returns (pauses, rollbacks) the guard sent.
async fn healthy_rollout(
    sim: &Simulator,
    cluster: &MemoryCluster,
    t: &TargetRef,
    version: usize,
) -> anyhow::Result<(usize, usize)> {
    let before = cluster.calls_at().len();
    cluster.start_rollout(t, &format!("v{version}"))?;
    let started = Instant::now();
    while started.elapsed() < HEALTHY_FOR {
        // 98 % between 50 and 800 ms, 2 % between 1.5 and 2.1 s: p99 ≈ 2 s.
        let latency = if rand::random::<f64>() < 0.98 {
            50 + rand::random::<u64>() % 750
        } else {
            1_500 + rand::random::<u64>() % 600
        };
        sim.faults().set(Fault { latency_ms: latency, ..Fault::on(PATH) });
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sim.faults().clear();
    cluster.complete_rollout(t)?;
    let calls: Vec<String> = cluster.calls_at().into_iter().skip(before).map(|(_, c)| c).collect();
    let count = |what: &str| calls.iter().filter(|c| c.starts_with(what)).count();
    Ok((count("pause"), count("rollback")))
}

/// Waits until payments is good again and has been for a breach window.
async fn settle(app: &App) {
    let started = Instant::now();
    loop {
        let good = app.board.snapshot().iter().all(|c| c.up);
        let open = !app.history.open_incidents().is_empty();
        if good && !open && started.elapsed() > Duration::from_secs(1) {
            break;
        }
        if started.elapsed() > Duration::from_secs(30) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Five good probes fill the breach window with good ones.
    tokio::time::sleep(Duration::from_secs(5)).await;
}
