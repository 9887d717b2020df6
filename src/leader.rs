//! Owns who may act among guardian replicas. Pausing and rolling back must
//! happen at most once per target and revision even with several replicas,
//! so only the leader acts; the others keep probing and answering the gate.
//!
//! `Solo` is a single replica (simulated mode, or election turned off): it
//! always leads. `LeaseElector` elects through a `coordination.k8s.io/v1`
//! Lease, as client-go's leaderelection does (the rule is in `lease.rs`).
//! `RedisLock` elects through a Redis lock with fencing tokens, when
//! Kubernetes is off (the rule is in `redis_lock.rs`).

mod lease;
mod redis_lock;

use tokio::sync::watch;

pub use lease::{LeaseElector, LeaseTiming};
pub use redis_lock::{LockTiming, RedisLock};

/// Whether this replica may act, as every caller that acts must ask first.
#[async_trait::async_trait]
pub trait Leadership: Send + Sync + 'static {
    /// Whether this replica may act right now. Must only be true while the
    /// lease is known held: renewed less than (lease duration − a safety margin) ago,
    /// measured on the monotonic clock (tokio::time::Instant).
    fn is_leader(&self) -> bool;
    /// A receiver that changes whenever leadership is gained or lost (for logs/metrics/status).
    fn changes(&self) -> watch::Receiver<bool>;
    /// Who holds it, as far as this replica knows (for /api/v1/status); None when unknown.
    fn holder(&self) -> Option<String>;
    /// Checked right before every action: true only if this replica holds leadership now, as the
    /// authority says. Backends that can ask their authority cheaply (the Redis lock) do; the others
    /// answer `is_leader()`. False on any error or timeout.
    async fn confirm(&self) -> bool {
        self.is_leader()
    }
    /// The fencing token of the current leadership, strictly greater for every later acquisition;
    /// `None` when not leading or when the backend has none.
    fn fencing_token(&self) -> Option<u64> {
        None
    }
}

/// A single replica (guard mode simulated, or election turned off): always the leader.
#[derive(Debug)]
pub struct Solo {
    // Kept so receivers see a live channel that never changes, not a closed one.
    changes: watch::Sender<bool>,
}

impl Solo {
    pub fn new() -> Self {
        Self { changes: watch::Sender::new(true) }
    }
}

impl Default for Solo {
    fn default() -> Self {
        Self::new()
    }
}

#[async_trait::async_trait]
impl Leadership for Solo {
    fn is_leader(&self) -> bool {
        true
    }

    fn changes(&self) -> watch::Receiver<bool> {
        self.changes.subscribe()
    }

    /// No lease, so no holder to name.
    fn holder(&self) -> Option<String> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn solo_leads_from_the_start_and_its_channel_stays_open() {
        let solo = Solo::new();
        let changes = solo.changes();
        assert!(solo.is_leader());
        assert!(*changes.borrow());
        assert!(changes.has_changed().is_ok(), "the sender lives as long as the Solo");
        assert_eq!(solo.holder(), None);
        assert!(solo.confirm().await);
        assert_eq!(solo.fencing_token(), None);
    }
}
