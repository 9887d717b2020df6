//! Bounded polling: wait for a condition instead of sleeping and hoping.

use std::time::Duration;

use tokio::time::{Instant, sleep_until, timeout_at};

/// How often the condition is polled.
const POLL: Duration = Duration::from_millis(20);

/// Polls `f` every 20 ms until it yields `true`; panics naming `what` if `within` runs out first.
///
/// A call of `f` that hangs is cut off at the same deadline: this never waits longer than `within`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        match timeout_at(deadline, f()).await {
            Ok(true) => return,
            Ok(false) if Instant::now() < deadline => sleep_until((Instant::now() + POLL).min(deadline)).await,
            _ => panic!("not within {within:?}: {what}"),
        }
    }
}
