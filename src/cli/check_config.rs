//! `guardian check-config -c FILE`: validate without starting anything.

use super::{ConfigArg, EXIT_BAD_CONFIG};
use crate::config::{self, ProcessEnv};

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
}

pub fn run(args: Args) -> anyhow::Result<u8> {
    match config::load(&args.config.path, &ProcessEnv) {
        Ok(c) => {
            println!(
                "{}: ok ({} checks, {} SLOs, {} guarded targets, environment {})",
                args.config.path.display(),
                c.checks.len(),
                c.slos.len(),
                c.guard.targets.len(),
                c.environment
            );
            Ok(0)
        }
        Err(e) => {
            for line in e.lines() {
                eprintln!("{line}");
            }
            Ok(EXIT_BAD_CONFIG)
        }
    }
}
