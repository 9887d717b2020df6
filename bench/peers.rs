//! Guardian against its peers, in one run, one after the other against the
//! same simulator: Guardian and Debian's `prometheus-blackbox-exporter`
//! probing the same N targets once a second, then `wrk` on a simulator
//! endpoint (the loopback floor), then the `guard_onset` bench.
//!
//! `cargo bench --bench peers -- [--targets 100,1000] [--seconds 30] [--agree-seconds 10]
//!  [--onset-pairs 10] [--onset-rounds 1]` (`--onset-rounds 0` skips the onset run)
//!
//! The simulator (`guardian sim`, its own process) gets four latency classes
//! injected by path: 0, 20, 100 and 400 ms; target i is class i mod 4 on the
//! landing or dashboard port, with `?t=i` so every target is its own URL.
//! CPU is utime + stime from /proc/PID/stat, peak RSS is VmHWM.
//!
//! - Guardian: `guardian run`, N checks at 1 s (budget 1 s, timeout 2 s).
//!   Probes counted from `guardian_probes_total`; latencies read afterwards
//!   from `/api/v1/status` once a second (each check's last probe), so that
//!   polling is outside the CPU window.
//! - blackbox_exporter probes only when scraped: a scraper in this bench
//!   sends one `/probe?module=http_2xx&target=…` per target per second, each
//!   target at its own phase of the second, one in flight per target (as
//!   Prometheus does), and reads `probe_duration_seconds` from each answer.
//!   A real Prometheus would add a third busy process on a 2-core machine
//!   and store every answer; the scraper's own CPU is reported instead.
//! - wrk: `wrk -t1 -cN -dS` on the 0 ms endpoint; its CPU from /proc.
//! - Fault onset to pause: the `guard_onset` bench's executable, built before
//!   the measurements and run after them.

use std::collections::HashSet;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, bail};
use procfs::{cpu, loadavg, peak_rss_kib, stat_fields};
use support::{Proc, start_guardian, start_sim};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

mod procfs;
mod support;

const WARMUP: Duration = Duration::from_secs(3);
const BLACKBOX: &str = "/usr/bin/prometheus-blackbox-exporter";
const WRK: &str = "/usr/bin/wrk";
/// Injected latency (ms) and the path it is injected on.
const CLASSES: [(u64, &str); 4] =
    [(0, "/api/health"), (20, "/api/customers/count"), (100, "/api/revenue/status"), (400, "/api/payments/health")];

/// What one prober did over the measured window.
#[derive(Default)]
struct Measured {
    done: f64,
    failed: u64,
    seconds: f64,
    cpu: f64,
    rss_kib: u64,
    sim_cpu: f64,
    /// measured − injected latency (ms), by class, over its samples.
    deltas: [Vec<f64>; 4],
    /// The scraper's CPU (blackbox only): what Prometheus would spend driving it.
    driver_cpu: Option<f64>,
}

struct Wrk {
    requests: f64,
    seconds: f64,
    cpu: f64,
    rss_kib: u64,
    sim_cpu: f64,
}

struct Flags {
    sizes: Vec<usize>,
    length: Duration,
    agree: Duration,
    onset_pairs: usize,
    onset_rounds: usize,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let flags = flags()?;
    for tool in [BLACKBOX, WRK] {
        if !std::path::Path::new(tool).exists() {
            bail!("{tool} is missing: apt-get install -y prometheus-blackbox-exporter wrk");
        }
    }
    let onset_exe = if flags.onset_rounds > 0 { Some(build_guard_onset()?) } else { None };
    let load_before = loadavg();
    println!("{}", machine());
    println!("load average before: {load_before}\n");
    let (sim, ports) = start_sim()?;
    inject_latency(&ports[0]).await?;
    let mut rows = Vec::new();
    for &n in &flags.sizes {
        let targets = targets(n, &ports);
        let g = guardian(&targets, sim.0.id(), flags.length, flags.agree).await?;
        let b = blackbox(&targets, sim.0.id(), flags.length).await?;
        let w = wrk(n, &format!("http://{}{}", ports[0], CLASSES[0].1), sim.0.id(), flags.length).await?;
        rows.extend(table_rows(n, &g, &b, &w));
    }
    drop(sim);
    let onset = match onset_exe {
        Some(exe) => run_guard_onset(&exe, flags.onset_pairs, flags.onset_rounds)?,
        None => String::new(),
    };
    println!("| measure | targets | Guardian | blackbox_exporter | wrk (floor) |");
    println!("|---|---:|---:|---:|---:|");
    rows.iter().for_each(|r| println!("{r}"));
    onset_rows(&onset).iter().for_each(|r| println!("{r}"));
    println!("\nload average after: {}", loadavg());
    if !onset.is_empty() {
        println!("\nguard_onset, as printed:\n\n{onset}");
    }
    Ok(())
}

fn flags() -> anyhow::Result<Flags> {
    let args: Vec<String> = std::env::args().collect();
    let flag = |name: &str, default: &str| -> String {
        args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned().unwrap_or_else(|| default.into())
    };
    let secs = |name: &str, default: &str| -> anyhow::Result<Duration> {
        Ok(Duration::from_secs(flag(name, default).parse().with_context(|| name.to_string())?))
    };
    Ok(Flags {
        sizes: flag("--targets", "100,1000").split(',').map(str::parse).collect::<Result<_, _>>()?,
        length: secs("--seconds", "30")?,
        agree: secs("--agree-seconds", "10")?,
        onset_pairs: flag("--onset-pairs", "10").parse()?,
        onset_rounds: flag("--onset-rounds", "1").parse()?,
    })
}

/// One URL per target: class i mod 4, alternating landing and dashboard.
fn targets(n: usize, ports: &[String]) -> Vec<String> {
    (0..n).map(|i| format!("http://{}{}?t={i}", ports[(i / CLASSES.len()) % 2], CLASSES[i % CLASSES.len()].1)).collect()
}

async fn inject_latency(sim: &str) -> anyhow::Result<()> {
    let client = reqwest::Client::builder().no_proxy().build()?;
    for (ms, path) in CLASSES.iter().filter(|(ms, _)| *ms > 0) {
        let fault = serde_json::json!({ "path": path, "latency_ms": ms });
        let res = client.post(format!("http://{sim}/sim/faults")).body(fault.to_string()).send().await?;
        if !res.status().is_success() {
            bail!("cannot inject {ms} ms on {path}: {}", res.status());
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- Guardian

async fn guardian(targets: &[String], sim: u32, length: Duration, agree: Duration) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir()?;
    std::fs::write(dir.path().join("guardian.yaml"), guardian_config(targets))?;
    let (guardian, addr) = start_guardian(dir.path())?;
    let pid = guardian.0.id();
    let client = reqwest::Client::builder().no_proxy().build()?;
    let metrics = format!("http://{addr}/metrics");
    tokio::time::sleep(WARMUP).await;
    let before = (probe_counts(&get(&client, &metrics).await?), cpu(pid)?, cpu(sim)?, Instant::now());
    tokio::time::sleep(length).await;
    let after = (probe_counts(&get(&client, &metrics).await?), cpu(pid)?, cpu(sim)?, before.3.elapsed());
    let rss_kib = peak_rss_kib(pid)?;
    let deltas = guardian_latencies(&client, &format!("http://{addr}/api/v1/status"), agree).await?;
    drop(guardian);
    let done = after.0.0 - before.0.0;
    if done <= 0.0 {
        bail!("Guardian finished no probe in {:?}", after.3);
    }
    Ok(Measured {
        done,
        failed: (after.0.1 - before.0.1) as u64,
        seconds: after.3.as_secs_f64(),
        cpu: after.1 - before.1,
        rss_kib,
        sim_cpu: after.2 - before.2,
        deltas,
        driver_cpu: None,
    })
}

fn guardian_config(targets: &[String]) -> String {
    let mut text = format!(
        "environment: dev\nlisten: \"127.0.0.1:0\"\nprobing:\n  per_host_per_second: {}\nchecks:\n",
        targets.len() * 2 + 10
    );
    for (i, url) in targets.iter().enumerate() {
        text +=
            &format!("  - {{ name: c{i}, url: \"{url}\", interval: 1s, budget: 1s, expect: {{ status: [200] }} }}\n");
    }
    text
}

/// (all finished probes, those not ok) from `guardian_probes_total`.
fn probe_counts(metrics: &str) -> (f64, f64) {
    let lines = metrics.lines().filter(|l| l.starts_with("guardian_probes_total{"));
    let values = lines.filter_map(|l| Some((l.contains("outcome=\"ok\""), l.rsplit(' ').next()?.parse::<f64>().ok()?)));
    values.fold((0.0, 0.0), |(all, bad), (ok, v)| (all + v, if ok { bad } else { bad + v }))
}

/// Each check's last probe, read once a second for `agree`; every probe counted once.
async fn guardian_latencies(client: &reqwest::Client, url: &str, agree: Duration) -> anyhow::Result<[Vec<f64>; 4]> {
    let mut seen = HashSet::new();
    let mut deltas: [Vec<f64>; 4] = Default::default();
    let end = Instant::now() + agree;
    while Instant::now() < end {
        let status: serde_json::Value = serde_json::from_str(&get(client, url).await?)?;
        for check in status["checks"].as_array().context("status checks")? {
            let (name, last) = (check["name"].as_str().context("check name")?, &check["last"]);
            let (Some(started), Some(latency)) = (last["started_at"].as_str(), last["latency"].as_f64()) else {
                continue;
            };
            let class = name.trim_start_matches('c').parse::<usize>()? % CLASSES.len();
            if last["outcome"] == "ok" && seen.insert((name.to_string(), started.to_string())) {
                deltas[class].push(latency * 1000.0 - CLASSES[class].0 as f64);
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(deltas)
}

// ---------------------------------------------------------- blackbox_exporter

const BLACKBOX_CONFIG: &str = "modules:\n  http_2xx:\n    prober: http\n    timeout: 2s\n    http:\n      preferred_ip_protocol: ip4\n      ip_protocol_fallback: false\n";

async fn blackbox(targets: &[String], sim: u32, length: Duration) -> anyhow::Result<Measured> {
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("blackbox.yml");
    std::fs::write(&config, BLACKBOX_CONFIG)?;
    let addr = format!("127.0.0.1:{}", std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port());
    let child = Command::new(BLACKBOX)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address={addr}"))
        .arg("--log.level=warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let blackbox = Proc(child);
    let client = reqwest::Client::builder().no_proxy().pool_max_idle_per_host(targets.len()).build()?;
    wait_healthy(&client, &format!("http://{addr}/-/healthy")).await?;
    let scraper = Scraper::start(&client, &addr, targets)?;
    tokio::time::sleep(WARMUP).await;
    let pid = blackbox.0.id();
    let before = (cpu(pid)?, cpu(sim)?, cpu(std::process::id())?, Instant::now());
    scraper.recording.store(true, Ordering::SeqCst);
    tokio::time::sleep(length).await;
    scraper.recording.store(false, Ordering::SeqCst);
    let after = (cpu(pid)?, cpu(sim)?, cpu(std::process::id())?, before.3.elapsed());
    let rss_kib = peak_rss_kib(pid)?;
    let (done, failed, deltas) = scraper.stop().await;
    if done == 0 {
        bail!("blackbox_exporter answered no probe in {:?}", after.3);
    }
    Ok(Measured {
        done: done as f64,
        failed,
        seconds: after.3.as_secs_f64(),
        cpu: after.0 - before.0,
        rss_kib,
        sim_cpu: after.1 - before.1,
        deltas,
        driver_cpu: Some(after.2 - before.2),
    })
}

async fn wait_healthy(client: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if client.get(url).send().await.is_ok_and(|r| r.status().is_success()) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("blackbox_exporter not healthy at {url} within 15 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One task per target, each sending one /probe a second at its own phase.
struct Scraper {
    stop: CancellationToken,
    recording: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    deltas: Arc<Mutex<[Vec<f64>; 4]>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Scraper {
    fn start(client: &reqwest::Client, addr: &str, targets: &[String]) -> anyhow::Result<Scraper> {
        let mut s = Scraper {
            stop: CancellationToken::new(),
            recording: Arc::default(),
            ok: Arc::default(),
            failed: Arc::default(),
            deltas: Arc::default(),
            tasks: Vec::with_capacity(targets.len()),
        };
        let start = Instant::now();
        for (i, target) in targets.iter().enumerate() {
            let mut url = url::Url::parse(&format!("http://{addr}/probe"))?;
            url.query_pairs_mut().append_pair("module", "http_2xx").append_pair("target", target);
            let phase = start + Duration::from_secs_f64(i as f64 / targets.len() as f64);
            s.tasks.push(tokio::spawn(s.scrape_loop(client.clone(), url, phase, i % CLASSES.len())));
        }
        Ok(s)
    }

    fn scrape_loop(
        &self,
        client: reqwest::Client,
        url: url::Url,
        phase: Instant,
        class: usize,
    ) -> impl Future<Output = ()> + use<> {
        let (stop, recording) = (self.stop.clone(), self.recording.clone());
        let (ok, failed, deltas) = (self.ok.clone(), self.failed.clone(), self.deltas.clone());
        async move {
            let mut tick = tokio::time::interval_at(phase, Duration::from_secs(1));
            tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = tick.tick() => {}
                }
                let answer = scrape(&client, url.clone()).await;
                if !recording.load(Ordering::SeqCst) {
                    continue;
                }
                match answer {
                    Some(seconds) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        let delta = seconds * 1000.0 - CLASSES[class].0 as f64;
                        deltas.lock().unwrap_or_else(|e| e.into_inner())[class].push(delta);
                    }
                    None => _ = failed.fetch_add(1, Ordering::Relaxed),
                }
            }
        }
    }

    /// (probes that succeeded, probes that did not, latency deltas by class).
    async fn stop(self) -> (u64, u64, [Vec<f64>; 4]) {
        self.stop.cancel();
        for task in self.tasks {
            let _ = task.await;
        }
        let deltas = std::mem::take(&mut *self.deltas.lock().unwrap_or_else(|e| e.into_inner()));
        (self.ok.load(Ordering::SeqCst), self.failed.load(Ordering::SeqCst), deltas)
    }
}

/// `probe_duration_seconds` of a successful probe; `None` for any failure.
async fn scrape(client: &reqwest::Client, url: url::Url) -> Option<f64> {
    let body = client.get(url).timeout(Duration::from_secs(5)).send().await.ok()?.text().await.ok()?;
    let value =
        |name: &str| body.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse::<f64>().ok());
    (value("probe_success") == Some(1.0)).then(|| value("probe_duration_seconds")).flatten()
}

// ---------------------------------------------------------------- wrk

async fn wrk(n: usize, url: &str, sim: u32, length: Duration) -> anyhow::Result<Wrk> {
    let child = Command::new(WRK)
        .args(["-t1", &format!("-c{n}"), &format!("-d{}s", length.as_secs()), url])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let (pid, sim0, t0) = (child.id(), cpu(sim)?, Instant::now());
    let mut rss_kib = 0;
    // Read wrk's CPU once it has exited but is not yet reaped: /proc still has its totals.
    let wrk_cpu = loop {
        if state(pid)? == 'Z' {
            break cpu(pid)?;
        }
        rss_kib = peak_rss_kib(pid).unwrap_or(rss_kib);
        if t0.elapsed() > length + Duration::from_secs(30) {
            bail!("wrk did not finish");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let (sim1, seconds) = (cpu(sim)?, t0.elapsed().as_secs_f64());
    let out = String::from_utf8(child.wait_with_output()?.stdout)?;
    let requests = out
        .lines()
        .find_map(|l| l.trim().split_once(" requests in ")?.0.parse::<f64>().ok())
        .with_context(|| format!("wrk output: {out}"))?;
    Ok(Wrk { requests, seconds, cpu: wrk_cpu, rss_kib, sim_cpu: sim1 - sim0 })
}

// ---------------------------------------------------------------- guard_onset

/// Builds the `guard_onset` bench now, so its compilation overlaps no measurement.
fn build_guard_onset() -> anyhow::Result<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args(["bench", "--bench", "guard_onset", "--no-run", "--message-format", "json-render-diagnostics"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("cannot build the guard_onset bench");
    }
    let artifacts = String::from_utf8(out.stdout)?;
    artifacts
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["reason"] == "compiler-artifact" && v["target"]["name"] == "guard_onset")
        .find_map(|v| v["executable"].as_str().map(String::from))
        .context("guard_onset executable")
}

fn run_guard_onset(exe: &str, pairs: usize, rounds: usize) -> anyhow::Result<String> {
    let out = Command::new(exe)
        .args(["--pairs", &pairs.to_string(), "--rounds", &rounds.to_string()])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("guard_onset failed: {}", out.status);
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// guard_onset's pause and rollback rows, in this table's columns.
fn onset_rows(onset: &str) -> Vec<String> {
    let rows = onset.lines().filter(|l| l.starts_with("| payments"));
    rows.filter_map(|l| {
        let cells: Vec<&str> = l.split('|').map(str::trim).collect();
        let [_, name, count, p50, p95, p99, max, ..] = cells.as_slice() else { return None };
        Some(format!(
            "| fault onset → {name} (p50 / p95 / p99 / max) | {count} rollouts | {p50} / {p95} / {p99} / {max} | no actions | no actions |"
        ))
    })
    .collect()
}

// ---------------------------------------------------------------- the table

fn table_rows(n: usize, g: &Measured, b: &Measured, w: &Wrk) -> Vec<String> {
    let per_k = |cpu: f64, done: f64| format!("{:.3}", cpu / done * 1000.0);
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let mut rows = vec![
        format!(
            "| probes (wrk: requests) / s | {n} | {:.0} | {:.0} | {:.0} |",
            g.done / g.seconds,
            b.done / b.seconds,
            w.requests / w.seconds
        ),
        format!("| failed probes | {n} | {} | {} | - |", g.failed, b.failed),
        format!(
            "| CPU s / 1,000 probes (requests) | {n} | {} | {} | {} |",
            per_k(g.cpu, g.done),
            per_k(b.cpu, b.done),
            per_k(w.cpu, w.requests)
        ),
        format!(
            "| + scraper CPU s / 1,000 probes | {n} | - | {} | - |",
            b.driver_cpu.map_or("-".into(), |d| per_k(d, b.done))
        ),
        format!("| peak RSS | {n} | {} | {} | {} |", mib(g.rss_kib), mib(b.rss_kib), mib(w.rss_kib)),
        format!(
            "| simulator CPU s / 1,000 requests | {n} | {} | {} | {} |",
            per_k(g.sim_cpu, g.done),
            per_k(b.sim_cpu, b.done),
            per_k(w.sim_cpu, w.requests)
        ),
    ];
    for (class, (ms, _)) in CLASSES.iter().enumerate() {
        rows.push(format!(
            "| measured − injected {ms} ms: p50 / p99 (samples) | {n} | {} | {} | - |",
            agreement(&g.deltas[class]),
            agreement(&b.deltas[class])
        ));
    }
    rows
}

fn agreement(deltas: &[f64]) -> String {
    let mut v = deltas.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| v.get(((v.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or(f64::NAN);
    format!("{:+.1} / {:+.1} ms ({})", q(0.50), q(0.99), v.len())
}

// ---------------------------------------------------------------- /proc and the machine

async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    client.get(url).send().await?.text().await.with_context(|| format!("GET {url}"))
}

/// The fields of /proc/PID/stat after the command name (which may hold spaces).
fn state(pid: u32) -> anyhow::Result<char> {
    stat_fields(pid)?.first().and_then(|s| s.chars().next()).context("stat state")
}

/// nproc, CPU model, kernel, rustc and commit, for the results.
fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |name: &str| {
        cpuinfo.lines().find(|l| l.starts_with(name)).and_then(|l| l.split_once(':')).map_or("?", |(_, v)| v.trim())
    };
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let run = |cmd: &str, args: &[&str]| {
        let out = Command::new(cmd).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output();
        out.map_or_else(|e| e.to_string(), |o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let dirty = run("git", &["status", "--porcelain"]).lines().count();
    format!(
        "machine: {cpus} CPUs, {} @ {} MHz, Linux {}, {}; commit {} ({dirty} paths with uncommitted changes)",
        field("model name"),
        field("cpu MHz"),
        kernel.trim(),
        run("rustc", &["--version"]),
        run("git", &["rev-parse", "--short", "HEAD"])
    )
}
