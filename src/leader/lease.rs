//! Leader election on a `coordination.k8s.io/v1` Lease, with client-go's
//! leaderelection semantics.
//!
//! Rule: a replica leads only while the Lease names it and its last
//! successful write was sent less than two thirds of the lease duration ago,
//! on its own monotonic clock. Another replica takes the Lease over only when
//! `holderIdentity` is empty (released) or the record (holder, renewTime,
//! resourceVersion) has not changed for `leaseDurationSeconds` as seen on
//! *its* monotonic clock, so wall-clock skew between nodes never shortens a
//! lease. Every write carries the resourceVersion it was decided from: of
//! two replicas racing, the API lets one win and answers 409 to the other.
//!
//! First start: the Lease is created when absent (a 409 there means another
//! replica was first). Recovery: API errors are logged and retried every
//! `retry_every`; a leader that cannot renew stops leading by time, even
//! while its renewal hangs, and leads again once a renewal goes through (the
//! resourceVersion guarantees nobody took over meanwhile). On stop, a leader
//! clears `holderIdentity` so another replica takes over at once.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::api::{Api, PostParams};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until, timeout};
use tokio_util::sync::CancellationToken;

use super::Leadership;
use crate::clock::Clock;

/// Past this, a release on shutdown gives up: the shutdown grace is 5 s, and
/// a lease left held only costs one lease duration of failover.
const RELEASE_WITHIN: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, Copy)]
pub struct LeaseTiming {
    /// How long other replicas wait, after the Lease last changed, before taking it over.
    /// Written to the Lease in whole seconds, rounded up.
    pub lease_duration: Duration,
    /// How often the leader renews.
    pub renew_every: Duration,
    /// How often a follower checks the Lease, and a failed call is tried again.
    pub retry_every: Duration,
}

impl Default for LeaseTiming {
    /// client-go's usual 15 s lease, with a renewal every 5 s so two may fail before leadership lapses.
    fn default() -> Self {
        Self {
            lease_duration: Duration::from_secs(15),
            renew_every: Duration::from_secs(5),
            retry_every: Duration::from_secs(2),
        }
    }
}

impl LeaseTiming {
    /// How long a renewal keeps this replica leading: two thirds of the lease, like client-go's renew
    /// deadline (10 s of 15 s). The last third absorbs clock-rate drift between nodes and an action
    /// already under way when leadership lapses.
    fn held_for(&self) -> Duration {
        self.lease_duration.saturating_sub(self.lease_duration / 3)
    }

    /// Rounded up, so other replicas never wait less than this one fences itself.
    fn lease_seconds(&self) -> i32 {
        let seconds = self.lease_duration.as_secs() + u64::from(self.lease_duration.subsec_nanos() > 0);
        i32::try_from(seconds.max(1)).unwrap_or(i32::MAX)
    }
}

/// Elects one leader among the replicas sharing a Lease; see the module doc for the rule.
pub struct LeaseElector {
    api: Api<Lease>,
    name: String,
    /// `namespace/name`, for logs and errors.
    key: String,
    identity: String,
    timing: LeaseTiming,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    changes: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// When the last successful write of this replica as holder was sent; `None` once it knows it does not hold.
    renewed_at: Option<Instant>,
    holder: Option<String>,
    /// The Lease's record as last read, and since when it has looked like that.
    observed: Option<(Record, Instant)>,
}

/// What must change for a lease to count as alive.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Record {
    holder: Option<String>,
    renew_time: Option<MicroTime>,
    resource_version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("lease {lease} was written by another replica first (409)")]
    Conflict { lease: String },
    #[error("the API server failed on lease {lease}: {source}")]
    Unavailable {
        lease: String,
        #[source]
        source: kube::Error,
    },
    #[error("the API server did not answer about lease {lease} within {after:?}")]
    TimedOut { lease: String, after: Duration },
}

impl LeaseElector {
    /// `identity` must differ between replicas (the pod name). `clock` gives the wall time written to
    /// `acquireTime` and `renewTime`; expiry never reads it.
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        timing: LeaseTiming,
        clock: Arc<dyn Clock>,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            key: format!("{namespace}/{name}"),
            identity: identity.to_owned(),
            timing,
            clock,
            state: Mutex::default(),
            changes: watch::Sender::new(false),
        }
    }

    /// Acquires and renews until `stop`; on stop, if holding, releases the lease
    /// (clears holderIdentity / sets it so another replica can take over at once).
    /// Never panics on API errors: logs and retries.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        tokio::join!(self.elect(&stop), self.fence(&stop));
        self.release().await;
    }

    async fn elect(&self, stop: &CancellationToken) {
        let mut failing = false;
        loop {
            let round = timeout(self.timing.lease_duration, self.try_acquire_or_renew());
            let result = tokio::select! {
                () = stop.cancelled() => return,
                r = round => r,
            };
            let after = self.timing.lease_duration;
            let result = result.unwrap_or_else(|_| Err(Error::TimedOut { lease: self.key.clone(), after }));
            match &result {
                Err(e) => self.note_failure(e, failing),
                Ok(_) if failing => tracing::info!(lease = %self.key, "lease calls go through again"),
                Ok(_) => {}
            }
            failing = matches!(result, Err(Error::Unavailable { .. } | Error::TimedOut { .. }));
            let wait = if matches!(result, Ok(true)) { self.timing.renew_every } else { self.timing.retry_every };
            self.publish();
            tokio::select! {
                () = stop.cancelled() => return,
                () = sleep(wait) => {}
            }
        }
    }

    /// Publishes a loss the moment leadership lapses, even while a renewal hangs.
    async fn fence(&self, stop: &CancellationToken) {
        loop {
            let now = Instant::now();
            let wake = self.leads_until().filter(|t| *t > now).unwrap_or(now + self.timing.retry_every);
            tokio::select! {
                () = stop.cancelled() => return,
                () = sleep_until(wake) => self.publish(),
            }
        }
    }

    /// One client-go `tryAcquireOrRenew`: `Ok(true)` when this replica holds the lease afresh.
    async fn try_acquire_or_renew(&self) -> Result<bool, Error> {
        let Some(current) = self.api.get_opt(&self.name).await.map_err(|e| self.failed(e))? else {
            return self.create().await;
        };
        let record = Record::of(&current);
        let expired = self.observe(&record, current.spec.as_ref().and_then(|s| s.lease_duration_seconds));
        match record.holder {
            Some(holder) if holder != self.identity && !expired => {
                let mut state = self.state();
                state.renewed_at = None;
                state.holder = Some(holder);
                Ok(false)
            }
            _ => self.write(current).await,
        }
    }

    async fn create(&self) -> Result<bool, Error> {
        let now = self.now();
        let lease = Lease {
            metadata: ObjectMeta { name: Some(self.name.clone()), ..ObjectMeta::default() },
            spec: Some(LeaseSpec {
                holder_identity: Some(self.identity.clone()),
                lease_duration_seconds: Some(self.timing.lease_seconds()),
                acquire_time: Some(now.clone()),
                renew_time: Some(now),
                lease_transitions: Some(0),
                ..LeaseSpec::default()
            }),
        };
        let sent = Instant::now();
        let created = self.api.create(&PostParams::default(), &lease).await.map_err(|e| self.failed(e))?;
        self.held(sent, &created);
        Ok(true)
    }

    /// Renews a lease this replica holds, or takes over a free or expired one, from the version just read.
    async fn write(&self, mut lease: Lease) -> Result<bool, Error> {
        let now = self.now();
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        if spec.holder_identity.as_deref() != Some(self.identity.as_str()) {
            spec.holder_identity = Some(self.identity.clone());
            spec.acquire_time = Some(now.clone());
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.lease_duration_seconds = Some(self.timing.lease_seconds());
        spec.renew_time = Some(now);
        let sent = Instant::now();
        let written = self.api.replace(&self.name, &PostParams::default(), &lease).await.map_err(|e| self.failed(e))?;
        self.held(sent, &written);
        Ok(true)
    }

    /// Hands the lease over at once instead of making the others wait it out.
    async fn release(&self) {
        let was_leading = self.is_leader();
        self.state().renewed_at = None;
        self.changes.send_replace(false);
        let outcome = timeout(RELEASE_WITHIN, self.clear_holder()).await;
        match outcome {
            Ok(Ok(true)) => tracing::info!(lease = %self.key, holder = %self.identity, "released leadership"),
            Ok(Ok(false)) if was_leading => tracing::warn!(lease = %self.key, "lost leadership before releasing it"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "stopped leading without releasing; others take over once the lease expires")
            }
            Err(_) => tracing::warn!(lease = %self.key, "stopped leading; the release timed out"),
        }
    }

    /// `Ok(false)` when the Lease does not name this replica (nothing to release).
    async fn clear_holder(&self) -> Result<bool, Error> {
        let Some(mut lease) = self.api.get_opt(&self.name).await.map_err(|e| self.failed(e))? else {
            return Ok(false);
        };
        let mine = |s: &&mut LeaseSpec| s.holder_identity.as_deref() == Some(self.identity.as_str());
        let Some(spec) = lease.spec.as_mut().filter(mine) else {
            return Ok(false);
        };
        spec.holder_identity = None;
        spec.renew_time = Some(self.now());
        // As client-go does, for electors that wait out a lease without checking for an empty holder.
        spec.lease_duration_seconds = Some(1);
        self.api.replace(&self.name, &PostParams::default(), &lease).await.map_err(|e| self.failed(e))?;
        self.state().holder = None;
        Ok(true)
    }

    /// Whether the lease has gone unchanged for its duration, counted from when this replica first saw it so.
    fn observe(&self, record: &Record, lease_seconds: Option<i32>) -> bool {
        let now = Instant::now();
        let mut state = self.state();
        let since = match &state.observed {
            Some((seen, since)) if seen == record => *since,
            _ => now,
        };
        state.observed = Some((record.clone(), since));
        state.holder.clone_from(&record.holder);
        let duration =
            lease_seconds.and_then(|s| u64::try_from(s).ok()).map_or(self.timing.lease_duration, Duration::from_secs);
        now.duration_since(since) >= duration
    }

    fn held(&self, sent: Instant, lease: &Lease) {
        let mut state = self.state();
        state.renewed_at = Some(sent);
        state.holder = Some(self.identity.clone());
        state.observed = Some((Record::of(lease), sent));
    }

    fn note_failure(&self, e: &Error, already_failing: bool) {
        if let Error::Conflict { .. } = e {
            // The lease moved on without us: stop acting now rather than when the renewal would lapse.
            self.state().renewed_at = None;
            tracing::debug!(error = %e, "lost a race for the lease");
        } else if already_failing {
            tracing::debug!(error = %e, "lease call failed again");
        } else {
            tracing::warn!(error = %e, "lease call failed; retrying");
        }
    }

    fn failed(&self, e: kube::Error) -> Error {
        match e {
            // Conflict on update, AlreadyExists on create: another replica wrote first either way.
            kube::Error::Api(status) if status.code == 409 => Error::Conflict { lease: self.key.clone() },
            source => Error::Unavailable { lease: self.key.clone(), source },
        }
    }

    /// Sends the new value and logs it, only when leadership changed.
    fn publish(&self) {
        let leader = self.is_leader();
        if !self.changes.send_if_modified(|was| std::mem::replace(was, leader) != leader) {
            return;
        }
        if leader {
            tracing::info!(lease = %self.key, holder = %self.identity, "gained leadership");
        } else {
            let holder = self.holder().unwrap_or_default();
            tracing::warn!(lease = %self.key, identity = %self.identity, holder, "lost leadership");
        }
    }

    /// k8s-openapi speaks jiff 0.2, the crate jiff 1; both cover the same range, so the fallback never happens.
    fn now(&self) -> MicroTime {
        let micros = self.clock.now().as_microsecond();
        MicroTime(k8s_openapi::jiff::Timestamp::from_microsecond(micros).unwrap_or_default())
    }

    fn leads_until(&self) -> Option<Instant> {
        self.state().renewed_at.map(|sent| sent + self.timing.held_for())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Leadership for LeaseElector {
    fn is_leader(&self) -> bool {
        self.leads_until().is_some_and(|until| Instant::now() < until)
    }

    fn changes(&self) -> watch::Receiver<bool> {
        self.changes.subscribe()
    }

    fn holder(&self) -> Option<String> {
        self.state().holder.clone()
    }
}

impl Record {
    fn of(lease: &Lease) -> Self {
        let spec = lease.spec.as_ref();
        Self {
            holder: spec.and_then(|s| s.holder_identity.clone()).filter(|h| !h.is_empty()),
            renew_time: spec.and_then(|s| s.renew_time.clone()),
            resource_version: lease.metadata.resource_version.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timing(lease_ms: u64) -> LeaseTiming {
        LeaseTiming { lease_duration: Duration::from_millis(lease_ms), ..LeaseTiming::default() }
    }

    #[test]
    fn the_lease_is_written_in_whole_seconds_rounded_up() {
        assert_eq!(timing(15_000).lease_seconds(), 15);
        assert_eq!(timing(1_500).lease_seconds(), 2);
        assert_eq!(timing(200).lease_seconds(), 1);
    }

    #[test]
    fn a_renewal_holds_for_two_thirds_of_the_lease() {
        assert_eq!(LeaseTiming::default().held_for(), Duration::from_secs(10));
    }

    #[test]
    fn an_empty_holder_reads_as_released() {
        let lease = Lease {
            spec: Some(LeaseSpec { holder_identity: Some(String::new()), ..LeaseSpec::default() }),
            ..Lease::default()
        };
        assert_eq!(Record::of(&lease).holder, None);
    }
}
