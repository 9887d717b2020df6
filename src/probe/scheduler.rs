//! One scheduler for all checks. Each check runs on its own fixed-rate
//! interval from a random phase, so a thousand checks spread over time
//! instead of firing together. Probes start on schedule even while earlier
//! ones are still in flight, so a slow endpoint is not probed less often.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::time::DelayQueue;

use super::{HostLimiter, ProbeEvent, ProbeObserver, Prober};
use crate::config::Check;

pub struct Scheduler {
    checks: Vec<Arc<Check>>,
    prober: Arc<Prober>,
    limiter: Arc<HostLimiter>,
    observer: Arc<dyn ProbeObserver>,
}

impl Scheduler {
    pub fn new(
        checks: &[Check],
        prober: Arc<Prober>,
        limiter: Arc<HostLimiter>,
        observer: Arc<dyn ProbeObserver>,
    ) -> Self {
        Self { checks: checks.iter().cloned().map(Arc::new).collect(), prober, limiter, observer }
    }

    /// Probes until `stop` is cancelled. Probes run on `tracker`; each one is
    /// abandoned (not recorded) when `stop` fires.
    pub async fn run(self, stop: CancellationToken, tracker: TaskTracker) {
        let mut queue = DelayQueue::with_capacity(self.checks.len());
        let now = Instant::now();
        for (i, check) in self.checks.iter().enumerate() {
            queue.insert_at(i, now + phase(check.interval));
        }
        loop {
            let expired = tokio::select! {
                () = stop.cancelled() => break,
                next = queue.next() => match next { Some(e) => e, None => break },
            };
            let (i, due) = (expired.get_ref().to_owned(), expired.deadline());
            let check = &self.checks[i];
            queue.insert_at(i, next_due(due, check.interval, Instant::now()));
            self.launch(check.clone(), &stop, &tracker);
        }
    }

    fn launch(&self, check: Arc<Check>, stop: &CancellationToken, tracker: &TaskTracker) {
        if !self.limiter.allow(&check.url) {
            tracing::warn!(check = %check.name, host = check.url.host_str().unwrap_or(""), "probe skipped: host over its rate limit");
            self.observer.on_event(ProbeEvent::RateLimited { check: &check.name });
            return;
        }
        let (prober, observer, stop) = (self.prober.clone(), self.observer.clone(), stop.clone());
        tracker.spawn(async move {
            let early = observer.clone();
            let run = prober.probe(&check, |started_at| {
                early.on_event(ProbeEvent::OverBudget { check: &check.name, started_at });
            });
            tokio::select! {
                () = stop.cancelled() => {}
                result = run => observer.on_event(ProbeEvent::Finished(&result)),
            }
        });
    }
}

/// A random first delay in `[0, interval)`.
fn phase(interval: Duration) -> Duration {
    interval.mul_f64(rand::random::<f64>())
}

/// Fixed rate without drift; after a stall, skip missed ticks instead of
/// firing them all at once.
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now { next } else { now + interval }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_spread_within_the_interval() {
        let phases: Vec<_> = (0..1000).map(|_| phase(Duration::from_secs(1))).collect();
        assert!(phases.iter().all(|p| *p < Duration::from_secs(1)));
        let early = phases.iter().filter(|p| **p < Duration::from_millis(500)).count();
        assert!((350..650).contains(&early), "roughly half in the first half, got {early}");
    }

    #[tokio::test(start_paused = true)]
    async fn schedule_keeps_its_rate_and_skips_missed_ticks() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(next_due(t0, s, t0 + Duration::from_millis(10)), t0 + s);
        assert_eq!(next_due(t0, s, t0 + Duration::from_secs(5)), t0 + Duration::from_secs(6));
    }
}
