//! The NEXTGEN simulator on loopback for a test, stopped when dropped.

use guardian::sim::Simulator;
use tokio_util::sync::CancellationToken;

pub struct Sim {
    pub sim: Simulator,
    stop: CancellationToken,
}

impl Sim {
    pub async fn start() -> Self {
        let stop = CancellationToken::new();
        let sim = Simulator::start(std::net::Ipv4Addr::LOCALHOST.into(), [0, 0, 0], stop.clone()).await.unwrap();
        Self { sim, stop }
    }
}

impl Drop for Sim {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}
