//! `guardian demo`: the NEXTGEN story on the embedded defaults. Starts the
//! simulator and a guardian on SQLite probing it with
//! `examples/nextgen.yaml`, with a month of healthy history, a fresh backup
//! and the guard in simulated mode (an in-memory cluster). Then
//! nextgen-dashboard 1.8.2 goes out and slows payments to 3.5 s: the check
//! turns bad the moment a probe passes its 3 s budget, confirmation probes
//! confirm it, the guardian pauses the rollout, rolls back to 1.8.1 and
//! notifies; the gate says no-go until the incident closes and the rollout
//! settles, then go. What the business team reads arrives at a webhook
//! receiver on loopback (`inbox.rs`), delivered by the real notifier.
//! Exit 0 when the story played as expected.

mod inbox;
mod story;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::App;
use crate::clock::{Clock, SystemClock};
use crate::config::{self, Config, ConnUrl, GuardMode, MapEnv, Webhook, WebhookFormat};
use crate::gate::Backup;
use crate::shutdown;
use crate::sim::Simulator;
use crate::slo::{MinuteRollup, minute_of};
use crate::units::parse_duration;

const EXAMPLE: &str = include_str!("../../examples/nextgen.yaml");
/// Days of healthy history written before the story, as a running guardian would have.
const HISTORY_DAYS: i64 = 30;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// How long the story runs; the fault starts at a fifth and is cleared half-way.
    #[arg(long, default_value = "40s", value_parser = parse_duration)]
    pub duration: Duration,
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let stop = CancellationToken::new();
    let sim = Simulator::start(IpAddr::V4(Ipv4Addr::LOCALHOST), [0, 0, 0], stop.clone()).await?;
    let (inbox, inbox_addr) = inbox::Inbox::start(stop.clone()).await?;
    let config = demo_config(&sim, inbox_addr)?;
    seed_history(&config).await?;
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await.context("cannot bind the demo API")?;
    let api = listener.local_addr()?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let app = App::build(config, clock.clone(), &MapEnv::default()).await?;
    println!("NEXTGEN simulator: landing {}, dashboard {}, admin {}", sim.landing(), sim.dashboard(), sim.admin());
    println!("guardian API:      http://{api}/api/v1/status  ·  http://{api}/api/v1/gate?environment=prod");
    println!(
        "{} checks from examples/nextgen.yaml on SQLite, with {HISTORY_DAYS} days of healthy history",
        app.config.checks.len()
    );
    let backup =
        Backup { environment: app.config.environment, id: "nightly-demo".into(), completed_at: clock.now(), ok: true };
    app.gatekeeper.record_backup(backup);
    println!("backup nightly-demo reported (the gate requires one within 24h)\n");
    let cluster = app.guard.as_ref().and_then(|g| g.simulated.clone()).context("the demo needs the simulated guard")?;
    cluster.add(&story::dashboard(), story::GOOD);
    println!("guard: simulated cluster, nextgen-dashboard running {}", story::GOOD);
    println!("business team's webhook: http://{inbox_addr}/business (generic format)");
    let running = app.start(listener, stop.clone());
    let story = tokio::select! {
        story = story::play(&app, &sim, &cluster, &inbox, args.duration) => Some(story),
        () = shutdown::signal() => None,
    };
    println!("\n{}", story::table(&app.board.snapshot()));
    stop.cancel();
    running.drain(shutdown::GRACE).await;
    sim.stopped().await;
    remove_demo_db();
    Ok(story.map_or(1, |s| s.verdict()))
}

/// The example config, pointed at this simulator's ports, on its own SQLite
/// file, notifying the demo's webhook receiver.
fn demo_config(sim: &Simulator, inbox: std::net::SocketAddr) -> anyhow::Result<Config> {
    let text = EXAMPLE
        .replace("127.0.0.1:7000", &sim.landing().to_string())
        .replace("127.0.0.1:7001", &sim.dashboard().to_string())
        .replace("127.0.0.1:7002", &sim.admin().to_string());
    let mut config =
        config::parse(&text, "examples/nextgen.yaml", &MapEnv::default()).map_err(|e| anyhow::anyhow!("{e}"))?;
    // The embedded default, in a file of its own so a demo never mixes with a real guardian.db.
    config.storage_url = ConnUrl::new(format!("sqlite://{}", demo_db().display()));
    config.guard.mode = GuardMode::Simulated;
    let url = url::Url::parse(&format!("http://{inbox}/business")).context("the demo's webhook URL")?;
    config.notify.webhooks.push(Webhook { url, format: WebhookFormat::Generic });
    Ok(config)
}

/// Writes a month of healthy hourly roll-ups, stamped 7 h and more in the
/// past: what the SLO windows of a guardian that ran all month would hold.
async fn seed_history(config: &Config) -> anyhow::Result<()> {
    let store = crate::store::open(config.storage_url.expose()).await?;
    let this_hour = minute_of(jiff::Timestamp::now()).div_euclid(60);
    let rows: Vec<MinuteRollup> = (7..HISTORY_DAYS * 24)
        .flat_map(|h| {
            config.checks.iter().map(move |c| {
                let probes = 3_600 / c.interval.as_secs().max(1);
                MinuteRollup { check: c.name.clone(), minute: (this_hour - h) * 60, good: probes, total: probes }
            })
        })
        .collect();
    for chunk in rows.chunks(1_000) {
        store.save_rollups(chunk).await?;
    }
    Ok(())
}

fn demo_db() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("guardian-demo-{}.db", std::process::id()))
}

fn remove_demo_db() {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", demo_db().display()));
    }
}
