//! `guardian demo`: the NEXTGEN story on the embedded defaults. Starts the
//! simulator and a guardian probing it with `examples/nextgen.yaml`, shows a
//! live view, injects 3.5 s of latency on payments half-way and shows the
//! payments check turn bad — before its probe even ends. Exit 0 when the
//! story played as expected.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clock::SystemClock;
use crate::config::{self, Config, ConnUrl, MapEnv};
use crate::probe::CheckStatus;
use crate::shutdown;
use crate::sim::{Fault, Simulator};
use crate::units::{format_duration, parse_duration};

const EXAMPLE: &str = include_str!("../../examples/nextgen.yaml");
const FAULT_PATH: &str = "/api/payments/health";
const FAULT_CHECK: &str = "payments-health";
const FAULT_LATENCY_MS: u64 = 3_500;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long the story runs; the fault starts half-way.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub duration: Duration,
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let stop = CancellationToken::new();
    let sim = Simulator::start(IpAddr::V4(Ipv4Addr::LOCALHOST), [0, 0, 0], stop.clone()).await?;
    let config = demo_config(&sim)?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.context("cannot bind the demo API")?;
    let api = listener.local_addr()?;
    let app = App::build(config, Arc::new(SystemClock), &MapEnv::default()).await?;
    println!("NEXTGEN simulator: landing {}, dashboard {}, admin {}", sim.landing(), sim.dashboard(), sim.admin());
    println!("guardian API:      http://{api}/api/v1/status  ·  http://{api}/metrics");
    println!(
        "{} checks from examples/nextgen.yaml; payments budget 3s; fault at t+{}s\n",
        app.config.checks.len(),
        args.duration.as_secs() / 2
    );
    let running = app.start(listener, stop.clone());
    let story = tokio::select! {
        story = play(&app, &sim, args.duration) => Some(story),
        () = shutdown::signal() => None,
    };
    println!("\n{}", table(&app.board.snapshot()));
    stop.cancel();
    running.drain(shutdown::GRACE).await;
    sim.stopped().await;
    remove_demo_db();
    Ok(match story {
        Some(story) => story.verdict(),
        None => 1,
    })
}

/// The example config, pointed at this simulator's ports.
fn demo_config(sim: &Simulator) -> anyhow::Result<Config> {
    let text = EXAMPLE
        .replace("127.0.0.1:7000", &sim.landing().to_string())
        .replace("127.0.0.1:7001", &sim.dashboard().to_string())
        .replace("127.0.0.1:7002", &sim.admin().to_string());
    let mut config =
        config::parse(&text, "examples/nextgen.yaml", &MapEnv::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The embedded default, in a file of its own so a demo never mixes with a real guardian.db.
    config.storage_url = ConnUrl::new(format!("sqlite://{}", demo_db().display()));
    Ok(config)
}

fn demo_db() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("guardian-demo-{}.db", std::process::id()))
}

fn remove_demo_db() {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", demo_db().display()));
    }
}

/// What the demo saw.
#[derive(Debug, Default)]
struct Story {
    went_bad_at: Option<Duration>,
    /// Other checks seen bad at any tick after their first result.
    others_bad: std::collections::BTreeSet<String>,
}

impl Story {
    fn verdict(&self) -> u8 {
        match (self.went_bad_at, self.others_bad.is_empty()) {
            (Some(_), true) => {
                println!("demo: ok — the payments breach was seen; every other check stayed good");
                0
            }
            (None, _) => {
                println!("demo: FAILED — the payments fault was never seen");
                1
            }
            (Some(_), false) => {
                let others: Vec<&str> = self.others_bad.iter().map(String::as_str).collect();
                println!("demo: FAILED — other checks went bad too: {}", others.join(", "));
                1
            }
        }
    }
}

async fn play(app: &App, sim: &Simulator, duration: Duration) -> Story {
    let start = Instant::now();
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let (mut story, mut injected_at) = (Story::default(), None);
    while start.elapsed() < duration {
        ticker.tick().await;
        let t = start.elapsed();
        if injected_at.is_none() && t >= duration / 2 {
            sim.faults().set(Fault {
                path: FAULT_PATH.into(),
                latency_ms: FAULT_LATENCY_MS,
                status: None,
                error_rate: 0.0,
            });
            injected_at = Some(t);
            println!("t+{:>4.1}s  >>> injected {FAULT_LATENCY_MS}ms latency on {FAULT_PATH}", t.as_secs_f64());
        }
        let snap = app.board.snapshot();
        println!("t+{:>4.1}s  {}", t.as_secs_f64(), line(&snap));
        let payments_bad = snap.iter().any(|c| c.name == FAULT_CHECK && c.last.is_some() && !c.up);
        story
            .others_bad
            .extend(snap.iter().filter(|c| c.name != FAULT_CHECK && c.last.is_some() && !c.up).map(|c| c.name.clone()));
        if let (Some(at), None, true) = (injected_at, story.went_bad_at, payments_bad) {
            story.went_bad_at = Some(t);
            println!(
                "t+{:>4.1}s  >>> {FAULT_CHECK} is BAD, {} after the fault",
                t.as_secs_f64(),
                format_duration(t.saturating_sub(at))
            );
        }
    }
    story
}

/// One line per second: how many checks are good, and what is wrong.
fn line(snap: &[CheckStatus]) -> String {
    let good = snap.iter().filter(|c| c.up).count();
    let waiting = snap.iter().filter(|c| c.last.is_none()).count();
    let mut text = format!("{good}/{} good", snap.len());
    if waiting > 0 {
        text += &format!(", {waiting} waiting for a first probe");
    }
    for c in snap.iter().filter(|c| !c.up && c.last.is_some()) {
        let why = match (&c.last, c.over_budget_in_flight) {
            (_, true) => format!(
                "over its {} budget, probe still running",
                format_duration(Duration::from_secs_f64(c.budget_seconds))
            ),
            (Some(r), false) => format!("{}: {}", r.outcome.code(), r.reason),
            (None, false) => String::new(),
        };
        text += &format!("  ·  {}: {why}", c.name);
    }
    text
}

fn table(snap: &[CheckStatus]) -> String {
    let mut out = format!("{:<20} {:<6} {:>8} {:>8}  {}\n", "CHECK", "STATE", "LATENCY", "BUDGET", "LAST");
    for c in snap {
        let (latency, last) = match &c.last {
            Some(r) => (format_duration(r.latency), format!("{}: {}", r.outcome.code(), r.reason)),
            None => ("-".into(), "no result yet".into()),
        };
        let state = if c.up { "good" } else { "BAD" };
        out += &format!(
            "{:<20} {:<6} {:>8} {:>8}  {}\n",
            c.name,
            state,
            latency,
            format_duration(Duration::from_secs_f64(c.budget_seconds)),
            last
        );
    }
    out
}
