//! `guardian sim`: serves the NEXTGEN business API simulator until SIGTERM or
//! SIGINT, printing one line per bound address so scripts can find the ports.

use std::net::{IpAddr, Ipv4Addr};

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::shutdown;
use crate::sim::Simulator;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Ports of the landing, dashboard and admin servers, comma-separated (0 = any free port).
    #[arg(long, value_parser = parse_ports, default_value = "7000,7001,7002")]
    pub ports: Ports,
    /// Address to bind the three servers on.
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub bind: IpAddr,
}

/// The three ports, in landing, dashboard, admin order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ports(pub [u16; 3]);

/// Serves until a stop signal, then drains within the shutdown grace period.
pub async fn run(args: Args) -> anyhow::Result<u8> {
    let stop = CancellationToken::new();
    let sim = Simulator::start(args.bind, args.ports.0, stop.clone()).await.context("cannot start the simulator")?;
    let stopping = shutdown::signal();
    for (server, addr) in sim.addresses() {
        println!("{server} listening on {addr}");
    }
    stopping.await;
    stop.cancel();
    if tokio::time::timeout(shutdown::GRACE, sim.stopped()).await.is_err() {
        tracing::warn!(grace = ?shutdown::GRACE, "simulator did not drain in time");
    }
    Ok(0)
}

fn parse_ports(s: &str) -> Result<Ports, String> {
    let parts: Vec<&str> = s.split(',').map(str::trim).collect();
    let [landing, dashboard, admin] = parts.as_slice() else {
        return Err(format!(
            "expected exactly three comma-separated ports (landing,dashboard,admin), got {}",
            parts.len()
        ));
    };
    let port = |p: &str| p.parse::<u16>().map_err(|e| format!("bad port {p:?}: {e}"));
    Ok(Ports([port(landing)?, port(dashboard)?, port(admin)?]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_ports_parse_in_order() {
        assert_eq!(parse_ports("7000,7001,7002"), Ok(Ports([7000, 7001, 7002])));
        assert_eq!(parse_ports("0, 0, 0"), Ok(Ports([0, 0, 0])));
    }

    #[test]
    fn anything_but_three_valid_ports_is_refused() {
        assert!(parse_ports("7000,7001").is_err());
        assert!(parse_ports("7000,7001,7002,7003").is_err());
        assert!(parse_ports("7000,x,7002").is_err());
        assert!(parse_ports("7000,70000,7002").is_err());
    }
}
