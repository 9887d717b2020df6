//! Leader election on a Redis lock with fencing tokens, for when Kubernetes is off.
//!
//! Rule: the lock `{prefix}guardian:leader` holds `"{identity}:{token}"` and
//! expires after `ttl`. A replica takes it only when it is absent: one script
//! runs `SET NX PX`, then `INCR {prefix}guardian:fence`, and writes the token
//! into the lock, so tokens grow strictly with every acquisition ever made on
//! the prefix. A replica leads only while its last successful acquire or
//! renewal was *sent* less than two thirds of the TTL ago, on its own
//! monotonic clock: Redis starts the TTL later, on receipt, so the replica
//! stops before the key can expire, and the last third absorbs clock-rate
//! drift and an action already under way. Right before acting, `confirm` asks
//! Redis that the lock still holds this replica's value and that its token is
//! the latest one (Kleppmann's fencing), so a replica that paused past its TTL
//! cannot act on a stale belief.
//!
//! First start: every replica tries to acquire; Redis runs the scripts one at
//! a time, so exactly one wins and the others learn who holds it. Recovery: a
//! renewal that finds another value (or none) means the lock was lost: the
//! replica stops leading at once and goes back to acquiring. A call that
//! fails or times out (2 s at most) is retried every `retry_every`; the
//! leader keeps leading only until its local validity ends, and leads again
//! if a later renewal still finds its value (nobody took over meanwhile). On
//! stop, a leader deletes the lock if it still holds its value, so another
//! replica takes over at once instead of after the TTL.

use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::Script;
use tokio::sync::watch;
use tokio::time::{Instant, sleep, sleep_until};
use tokio_util::sync::CancellationToken;

use super::Leadership;
use crate::clock::Clock;
use crate::coord::{CoordError, CoordHealth, Coordinator, millis};

/// The lock's key, under the coordinator's prefix.
const LOCK: &str = "guardian:leader";
/// The fencing counter's key, under the coordinator's prefix. Never expires: tokens must keep growing.
const FENCE: &str = "guardian:fence";

/// Takes the lock if absent and numbers this acquisition. Returns `{token, false}` when taken, else
/// `{0, value holding the lock}`.
static ACQUIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
            local token = redis.call('INCR', KEYS[2])
            redis.call('SET', KEYS[1], ARGV[1] .. ':' .. token, 'PX', ARGV[2])
            return {token, false}
          end
          return {0, redis.call('GET', KEYS[1])}",
    )
});

/// Extends the lock while it holds our value. Returns `{1 if renewed else 0, value holding the lock}`.
static RENEW: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"local held = redis.call('GET', KEYS[1])
          if held == ARGV[1] then
            redis.call('PEXPIRE', KEYS[1], ARGV[2])
            return {1, held}
          end
          return {0, held}",
    )
});

/// 1 while the lock holds our value and our token is the latest handed out, else 0.
static CONFIRM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
          if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
          return 1",
    )
});

#[derive(Debug, Clone, Copy)]
pub struct LockTiming {
    /// How long the lock lives in Redis after each acquire or renewal.
    pub ttl: Duration,
    /// How often the leader renews.
    pub renew_every: Duration,
    /// How often a follower tries to acquire, and a failed call is tried again.
    pub retry_every: Duration,
}

impl Default for LockTiming {
    /// As the Lease: a 15 s lock renewed every 5 s, so two renewals may fail before leadership lapses.
    fn default() -> Self {
        Self { ttl: Duration::from_secs(15), renew_every: Duration::from_secs(5), retry_every: Duration::from_secs(2) }
    }
}

impl LockTiming {
    /// How long a successful call keeps this replica leading: two thirds of the TTL (10 s of 15 s).
    fn held_for(&self) -> Duration {
        self.ttl.saturating_sub(self.ttl / 3)
    }
}

/// Elects one leader among the replicas sharing a Redis key prefix; see the module doc for the rule.
pub struct RedisLock {
    coord: Coordinator,
    identity: String,
    /// Full key names, for scripts and logs.
    lock_key: String,
    fence_key: String,
    timing: LockTiming,
    clock: Arc<dyn Clock>,
    state: Mutex<State>,
    changes: watch::Sender<bool>,
}

#[derive(Default)]
struct State {
    /// The lock as this replica believes it holds it; `None` once it knows it does not.
    hold: Option<Hold>,
    /// Who holds the lock, as last seen.
    holder: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Hold {
    token: u64,
    /// When the last successful acquire or renewal was sent.
    renewed_at: Instant,
}

impl RedisLock {
    /// `identity` must differ between replicas (the pod or host name). `clock` gives wall times for
    /// logs only; validity is measured on the monotonic clock.
    pub fn new(coord: Coordinator, identity: &str, timing: LockTiming, clock: Arc<dyn Clock>) -> Self {
        Self {
            lock_key: coord.key(LOCK),
            fence_key: coord.key(FENCE),
            coord,
            identity: identity.to_owned(),
            timing,
            clock,
            state: Mutex::default(),
            changes: watch::Sender::new(false),
        }
    }

    /// Acquires and renews until `stop`; then, if holding, releases the lock. Never panics on Redis
    /// errors: logs and retries.
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        tokio::join!(self.elect(&stop), self.fence(&stop));
        self.release().await;
    }

    /// What the last Redis call said, for /readyz and a metric.
    pub fn redis_health(&self) -> CoordHealth {
        self.coord.health()
    }

    async fn elect(&self, stop: &CancellationToken) {
        let mut failing = false;
        loop {
            let result = tokio::select! {
                () = stop.cancelled() => return,
                r = self.acquire_or_renew() => r,
            };
            self.note(&result, failing);
            failing = result.is_err();
            let wait = if matches!(result, Ok(true)) { self.timing.renew_every } else { self.timing.retry_every };
            self.publish();
            tokio::select! {
                () = stop.cancelled() => return,
                () = sleep(wait) => {}
            }
        }
    }

    /// Logs a failure once, when calls start failing, and once when they go through again.
    fn note(&self, result: &Result<bool, CoordError>, already_failing: bool) {
        match result {
            Err(e) if already_failing => tracing::debug!(error = %e, code = e.code(), "leader lock call failed again"),
            Err(e) => {
                let lock = &self.lock_key;
                tracing::warn!(error = %e, code = e.code(), lock, "leader lock call failed; retrying");
            }
            Ok(_) if already_failing => tracing::info!(lock = %self.lock_key, "leader lock calls go through again"),
            Ok(_) => {}
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

    /// `Ok(true)` when this replica holds the lock afresh.
    async fn acquire_or_renew(&self) -> Result<bool, CoordError> {
        let hold = self.state().hold;
        match hold {
            Some(hold) => self.renew(hold.token).await,
            None => self.acquire().await,
        }
    }

    async fn acquire(&self) -> Result<bool, CoordError> {
        let args = vec![self.identity.clone(), millis(self.timing.ttl)];
        let sent = Instant::now();
        let (token, held_by): (u64, Option<String>) =
            self.coord.eval("acquire the leader lock", &ACQUIRE, self.keys(), args).await?;
        let mut state = self.state();
        if token == 0 {
            state.holder = held_by.as_deref().map(identity_of);
            return Ok(false);
        }
        state.hold = Some(Hold { token, renewed_at: sent });
        state.holder = Some(self.identity.clone());
        Ok(true)
    }

    async fn renew(&self, token: u64) -> Result<bool, CoordError> {
        let args = vec![self.value(token), millis(self.timing.ttl)];
        let sent = Instant::now();
        let (renewed, held_by): (i64, Option<String>) =
            self.coord.eval("renew the leader lock", &RENEW, vec![self.lock_key.clone()], args).await?;
        let holder = held_by.as_deref().map(identity_of);
        let mut state = self.state();
        state.holder.clone_from(&holder);
        if renewed == 1 {
            state.hold = Some(Hold { token, renewed_at: sent });
            return Ok(true);
        }
        drop(state);
        self.lost(token, holder.as_deref());
        Ok(false)
    }

    /// Forgets a hold Redis says is gone; logs once, when it was still believed held.
    fn lost(&self, token: u64, holder: Option<&str>) {
        let mut state = self.state();
        if state.hold.is_some_and(|h| h.token == token) {
            state.hold = None;
            drop(state);
            let holder = holder.unwrap_or_default();
            let (lock, identity) = (&self.lock_key, &self.identity);
            tracing::warn!(lock, identity, token, holder, "the leader lock expired or another replica holds it");
        }
    }

    /// Hands the lock over at once instead of making the others wait out the TTL. The coordinator
    /// bounds the call to 2 s.
    async fn release(&self) {
        let hold = self.state().hold.take();
        self.changes.send_replace(false);
        let Some(hold) = hold else { return };
        match self.coord.release(LOCK, &self.value(hold.token)).await {
            Ok(true) => {
                self.state().holder = None;
                let (lock, holder) = (&self.lock_key, &self.identity);
                tracing::info!(lock, holder, token = hold.token, "released leadership");
            }
            Ok(false) => tracing::warn!(lock = %self.lock_key, "lost the leader lock before releasing it"),
            Err(e) => tracing::warn!(
                error = %e,
                code = e.code(),
                "stopped leading without releasing; others take over once the lock expires"
            ),
        }
    }

    /// Sends the new value and logs it, only when leadership changed.
    fn publish(&self) {
        let leader = self.is_leader();
        if !self.changes.send_if_modified(|was| std::mem::replace(was, leader) != leader) {
            return;
        }
        let at = self.clock.now();
        if leader {
            let token = self.fencing_token();
            tracing::info!(lock = %self.lock_key, holder = %self.identity, token, %at, "gained leadership");
        } else {
            let holder = self.holder().unwrap_or_default();
            tracing::warn!(lock = %self.lock_key, identity = %self.identity, holder, %at, "lost leadership");
        }
    }

    fn value(&self, token: u64) -> String {
        format!("{}:{token}", self.identity)
    }

    fn keys(&self) -> Vec<String> {
        vec![self.lock_key.clone(), self.fence_key.clone()]
    }

    fn leads_until(&self) -> Option<Instant> {
        self.state().hold.map(|h| h.renewed_at + self.timing.held_for())
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait::async_trait]
impl Leadership for RedisLock {
    fn is_leader(&self) -> bool {
        self.leads_until().is_some_and(|until| Instant::now() < until)
    }

    fn changes(&self) -> watch::Receiver<bool> {
        self.changes.subscribe()
    }

    fn holder(&self) -> Option<String> {
        self.state().holder.clone()
    }

    /// One round trip: the lock still holds `{identity}:{token}` and no later token was handed out.
    async fn confirm(&self) -> bool {
        let Some(token) = self.fencing_token() else { return false };
        let args = vec![self.value(token), token.to_string()];
        match self.coord.eval::<i64>("confirm the leader lock", &CONFIRM, self.keys(), args).await {
            // Still valid locally once the answer is in: the round trip may have taken long.
            Ok(1) => self.fencing_token() == Some(token),
            Ok(_) => {
                self.lost(token, None);
                self.publish();
                false
            }
            Err(e) => {
                tracing::warn!(error = %e, code = e.code(), token, "cannot confirm leadership; not acting");
                false
            }
        }
    }

    fn fencing_token(&self) -> Option<u64> {
        let hold = self.state().hold?;
        (Instant::now() < hold.renewed_at + self.timing.held_for()).then_some(hold.token)
    }
}

/// The identity in a lock value `{identity}:{token}`; identities may contain `:` themselves.
fn identity_of(value: &str) -> String {
    value.rsplit_once(':').map_or(value, |(identity, _)| identity).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lock_value_names_its_holder() {
        for (name, value, identity) in [
            ("plain", "guardian-0:7", "guardian-0"),
            ("identity with colons", "host:9090:12", "host:9090"),
            ("no token", "guardian-1", "guardian-1"),
        ] {
            assert_eq!(identity_of(value), identity, "{name}");
        }
    }

    #[test]
    fn a_renewal_holds_for_two_thirds_of_the_ttl() {
        assert_eq!(LockTiming::default().held_for(), Duration::from_secs(10));
        let short = LockTiming { ttl: Duration::from_millis(1500), ..LockTiming::default() };
        assert_eq!(short.held_for(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn leadership_lapses_by_time_without_redis() {
        let coord = Coordinator::new("redis://127.0.0.1:1", "t:").unwrap();
        let lock = RedisLock::new(coord, "a", LockTiming::default(), Arc::new(crate::clock::SystemClock));
        assert!(!lock.is_leader());
        lock.state().hold = Some(Hold { token: 3, renewed_at: Instant::now() });
        assert!(lock.is_leader());
        assert_eq!(lock.fencing_token(), Some(3));
        tokio::time::advance(Duration::from_millis(9_999)).await;
        assert!(lock.is_leader());
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!lock.is_leader());
        assert_eq!(lock.fencing_token(), None);
        assert!(!lock.confirm().await, "no token, no round trip");
    }
}
