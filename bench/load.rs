//! What `probe_load` and `gate_load` share: a config of N checks at 1 s over
//! the simulator, counters read from `/metrics`, CPU read from /proc (the
//! guardian's, the simulator's, this bench's own and the whole machine's,
//! since they all share the same cores), and an open-loop gate client.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use crate::procfs::{USER_HZ, cpu};

/// The simulator endpoints the checks rotate over: path, simulator port
/// (0 landing, 1 dashboard, 2 admin), budget.
pub const ENDPOINTS: [(&str, usize, &str); 6] = [
    ("/api/revenue/status", 1, "500ms"),
    ("/api/payments/health", 1, "3s"),
    ("/api/domains/count", 1, "2s"),
    ("/api/customers/count", 1, "1s"),
    ("/api/health", 0, "1s"),
    ("/api/admin/health", 2, "1s"),
];

/// `checks` checks at 1 s rotating over `ENDPOINTS`, after `head` (environment,
/// listen, storage, gate...). All of them share the simulator's three
/// host:ports, so the per-host limit is raised to twice what they need: the
/// default of 50 would skip most probes.
pub fn checks_config(head: &str, checks: usize, ports: &[String]) -> String {
    let mut text = format!("{head}probing:\n  per_host_per_second: {}\nchecks:\n", checks * 2 + 10);
    for i in 0..checks {
        let (path, port, budget) = ENDPOINTS[i % ENDPOINTS.len()];
        text += &format!(
            "  - {{ name: c{i}, url: \"http://{}{path}\", interval: 1s, budget: {budget}, expect: {{ status: [200] }} }}\n",
            ports[port]
        );
    }
    text
}

/// Counters and CPU at one instant.
#[derive(Clone, Copy)]
pub struct Sample {
    at: Instant,
    probes: f64,
    skipped: f64,
    guardian: f64,
    sim: f64,
    bench: f64,
    machine_busy: f64,
}

/// What happened between two samples.
pub struct Span {
    pub seconds: f64,
    pub probes: f64,
    pub skipped: f64,
    /// CPU seconds of each process over the span.
    pub guardian: f64,
    pub sim: f64,
    pub bench: f64,
    /// Every process on the machine (other helpers' builds included).
    pub machine: f64,
}

impl Sample {
    pub async fn take(client: &reqwest::Client, metrics_url: &str, guardian: u32, sim: u32) -> anyhow::Result<Self> {
        // At 10,000 checks a render takes half a second: the counters were read somewhere within it.
        let asked = Instant::now();
        let text = get(client, metrics_url).await?;
        Ok(Self {
            at: asked + (Instant::now() - asked) / 2,
            probes: sum_of(&text, "guardian_probes_total{"),
            skipped: sum_of(&text, "guardian_probes_skipped_total{"),
            guardian: cpu(guardian)?,
            sim: cpu(sim)?,
            bench: cpu(std::process::id())?,
            machine_busy: machine_busy()?,
        })
    }

    pub fn until(&self, later: &Sample) -> Span {
        Span {
            seconds: later.at.duration_since(self.at).as_secs_f64(),
            probes: later.probes - self.probes,
            skipped: later.skipped - self.skipped,
            guardian: later.guardian - self.guardian,
            sim: later.sim - self.sim,
            bench: later.bench - self.bench,
            machine: later.machine_busy - self.machine_busy,
        }
    }
}

impl Span {
    /// Cores in use on average: CPU seconds per wall second.
    pub fn cores(&self, cpu_seconds: f64) -> f64 {
        cpu_seconds / self.seconds
    }

    /// What the rest of the machine used: other helpers' builds and tests.
    pub fn others(&self) -> f64 {
        (self.machine - self.guardian - self.sim - self.bench).max(0.0)
    }
}

/// Sum of every series of the metric whose lines start with `prefix`.
fn sum_of(metrics: &str, prefix: &str) -> f64 {
    metrics.lines().filter(|l| l.starts_with(prefix)).filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok()).sum()
}

pub async fn get(client: &reqwest::Client, url: &str) -> anyhow::Result<String> {
    client.get(url).send().await?.text().await.with_context(|| format!("GET {url}"))
}

/// `GET url` open loop at `rate` per second until `stop`: requests start on
/// schedule whether or not earlier ones answered, so a slow server shows up
/// as latency, not as a lower rate. Latency is request start to full body.
pub struct GateClient {
    latencies: Arc<Mutex<Vec<Duration>>>,
    errors: Arc<Mutex<u64>>,
    stop: CancellationToken,
    driver: tokio::task::JoinHandle<Vec<tokio::task::JoinHandle<()>>>,
}

/// Gate answers over a span.
pub struct GateAnswers {
    pub sorted: Vec<Duration>,
    pub errors: u64,
}

impl GateClient {
    pub fn start(client: reqwest::Client, url: String, rate: f64) -> Self {
        let (latencies, errors, stop) =
            (Arc::new(Mutex::new(Vec::new())), Arc::new(Mutex::new(0)), CancellationToken::new());
        let (l, e, s) = (latencies.clone(), errors.clone(), stop.clone());
        let driver = tokio::spawn(async move {
            let mut tasks = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
            // A stalled bench must not fire a burst to catch up: that would be a load the rate does not say.
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = s.cancelled() => return tasks,
                    _ = tick.tick() => {}
                }
                let (client, url, l, e) = (client.clone(), url.clone(), l.clone(), e.clone());
                tasks.push(tokio::spawn(async move {
                    let t = Instant::now();
                    let ok = match client.get(&url).send().await {
                        Ok(r) => matches!(r.status().as_u16(), 200 | 409) && r.bytes().await.is_ok(),
                        Err(_) => false,
                    };
                    if ok {
                        l.lock().map(|mut l| l.push(t.elapsed())).ok();
                    } else {
                        e.lock().map(|mut e| *e += 1).ok();
                    }
                }));
            }
        });
        Self { latencies, errors, stop, driver }
    }

    /// Stops sending, waits for the answers in flight.
    pub async fn finish(self) -> anyhow::Result<GateAnswers> {
        self.stop.cancel();
        for t in self.driver.await? {
            t.await?;
        }
        let mut sorted = self.latencies.lock().map_err(|_| anyhow::anyhow!("poisoned"))?.clone();
        sorted.sort();
        let errors = *self.errors.lock().map_err(|_| anyhow::anyhow!("poisoned"))?;
        Ok(GateAnswers { sorted, errors })
    }
}

/// One measured span of a running guardian while its gate is under load.
pub struct Measured {
    pub span: Span,
    pub gate: GateAnswers,
}

/// Lets the guardian (`gpid`, serving at `addr`) and the simulator (`spid`)
/// warm up, then measures `length` of them while the gate of `environment`
/// is asked `rate` times a second (open loop).
pub async fn measure(
    addr: &str,
    (gpid, spid): (u32, u32),
    environment: &str,
    rate: f64,
    (warmup, length): (Duration, Duration),
) -> anyhow::Result<Measured> {
    tokio::time::sleep(warmup).await;
    let client = reqwest::Client::builder().no_proxy().build()?;
    let metrics = format!("http://{addr}/metrics");
    let before = Sample::take(&client, &metrics, gpid, spid).await?;
    let gate = GateClient::start(client.clone(), format!("http://{addr}/api/v1/gate?environment={environment}"), rate);
    tokio::time::sleep(length).await;
    let after = Sample::take(&client, &metrics, gpid, spid).await?;
    let gate = gate.finish().await?;
    Ok(Measured { span: before.until(&after), gate })
}

/// Nearest-rank percentile, in milliseconds; NaN when there is nothing.
pub fn percentile_ms(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1].as_secs_f64() * 1000.0
}

/// CPU seconds the whole machine spent busy (not idle, not waiting on I/O) since boot.
fn machine_busy() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/stat")?;
    let line = stat.lines().next().context("/proc/stat")?;
    let ticks: Vec<f64> = line.split_whitespace().skip(1).map(str::parse).collect::<Result<_, _>>()?;
    let (idle, iowait) = (ticks.get(3).copied().unwrap_or(0.0), ticks.get(4).copied().unwrap_or(0.0));
    Ok((ticks.iter().take(8).sum::<f64>() - idle - iowait) / USER_HZ)
}

/// CPUs, CPU model and kernel, for the results.
pub fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split_once(':'));
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} CPUs, {}, Linux {}", model.map_or("?", |(_, v)| v.trim()), kernel.trim())
}
