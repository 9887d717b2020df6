//! Gate answer time under load: the real `guardian run` (SQLite storage)
//! probing the real `guardian sim` answers `GET /api/v1/gate` at a fixed
//! open-loop rate, while it keeps probing.
//!
//! `cargo bench --bench gate_load -- [--rate 200] [--seconds 30] [--checks 1000,10000]`
//!
//! Without `--checks`: examples/nextgen.yaml (11 checks, 5 SLOs). With it,
//! for each size: N checks at 1 s over the simulator's endpoints, one SLO per
//! endpoint over its checks, and the example's gate (a backup required
//! within 24 h, so every answer is a 409 through the full decision path).
//!
//! Open loop: requests start on a fixed schedule whether or not earlier ones
//! have answered, so a slow server shows up as latency, not as a lower rate.
//! One keep-alive client on loopback; latency is request start to full body.
//! Probes/s and CPU are read over the same span, as in `probe_load`.

use std::time::Duration;

use load::{ENDPOINTS, Measured, checks_config, measure, percentile_ms};
use support::{start_guardian, start_sim};

mod load;
mod procfs;
mod support;

/// Long enough for every check to have a result.
const WARMUP: Duration = Duration::from_secs(6);

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let rate: f64 = flag("--rate").unwrap_or_else(|| "200".into()).parse()?;
    let seconds: u64 = flag("--seconds").unwrap_or_else(|| "30".into()).parse()?;
    let sizes: Vec<Option<usize>> = match flag("--checks") {
        None => vec![None],
        Some(list) => list.split(',').map(|n| n.parse().map(Some)).collect::<Result<_, _>>()?,
    };
    println!("machine: {}; load average before: {}", load::machine(), procfs::loadavg());
    let mut rows = Vec::new();
    for size in sizes {
        rows.push(run_one(size, rate, Duration::from_secs(seconds)).await?);
        eprintln!("{size:?} checks done; load average {}", procfs::loadavg());
    }
    println!("load average after: {}\n", procfs::loadavg());
    println!(
        "| checks | rate | answers | errors | p50 | p99 | max | probes/s (expected) | skipped/s | guardian CPU | peak RSS | rest of the machine |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    rows.iter().for_each(|r| println!("{r}"));
    Ok(())
}

async fn run_one(checks: Option<usize>, rate: f64, length: Duration) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let (sim, ports) = start_sim()?;
    let (config, label, expected) = match checks {
        // One check at 1 s, one at 2 s, nine at 5 s.
        None => (example_config(&ports)?, "11 (example)".to_string(), 3.3),
        Some(n) => (generated_config(n, &ports), n.to_string(), n as f64),
    };
    std::fs::write(dir.path().join("guardian.yaml"), config)?;
    let (guardian, addr) = start_guardian(dir.path())?;
    let (gpid, spid) = (guardian.0.id(), sim.0.id());
    let Measured { span, gate: answers, .. } = measure(&addr, (gpid, spid), "prod", rate, (WARMUP, length)).await?;
    let rss = procfs::peak_rss_kib(gpid)?;
    drop((guardian, sim));
    anyhow::ensure!(!answers.sorted.is_empty(), "no answers");
    let l = &answers.sorted;
    Ok(format!(
        "| {label} | {rate}/s | {} | {} | {:.2} ms | {:.2} ms | {:.2} ms | {:.0} ({expected:.1}) | {:.1} | {:.2} cores | {:.1} MiB | {:.2} cores |",
        l.len(),
        answers.errors,
        percentile_ms(l, 0.5),
        percentile_ms(l, 0.99),
        percentile_ms(l, 1.0),
        span.probes / span.seconds,
        span.skipped / span.seconds,
        span.cores(span.guardian),
        rss as f64 / 1024.0,
        span.cores(span.others()),
    ))
}

/// examples/nextgen.yaml pointed at the simulator, with the API's per-client limit out of the way.
fn example_config(ports: &[String]) -> anyhow::Result<String> {
    Ok(std::fs::read_to_string("examples/nextgen.yaml")?
        .replace("127.0.0.1:7000", &ports[0])
        .replace("127.0.0.1:7001", &ports[1])
        .replace("127.0.0.1:7002", &ports[2])
        .replace("listen: \"127.0.0.1:9090\"", "listen: \"127.0.0.1:0\"")
        .replace(
            "api:\n  token_env: GUARDIAN_API_TOKEN",
            "api:\n  token_env: GUARDIAN_API_TOKEN\n  requests_per_second: 100000",
        ))
}

fn generated_config(checks: usize, ports: &[String]) -> String {
    let head = "environment: prod\nlisten: \"127.0.0.1:0\"\napi:\n  requests_per_second: 100000\n\
                storage:\n  url: \"sqlite://guardian.db\"\ngate:\n  require_backup_within: 24h\n";
    checks_config(head, checks, ports) + &slos_config(checks)
}

/// One SLO per endpoint, over every check probing it: what a team would
/// declare for many checks of one business stream.
fn slos_config(checks: usize) -> String {
    let mut text = String::from("slos:\n");
    for (k, (path, _, _)) in ENDPOINTS.iter().enumerate().take(checks) {
        let names: Vec<String> = (k..checks).step_by(ENDPOINTS.len()).map(|i| format!("c{i}")).collect();
        let name = path.trim_start_matches("/api/").replace('/', "-");
        text += &format!("  - {{ name: {name}, checks: [{}], objective: 0.999, window: 30d }}\n", names.join(", "));
    }
    text
}
