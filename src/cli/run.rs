//! `guardian run`: the service. Exit 0 after a clean stop on SIGTERM or
//! SIGINT, 2 on a bad config, 1 if probing stopped on its own.

use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::{ConfigArg, EXIT_BAD_CONFIG};
use crate::app::App;
use crate::clock::SystemClock;
use crate::config::{self, ProcessEnv};
use crate::shutdown;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(flatten)]
    pub config: ConfigArg,
}

pub async fn run(args: Args) -> anyhow::Result<u8> {
    let config = match config::load(&args.config.path, &ProcessEnv) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return Ok(EXIT_BAD_CONFIG);
        }
    };
    let listen = config.listen;
    let listener = TcpListener::bind(listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let app = App::build(config, Arc::new(SystemClock), &ProcessEnv).await?;
    let stopping = shutdown::signal();
    tracing::info!(
        addr = %listener.local_addr().unwrap_or(listen),
        environment = %app.config.environment,
        checks = app.config.checks.len(),
        config = %args.config.path.display(),
        "guardian serving"
    );
    let stop = CancellationToken::new();
    let running = app.start(listener, stop.clone());
    let code = tokio::select! {
        () = stopping => 0,
        () = running.failed() => 1,
    };
    stop.cancel();
    if !running.drain(shutdown::GRACE).await {
        tracing::warn!(grace = ?shutdown::GRACE, "some tasks did not stop within the grace period");
    }
    tracing::info!("stopped");
    Ok(code)
}
