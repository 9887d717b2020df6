//! Owns probing: one scheduler for all checks, the HTTP prober, body
//! assertions, outcomes, and the board that keeps each check's latest state.
//!
//! Every probe reports through `ProbeObserver`: an early `OverBudget` the
//! moment its budget elapses while it still runs (so detection never waits
//! for the timeout), then `Finished` with the final result.

mod baseline;
mod board;
mod confirm;
mod expect;
pub mod http;
mod outcome;
mod ratelimit;
mod scheduler;

pub use baseline::Baselines;
pub use board::{Board, CheckStatus, GateState, RECENT_PROBES, RecentProbe};
pub use confirm::Confirmations;
pub use http::Prober;
pub use outcome::{Outcome, ProbeResult};
pub use ratelimit::HostLimiter;
pub use scheduler::Scheduler;

/// What the engine tells the rest of Guardian.
#[derive(Debug, Clone, Copy)]
pub enum ProbeEvent<'a> {
    /// The probe is still running and its budget has elapsed: bad from now.
    OverBudget { check: &'a str, started_at: jiff::Timestamp },
    /// The probe ended (ok, slow or failed).
    Finished(&'a ProbeResult),
    /// The probe was not sent.
    Skipped { check: &'a str, reason: SkipReason },
}

/// Why a probe was not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SkipReason {
    /// Its host is over the per-host rate limit.
    RateLimited,
    /// The check already has as many probes in flight as its timeout allows.
    TooManyInFlight,
    /// Its tick came and went while the scheduler was a whole interval or
    /// more behind (a starved CPU, a suspended process): fixed rate, no
    /// burst to catch up, but never unseen.
    Late,
}

impl SkipReason {
    /// The metric label.
    pub fn code(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limited",
            Self::TooManyInFlight => "too_many_in_flight",
            Self::Late => "late",
        }
    }
}

/// Receives probe events. Called on the probe's task: keep it quick, no I/O.
pub trait ProbeObserver: Send + Sync + 'static {
    fn on_event(&self, event: ProbeEvent<'_>);
}

/// Sends each event to several observers, in order.
#[derive(Default, Clone)]
pub struct Observers(pub Vec<std::sync::Arc<dyn ProbeObserver>>);

impl ProbeObserver for Observers {
    fn on_event(&self, event: ProbeEvent<'_>) {
        for o in &self.0 {
            o.on_event(event);
        }
    }
}
