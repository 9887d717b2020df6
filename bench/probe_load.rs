//! Probe load benchmark: the real `guardian run` probing the real `guardian
//! sim`, N checks at a 1 s interval, for a fixed time. Reports probes/s
//! against the N/s the schedule asks for, skipped probes, CPU (the
//! guardian's, and the simulator's, this bench's and everything else's on
//! the same cores), peak RSS, `/metrics` render time and size, and gate
//! latency while probing.
//!
//! `cargo bench --bench probe_load -- [--checks 100,1000] [--seconds 30]
//!  [--scrapes 20] [--gate-rate 10]`
//!
//! Both run as their own processes so the figures are the guardian's alone,
//! read from /proc (Linux): utime+stime in clock ticks (USER_HZ = 100) and
//! VmHWM for peak RSS.

use std::time::Duration;

use anyhow::bail;
use load::{Measured, checks_config, measure, percentile_ms};
use support::{start_guardian, start_sim};
use tokio::time::Instant;

mod load;
mod procfs;
mod support;

const WARMUP: Duration = Duration::from_secs(3);

struct Flags {
    sizes: Vec<usize>,
    length: Duration,
    scrapes: usize,
    gate_rate: f64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: &str| {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.into())
    };
    let flags = Flags {
        sizes: flag("--checks", "100,1000").split(',').map(str::parse).collect::<Result<_, _>>()?,
        length: Duration::from_secs(flag("--seconds", "30").parse()?),
        scrapes: flag("--scrapes", "20").parse::<usize>()?.max(1),
        gate_rate: flag("--gate-rate", "10").parse()?,
    };
    println!("machine: {}; load average before: {}", load::machine(), procfs::loadavg());
    let mut rows = Vec::new();
    for &n in &flags.sizes {
        let row = run_one(n, &flags).await?;
        eprintln!("{} checks done; load average {}", n, procfs::loadavg());
        rows.push(row);
    }
    println!("load average after: {}\n", procfs::loadavg());
    println!(
        "| checks | probes/s (expected) | skipped/s | guardian CPU | CPU s / 1,000 probes | peak RSS | simulator CPU | bench CPU | rest of the machine |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    rows.iter().for_each(|r| println!("{}", r.0));
    println!(
        "\n| checks | /metrics p50 | /metrics p99 | /metrics size | gate p50 | gate p99 | gate answers (errors) |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    rows.iter().for_each(|r| println!("{}", r.1));
    Ok(())
}

/// The two table rows of one size: probing, then /metrics and the gate.
async fn run_one(checks: usize, flags: &Flags) -> anyhow::Result<(String, String)> {
    let dir = tempfile::tempdir()?;
    let (sim, ports) = start_sim()?;
    let head = "environment: dev\nlisten: \"127.0.0.1:0\"\n";
    std::fs::write(dir.path().join("guardian.yaml"), checks_config(head, checks, &ports))?;
    let (guardian, addr) = start_guardian(dir.path())?;
    let (gpid, spid) = (guardian.0.id(), sim.0.id());
    let Measured { span, gate } = measure(&addr, (gpid, spid), "dev", flags.gate_rate, (WARMUP, flags.length)).await?;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let metrics = format!("http://{addr}/metrics");
    // After the measured span, so they do not count in its CPU; probing goes on meanwhile.
    let mut renders = Vec::with_capacity(flags.scrapes);
    let mut size = 0;
    for _ in 0..flags.scrapes {
        let t = Instant::now();
        size = load::get(&client, &metrics).await?.len();
        renders.push(t.elapsed());
    }
    renders.sort();
    let rss = procfs::peak_rss_kib(gpid)?;
    if span.probes <= 0.0 {
        bail!("no probes finished in {:.1} s", span.seconds);
    }
    drop((guardian, sim));
    let pct = |cpu: f64| format!("{:.2} cores", span.cores(cpu));
    let probing = format!(
        "| {checks} | {:.0} ({checks}) | {:.1} | {} | {:.3} | {:.1} MiB | {} | {} | {} |",
        span.probes / span.seconds,
        span.skipped / span.seconds,
        pct(span.guardian),
        span.guardian / span.probes * 1000.0,
        rss as f64 / 1024.0,
        pct(span.sim),
        pct(span.bench),
        pct(span.others()),
    );
    let serving = format!(
        "| {checks} | {:.1} ms | {:.1} ms | {:.1} MiB | {:.2} ms | {:.2} ms | {} ({}) |",
        percentile_ms(&renders, 0.5),
        percentile_ms(&renders, 0.99),
        size as f64 / (1024.0 * 1024.0),
        percentile_ms(&gate.sorted, 0.5),
        percentile_ms(&gate.sorted, 0.99),
        gate.sorted.len(),
        gate.errors,
    );
    Ok((probing, serving))
}
