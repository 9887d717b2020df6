//! Owns the command line: clap types, dispatch, and the exit codes of SPEC.
//! Each subcommand lives in its own file and returns its exit code; errors
//! are reported here with `anyhow`, once.

mod check_config;
mod demo;
mod gate;
mod probe;
mod run;
mod sim;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::telemetry::LogFormat;

/// Exit code for a bad configuration or bad usage (SPEC).
pub const EXIT_BAD_CONFIG: u8 = 2;

#[derive(Debug, Parser)]
#[command(name = "guardian", version, about = "Keeps NEXTGEN safe while it changes")]
pub struct Cli {
    /// Log line format (filter with RUST_LOG).
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service: probe continuously and serve the API.
    Run(run::Args),
    /// Validate a config file without starting anything.
    CheckConfig(check_config::Args),
    /// Probe each check once and print a table.
    Probe(probe::Args),
    /// Play the NEXTGEN story against the simulator, on the embedded defaults.
    Demo(demo::Args),
    /// Serve the NEXTGEN business API simulator.
    Sim(sim::Args),
    /// Ask a running guardian whether a deploy may go.
    Gate(gate::Args),
}

/// Runs the parsed command and returns its exit code.
pub async fn run(cli: Cli) -> u8 {
    let result = match cli.command {
        Command::Run(args) => run::run(args).await,
        Command::CheckConfig(args) => check_config::run(args),
        Command::Probe(args) => probe::run(args).await,
        Command::Demo(args) => demo::run(args).await,
        Command::Sim(args) => sim::run(args).await,
        Command::Gate(args) => gate::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("guardian: {e:#}");
            1
        }
    }
}

/// The config file to use: `-c`, else `$GUARDIAN_CONFIG`, else `guardian.yaml`.
#[derive(Debug, Clone, clap::Args)]
pub struct ConfigArg {
    /// Config file (YAML).
    #[arg(short = 'c', long = "config", env = "GUARDIAN_CONFIG", default_value = "guardian.yaml")]
    pub path: PathBuf,
}
