//! One scheduler for all checks. Each check runs on its own fixed-rate
//! interval from a random phase, so a thousand checks spread over time
//! instead of firing together. Probes start on schedule even while earlier
//! ones are still in flight, so a slow endpoint is not probed less often.
//! While the guard watches a check, a suspect probe brings confirmation
//! probes forward (see `Confirmations`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tokio_util::time::DelayQueue;

use super::{Confirmations, HostLimiter, ProbeEvent, ProbeObserver, Prober, SkipReason};
use crate::config::Check;

pub struct Scheduler {
    checks: Vec<Scheduled>,
    prober: Arc<Prober>,
    limiter: Arc<HostLimiter>,
    observer: Arc<dyn ProbeObserver>,
    confirmations: Arc<Confirmations>,
    /// Probe tasks ask here for confirmation probes of their check.
    suspect_tx: mpsc::UnboundedSender<usize>,
    suspect_rx: mpsc::UnboundedReceiver<usize>,
}

/// What falls due in the queue.
#[derive(Debug, Clone, Copy)]
enum Due {
    Regular(usize),
    Confirmation(usize),
}

struct Scheduled {
    check: Arc<Check>,
    seq: u64,
    in_flight: Arc<AtomicU32>,
    /// At most this many probes at once: as many as the timeout can overlap, plus one.
    max_in_flight: u32,
    /// Set while probes are being skipped, so the log says it once.
    skipping: Option<SkipReason>,
    /// Until then, confirmation probes are already scheduled for this check.
    confirming_until: Option<Instant>,
}

impl Scheduler {
    pub fn new(
        checks: &[Check],
        prober: Arc<Prober>,
        limiter: Arc<HostLimiter>,
        observer: Arc<dyn ProbeObserver>,
    ) -> Self {
        let checks = checks
            .iter()
            .map(|c| Scheduled {
                max_in_flight: max_in_flight(c.timeout, c.interval),
                check: Arc::new(c.clone()),
                seq: 0,
                in_flight: Arc::new(AtomicU32::new(0)),
                skipping: None,
                confirming_until: None,
            })
            .collect();
        let (suspect_tx, suspect_rx) = mpsc::unbounded_channel();
        Self {
            checks,
            prober,
            limiter,
            observer,
            confirmations: Arc::new(Confirmations::off()),
            suspect_tx,
            suspect_rx,
        }
    }

    /// Which checks the guard watches, for confirmation probes.
    pub fn with_confirmations(mut self, confirmations: Arc<Confirmations>) -> Self {
        self.confirmations = confirmations;
        self
    }

    /// Probes until `stop` is cancelled. Probes run on `tracker`; each one is
    /// abandoned (not recorded) when `stop` fires.
    pub async fn run(mut self, stop: CancellationToken, tracker: TaskTracker) {
        let mut queue = DelayQueue::with_capacity(self.checks.len());
        let now = Instant::now();
        for (i, s) in self.checks.iter().enumerate() {
            queue.insert_at(Due::Regular(i), now + phase(s.check.interval));
        }
        loop {
            let expired = tokio::select! {
                () = stop.cancelled() => break,
                Some(i) = self.suspect_rx.recv() => {
                    self.confirm(i, &mut queue);
                    continue;
                }
                next = queue.next() => match next { Some(e) => e, None => break },
            };
            let (key, due) = (*expired.get_ref(), expired.deadline());
            match key {
                Due::Regular(i) => {
                    let Some(s) = self.checks.get(i) else { continue };
                    let (interval, now) = (s.check.interval, Instant::now());
                    for _ in 0..missed_ticks(due, interval, now).min(MAX_LATE_REPORTED) {
                        self.observer.on_event(ProbeEvent::Skipped { check: &s.check.name, reason: SkipReason::Late });
                    }
                    queue.insert_at(Due::Regular(i), next_due(due, interval, now));
                    self.launch(i, false, &stop, &tracker);
                }
                Due::Confirmation(i) => self.launch(i, true, &stop, &tracker),
            }
        }
    }

    /// Schedules the confirmation probes of a suspect probe of check `i`,
    /// unless some are already on their way.
    fn confirm(&mut self, i: usize, queue: &mut DelayQueue<Due>) {
        let now = Instant::now();
        let Some(s) = self.checks.get_mut(i) else { return };
        if s.confirming_until.is_some_and(|until| until > now) {
            return;
        }
        let step = self.confirmations.interval(s.check.interval);
        let count = self.confirmations.count();
        for k in 0..count {
            queue.insert_at(Due::Confirmation(i), now + step * k);
        }
        s.confirming_until = Some(now + step * count);
    }

    fn launch(&mut self, i: usize, confirming: bool, stop: &CancellationToken, tracker: &TaskTracker) {
        let (limiter, observer) = (self.limiter.clone(), self.observer.clone());
        let Some(s) = self.checks.get_mut(i) else { return };
        // A confirmation may exceed the in-flight cap: it exists because the others are slow.
        let skip = if !confirming && s.in_flight.load(Ordering::Acquire) >= s.max_in_flight {
            Some(SkipReason::TooManyInFlight)
        } else if !limiter.allow(&s.check.url) {
            Some(SkipReason::RateLimited)
        } else {
            None
        };
        note_skipping(s, skip);
        if let Some(reason) = skip {
            observer.on_event(ProbeEvent::Skipped { check: &s.check.name, reason });
            return;
        }
        s.seq += 1;
        let (check, seq, prober, stop) = (s.check.clone(), s.seq, self.prober.clone(), stop.clone());
        let in_flight = InFlight::enter(&s.in_flight);
        // Only regular probes of a watched check may become suspect: confirmations do not multiply.
        let suspect = (!confirming && self.confirmations.is_armed(&check.name))
            .then(|| (self.suspect_tx.clone(), i, self.confirmations.interval(check.interval)));
        tracker.spawn(async move {
            let _in_flight = in_flight;
            let early = observer.clone();
            let run = prober.probe(&check, |started_at| {
                early.on_event(ProbeEvent::OverBudget { check: &check.name, started_at });
            });
            tokio::pin!(run);
            let watched = async {
                let Some((tx, i, after)) = suspect else { return run.await };
                tokio::select! {
                    biased;
                    result = &mut run => {
                        if !result.outcome.is_good() {
                            let _ = tx.send(i);
                        }
                        result
                    }
                    () = tokio::time::sleep(after) => {
                        let _ = tx.send(i);
                        run.await
                    }
                }
            };
            tokio::select! {
                () = stop.cancelled() => {}
                mut result = watched => {
                    result.seq = seq;
                    observer.on_event(ProbeEvent::Finished(&result));
                }
            }
        });
    }
}

/// Logs when a check starts and stops being skipped, not at every skip.
fn note_skipping(s: &mut Scheduled, skip: Option<SkipReason>) {
    let name = &s.check.name;
    match (s.skipping, skip) {
        (None, Some(reason)) => tracing::warn!(check = %name, reason = reason.code(), "probes are being skipped"),
        (Some(_), None) => tracing::info!(check = %name, "probes are no longer skipped"),
        _ => {}
    }
    s.skipping = skip;
}

fn max_in_flight(timeout: Duration, interval: Duration) -> u32 {
    let overlap = timeout.as_secs_f64() / interval.as_secs_f64().max(1e-3);
    (overlap.ceil() as u32).saturating_add(1)
}

/// Counts a probe in flight for as long as it lives, cancelled or not.
struct InFlight(Arc<AtomicU32>);

impl InFlight {
    fn enter(count: &Arc<AtomicU32>) -> Self {
        count.fetch_add(1, Ordering::AcqRel);
        Self(count.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A random first delay in `[0, interval)`.
fn phase(interval: Duration) -> Duration {
    interval.mul_f64(rand::random::<f64>())
}

/// At most this many late ticks are reported at once (a suspended process
/// can wake up days behind).
const MAX_LATE_REPORTED: u64 = 3_600;

/// Fixed rate without drift; after a stall, skip missed ticks instead of
/// firing them all at once.
fn next_due(due: Instant, interval: Duration, now: Instant) -> Instant {
    let next = due + interval;
    if next > now { next } else { now + interval }
}

/// How many ticks after `due` `next_due` skips: each is counted as a
/// `late` skip, so a scheduler that cannot keep up says so.
fn missed_ticks(due: Instant, interval: Duration, now: Instant) -> u64 {
    let behind = now.saturating_duration_since(due).as_nanos();
    u64::try_from(behind / interval.as_nanos().max(1)).unwrap_or(u64::MAX)
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

    #[test]
    fn every_tick_skipped_after_a_stall_is_counted() {
        let t0 = Instant::now();
        let s = Duration::from_secs(1);
        assert_eq!(missed_ticks(t0, s, t0 + Duration::from_millis(999)), 0, "on time, or late by less than a tick");
        assert_eq!(missed_ticks(t0, s, t0 + s), 1, "the tick at 1 s is skipped: the next is at 2 s");
        assert_eq!(missed_ticks(t0, s, t0 + Duration::from_millis(5_500)), 5, "ticks 1 to 5 s, next at 6.5 s");
        assert_eq!(next_due(t0, s, t0 + Duration::from_millis(5_500)), t0 + Duration::from_millis(6_500));
    }

    #[test]
    fn a_check_may_overlap_as_many_probes_as_its_timeout_allows_plus_one() {
        let ms = Duration::from_millis;
        assert_eq!(max_in_flight(ms(5_000), ms(2_000)), 4);
        assert_eq!(max_in_flight(ms(1_000), ms(5_000)), 2);
        assert_eq!(max_in_flight(ms(30_000), ms(300)), 101);
    }
}
