//! Owns the NEXTGEN business API simulator (`guardian sim`, the demo, tests
//! and benches): three HTTP servers — landing, dashboard, admin — that serve
//! deterministic business bodies and obey faults injected at run time, over
//! `POST /sim/faults` or in-process through [`Faults`].

mod data;
mod faults;
mod routes;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use data::{ARR_EUR, CUSTOMER_COUNT, DOMAIN_COUNT};
pub use faults::{ANY_PATH, Fault, Faults};

use routes::Bodies;

/// The ports NEXTGEN uses: landing, dashboard, admin (SPEC).
pub const DEFAULT_PORTS: [u16; 3] = [7000, 7001, 7002];

/// The servers in port order; the names show up in messages and logs.
pub const SERVERS: [&str; 3] = ["landing", "dashboard", "admin"];

/// A running simulator: its bound addresses, its fault table, its servers.
#[derive(Debug)]
pub struct Simulator {
    addrs: [SocketAddr; 3],
    faults: Faults,
    servers: Vec<JoinHandle<()>>,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot bind the {server} simulator on {addr}: {source}")]
    Bind { server: &'static str, addr: SocketAddr, source: std::io::Error },
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Simulator {
    /// Binds the three servers (landing, dashboard, admin) on `bind` with
    /// these ports (0 = ephemeral) and serves until `stop` is cancelled.
    /// All three are bound before any serves, so a failure leaves none running.
    pub async fn start(bind: IpAddr, ports: [u16; 3], stop: CancellationToken) -> Result<Simulator> {
        let mut listeners = Vec::with_capacity(3);
        let mut addrs = [SocketAddr::new(bind, 0); 3];
        for ((server, port), addr) in SERVERS.into_iter().zip(ports).zip(&mut addrs) {
            let (listener, bound) = listen(server, SocketAddr::new(bind, port)).await?;
            listeners.push(listener);
            *addr = bound;
        }
        let faults = Faults::default();
        let domains = data::portfolio();
        let bodies = [Bodies::landing(&domains), Bodies::business("nextgen-dashboard", &domains), Bodies::admin()];
        let mut servers = Vec::with_capacity(3);
        for ((server, listener), bodies) in SERVERS.into_iter().zip(listeners).zip(bodies) {
            let app = routes::router(Arc::new(bodies), faults.clone(), stop.clone());
            servers.push(tokio::spawn(serve(server, listener, app, stop.clone())));
        }
        Ok(Simulator { addrs, faults, servers })
    }

    pub fn landing(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn dashboard(&self) -> SocketAddr {
        self.addrs[1]
    }

    pub fn admin(&self) -> SocketAddr {
        self.addrs[2]
    }

    /// Every server with its bound address, in port order.
    pub fn addresses(&self) -> impl Iterator<Item = (&'static str, SocketAddr)> + '_ {
        SERVERS.into_iter().zip(self.addrs)
    }

    /// In-process fault injection, with the same effect as `POST /sim/faults`.
    pub fn faults(&self) -> &Faults {
        &self.faults
    }

    /// Waits for the servers to finish after `stop` is cancelled.
    pub async fn stopped(self) {
        for server in self.servers {
            if let Err(e) = server.await {
                tracing::error!(error = %e, "simulator server task failed");
            }
        }
    }
}

/// Binds one server and reads back its address (port 0 becomes a real one).
async fn listen(server: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let bind_err = |source| Error::Bind { server, addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_err)?;
    let bound = listener.local_addr().map_err(bind_err)?;
    tracing::info!(server, addr = %bound, "simulator listening");
    Ok((listener, bound))
}

async fn serve(server: &'static str, listener: TcpListener, app: axum::Router, stop: CancellationToken) {
    let served = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned()).await;
    if let Err(e) = served {
        tracing::error!(server, error = %e, "simulator server stopped with an error");
    }
}
