//! The `guardian` binary: parse the command line, start logging and
//! tracing, run the subcommand, flush the last spans, and map its result to
//! the exit codes of SPEC.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = guardian::cli::Cli::parse();
    // The demo's live view is on stdout; keep routine log lines out of it.
    let default_filter = if matches!(cli.command, guardian::cli::Command::Demo(_)) { "warn" } else { "info" };
    let telemetry = match guardian::telemetry::init(cli.log_format, default_filter) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("guardian: cannot start logging: {e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("guardian: cannot start the async runtime: {e}");
            telemetry.shutdown();
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(guardian::cli::run(cli));
    // In-flight work was drained inside `run`; do not wait on stragglers here.
    runtime.shutdown_timeout(std::time::Duration::from_millis(100));
    // The exporter has its own thread: the last spans leave after the runtime is gone.
    telemetry.shutdown();
    ExitCode::from(code)
}
