//! SLO memory after a simulated 30-day window: N checks' per-minute
//! roll-ups for 30 days fed into the SLO tracker (the way a restart restores
//! them from storage), then the process's resident memory and the time to
//! evaluate every SLO over every window.
//!
//! `cargo bench --bench slo_memory -- [--checks 1000] [--per-slo 100]`
//!
//! Memory is VmRSS from /proc/self/status (Linux) before and after.

use std::time::Duration;

use anyhow::Context;
use guardian::config::Slo;
use guardian::slo::{MinuteRollup, SloTracker};
use tokio::time::Instant;

const DAYS: i64 = 30;

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: usize| -> anyhow::Result<usize> {
        let value = args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
        Ok(value.map(|v| v.parse()).transpose()?.unwrap_or(default))
    };
    let checks = flag("--checks", 1_000)?;
    let per_slo = flag("--per-slo", 100)?.max(1);
    println!("| checks | SLOs | roll-ups fed | RSS before | RSS after | growth | feed time | status of every SLO |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|");
    for per in [per_slo, 1] {
        println!("{}", run(checks, per)?);
    }
    Ok(())
}

fn run(checks: usize, per_slo: usize) -> anyhow::Result<String> {
    let names: Vec<String> = (0..checks).map(|i| format!("c{i}")).collect();
    let slos: Vec<Slo> = names
        .chunks(per_slo)
        .enumerate()
        .map(|(i, c)| Slo {
            name: format!("slo{i}"),
            checks: c.to_vec(),
            objective: 0.999,
            window: Duration::from_secs(30 * 86_400),
        })
        .collect();
    let before = rss_kib()?;
    let mut tracker = SloTracker::new(&slos, Duration::from_secs(5));
    let now = jiff::Timestamp::now();
    let now_minute = guardian::slo::minute_of(now);
    let start = Instant::now();
    let mut fed = 0u64;
    // An hour at a time, so the feed's own buffers stay small next to what is measured.
    for hour in (0..DAYS * 24).rev() {
        let first = now_minute - (hour + 1) * 60 + 1;
        let rows: Vec<MinuteRollup> = (first..first + 60)
            .flat_map(|minute| {
                names.iter().map(move |c| MinuteRollup { check: c.clone(), minute, good: 59, total: 60 })
            })
            .collect();
        fed += rows.len() as u64;
        tracker.restore(&rows, now);
    }
    let feed = start.elapsed();
    let after = rss_kib()?;
    let t = Instant::now();
    let status = tracker.status(now);
    let eval = t.elapsed();
    anyhow::ensure!(status.len() == slos.len(), "every SLO answers");
    anyhow::ensure!(status[0].windows.iter().any(|w| w.total > 0), "the windows hold the fed data");
    Ok(format!(
        "| {checks} | {} | {fed} | {:.1} MiB | {:.1} MiB | {:.1} MiB | {:.1} s | {:.1} ms |",
        slos.len(),
        before as f64 / 1024.0,
        after as f64 / 1024.0,
        (after.saturating_sub(before)) as f64 / 1024.0,
        feed.as_secs_f64(),
        eval.as_secs_f64() * 1000.0
    ))
}

fn rss_kib() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("VmRSS")?;
    Ok(line.split_whitespace().nth(1).context("VmRSS value")?.parse()?)
}
