//! Probe load benchmark: the real `guardian run` probing the real `guardian
//! sim`, N checks at a 1 s interval, for a fixed time. Reports probes/s, CPU
//! seconds per 1,000 probes, peak RSS and /metrics render time.
//!
//! `cargo bench --bench probe_load -- [--checks 100,1000] [--seconds 30]`
//!
//! Both run as their own processes so the figures are the guardian's alone,
//! read from /proc (Linux): utime+stime in clock ticks (USER_HZ = 100) and
//! VmHWM for peak RSS.

use std::time::Duration;

use anyhow::{Context, bail};
use support::{start_guardian, start_sim};
use tokio::time::Instant;

mod support;

const USER_HZ: f64 = 100.0;
const WARMUP: Duration = Duration::from_secs(3);
const SCRAPES: usize = 20;

/// The simulator endpoints the checks rotate over, with their budgets.
const ENDPOINTS: [(&str, usize, &str); 6] = [
    ("/api/revenue/status", 1, "500ms"),
    ("/api/payments/health", 1, "3s"),
    ("/api/domains/count", 1, "2s"),
    ("/api/customers/count", 1, "1s"),
    ("/api/health", 0, "1s"),
    ("/api/admin/health", 2, "1s"),
];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let sizes: Vec<usize> =
        flag("--checks").unwrap_or_else(|| "100,1000".into()).split(',').map(str::parse).collect::<Result<_, _>>()?;
    let seconds: u64 = flag("--seconds").unwrap_or_else(|| "30".into()).parse()?;
    println!(
        "| checks | probes/s | CPU s / 1,000 probes | peak RSS | /metrics p50 | /metrics max | sim CPU s / 1,000 req |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|");
    for n in sizes {
        let row = run_one(n, Duration::from_secs(seconds)).await?;
        println!("{row}");
    }
    Ok(())
}

async fn run_one(checks: usize, length: Duration) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let (sim, ports) = start_sim()?;
    std::fs::write(dir.path().join("guardian.yaml"), config_text(checks, &ports))?;
    let (guardian, addr) = start_guardian(dir.path())?;
    let (gpid, spid) = (guardian.0.id(), sim.0.id());
    tokio::time::sleep(WARMUP).await;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("http://{addr}/metrics");
    let metrics = |c: reqwest::Client| scrape(c, url.clone());
    let (p0, c0, s0, t0) = (probes(&metrics(client.clone()).await?), cpu(gpid)?, cpu(spid)?, Instant::now());
    tokio::time::sleep(length).await;
    let (p1, c1, s1, elapsed) = (probes(&metrics(client.clone()).await?), cpu(gpid)?, cpu(spid)?, t0.elapsed());
    let mut renders = Vec::with_capacity(SCRAPES);
    for _ in 0..SCRAPES {
        let t = Instant::now();
        metrics(client.clone()).await?;
        renders.push(t.elapsed());
    }
    renders.sort();
    let rss = peak_rss_kib(gpid)?;
    let done = p1 - p0;
    if done <= 0.0 {
        bail!("no probes finished in {elapsed:?}");
    }
    drop((guardian, sim));
    Ok(format!(
        "| {checks} | {:.0} | {:.3} | {:.1} MiB | {:.1} ms | {:.1} ms | {:.3} |",
        done / elapsed.as_secs_f64(),
        (c1 - c0) / done * 1000.0,
        rss as f64 / 1024.0,
        renders[SCRAPES / 2].as_secs_f64() * 1000.0,
        renders[SCRAPES - 1].as_secs_f64() * 1000.0,
        (s1 - s0) / done * 1000.0,
    ))
}

async fn scrape(client: reqwest::Client, url: String) -> anyhow::Result<String> {
    client.get(url).send().await?.text().await.context("scrape /metrics")
}

fn config_text(checks: usize, ports: &[String]) -> String {
    let mut text = format!(
        "environment: dev\nlisten: \"127.0.0.1:0\"\nprobing:\n  per_host_per_second: {}\nchecks:\n",
        checks * 2 + 10
    );
    for i in 0..checks {
        let (path, port, budget) = ENDPOINTS[i % ENDPOINTS.len()];
        text += &format!(
            "  - {{ name: c{i}, url: \"http://{}{path}\", interval: 1s, budget: {budget}, expect: {{ status: [200] }} }}\n",
            ports[port]
        );
    }
    text
}

/// Sum of guardian_probes_total over every check and outcome.
fn probes(metrics: &str) -> f64 {
    metrics
        .lines()
        .filter(|l| l.starts_with("guardian_probes_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// User + system CPU seconds of a process so far.
fn cpu(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        fields.get(11).context("utime")?.parse::<f64>()? + fields.get(12).context("stime")?.parse::<f64>()?;
    Ok(ticks / USER_HZ)
}

fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("VmHWM")?;
    Ok(line.split_whitespace().nth(1).context("VmHWM value")?.parse()?)
}
