//! Gate answer time under load: the real `guardian run` (examples/nextgen.yaml
//! pointed at the real `guardian sim`, SQLite storage) answers
//! `GET /api/v1/gate` at a fixed open-loop rate, while it keeps probing.
//!
//! `cargo bench --bench gate_load -- [--rate 200] [--seconds 30]`
//!
//! Open loop: requests start on a fixed schedule whether or not earlier ones
//! have answered, so a slow server shows up as latency, not as a lower rate.
//! One keep-alive client on loopback; latency is request start to full body.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use support::{start_guardian, start_sim};
use tokio::time::Instant;

mod support;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: u64| -> anyhow::Result<u64> {
        let value = args.iter().position(|a| a == name).and_then(|i| args.get(i + 1));
        Ok(value.map(|v| v.parse()).transpose()?.unwrap_or(default))
    };
    let (rate, seconds) = (flag("--rate", 200)?, flag("--seconds", 30)?);
    let dir = tempfile::tempdir()?;
    let (_sim, ports) = start_sim()?;
    let config = std::fs::read_to_string("examples/nextgen.yaml")?
        .replace("127.0.0.1:7000", &ports[0])
        .replace("127.0.0.1:7001", &ports[1])
        .replace("127.0.0.1:7002", &ports[2])
        .replace("listen: \"127.0.0.1:9090\"", "listen: \"127.0.0.1:0\"")
        .replace(
            "api:\n  token_env: GUARDIAN_API_TOKEN",
            "api:\n  token_env: GUARDIAN_API_TOKEN\n  requests_per_second: 100000",
        );
    std::fs::write(dir.path().join("guardian.yaml"), config)?;
    let (_guardian, addr) = start_guardian(dir.path())?;
    tokio::time::sleep(Duration::from_secs(6)).await; // every check has a result
    let client = reqwest::Client::builder().no_proxy().build()?;
    let url = format!("http://{addr}/api/v1/gate?environment=prod");
    let latencies = Arc::new(Mutex::new(Vec::new()));
    let errors = Arc::new(Mutex::new(0u64));
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    let end = Instant::now() + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    while Instant::now() < end {
        tick.tick().await;
        let (client, url, latencies, errors) = (client.clone(), url.clone(), latencies.clone(), errors.clone());
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let ok = match client.get(&url).send().await {
                Ok(r) => matches!(r.status().as_u16(), 200 | 409) && r.bytes().await.is_ok(),
                Err(_) => false,
            };
            if ok {
                latencies.lock().map(|mut l| l.push(t.elapsed())).ok();
            } else {
                errors.lock().map(|mut e| *e += 1).ok();
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let mut l = latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
    l.sort();
    anyhow::ensure!(!l.is_empty(), "no answers");
    let pct = |p: f64| l[((l.len() as f64 * p).ceil() as usize).clamp(1, l.len()) - 1].as_secs_f64() * 1000.0;
    let errors = *errors.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
    println!("| rate | answers | errors | p50 | p99 | max |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!("| {rate}/s | {} | {errors} | {:.2} ms | {:.2} ms | {:.2} ms |", l.len(), pct(0.5), pct(0.99), pct(1.0));
    Ok(())
}
