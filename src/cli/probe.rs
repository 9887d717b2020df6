//! `guardian probe -c FILE [--check NAME]`: one round, a table, and exit 0
//! when every probed check is good, 1 when any is bad, 2 on a bad config.

use std::sync::Arc;

use futures_util::StreamExt;

use super::{ConfigArg, EXIT_BAD_CONFIG};
use crate::clock::SystemClock;
use crate::config::{self, Check, ProcessEnv};
use crate::probe::{Outcome, ProbeResult, Prober};
use crate::units::format_duration;

/// Probes in flight at once during one round.
const MAX_CONCURRENT: usize = 16;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
    /// Probe only this check (repeat for several).
    #[arg(long = "check", value_name = "NAME")]
    pub checks: Vec<String>,
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let config = match config::load(&args.config.path, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(EXIT_BAD_CONFIG);
        }
    };
    let unknown: Vec<_> = args.checks.iter().filter(|n| !config.checks.iter().any(|c| &c.name == *n)).collect();
    if !unknown.is_empty() {
        eprintln!("guardian: no check named {} in {}", join(&unknown), args.config.path.display());
        return Ok(EXIT_BAD_CONFIG);
    }
    let chosen: Vec<&Check> =
        config.checks.iter().filter(|c| args.checks.is_empty() || args.checks.contains(&c.name)).collect();
    let prober = Prober::new(Arc::new(SystemClock))?;
    // Bounded, in config order: one round must not burst a thousand requests at production.
    let results: Vec<ProbeResult> = futures_util::stream::iter(chosen.iter().map(|c| prober.probe(c, |_| {})))
        .buffered(MAX_CONCURRENT)
        .collect()
        .await;
    print!("{}", table(&chosen, &results));
    Ok(if results.iter().all(|r| r.outcome == Outcome::Ok) { 0 } else { 1 })
}

/// The probe table: check, status, latency, budget, verdict and why.
pub fn table(checks: &[&Check], results: &[ProbeResult]) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(5).max(5);
    let mut out = format!(
        "{:<width$}  {:>6}  {:>8}  {:>8}  {:<7}  {}\n",
        "CHECK", "STATUS", "LATENCY", "BUDGET", "VERDICT", "WHY"
    );
    for (c, r) in checks.iter().zip(results) {
        let status = r.status.map_or("-".to_string(), |s| s.to_string());
        out += &format!(
            "{:<width$}  {:>6}  {:>8}  {:>8}  {:<7}  {}\n",
            c.name,
            status,
            format_duration(r.latency),
            format_duration(c.budget),
            r.outcome.code().to_uppercase(),
            r.reason
        );
    }
    out
}

fn join(names: &[&String]) -> String {
    names.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>().join(", ")
}
