//! A guardian built and started inside the test process, its guard on the
//! simulated cluster with nextgen-dashboard settled on 1.8.1.

use std::net::SocketAddr;
use std::sync::Arc;

use guardian::app::App;
use guardian::clock::Clock;
use guardian::cluster::{MemoryCluster, TargetRef};
use guardian::config::{Config, Env, TargetKind};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// The Deployment every in-process test guards.
pub fn dashboard() -> TargetRef {
    TargetRef {
        kind: TargetKind::Deployment,
        namespace: "blueocean-nextgen-prod".into(),
        name: "nextgen-dashboard".into(),
    }
}

pub struct Started {
    pub app: App,
    pub cluster: Arc<MemoryCluster>,
    pub api: SocketAddr,
}

/// Builds the app (its config must set `guard.mode: simulated`), settles the
/// dashboard on 1.8.1 and serves the API on a free loopback port until `stop`.
pub async fn start_simulated(
    config: Config,
    clock: Arc<dyn Clock>,
    env: &dyn Env,
    stop: &CancellationToken,
) -> Started {
    let app = App::build(config, clock, env).await.unwrap();
    let cluster = app.guard.as_ref().unwrap().simulated.clone().expect("guard.mode: simulated");
    cluster.add(&dashboard(), "nextgen-dashboard:1.8.1");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = listener.local_addr().unwrap();
    let _running = app.start(listener, stop.clone());
    Started { app, cluster, api }
}
