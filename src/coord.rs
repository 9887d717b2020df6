//! Owns Redis coordination between guardian replicas: who leads when
//! Kubernetes is off (`leader::RedisLock`), and one-time claims that several
//! replicas may race for. Every key lives under a prefix, `nextgen:{environment}:`
//! by default, so environments that share a Redis never meet.
//!
//! Connection: lazy, so a guardian starts while Redis is down. `Coordinator::new`
//! only parses the URL; the first call opens a `ConnectionManager`. A call
//! that fails on the connection, or gets no answer within 2 s, drops it and
//! the next call opens a fresh one: an unreachable Redis never holds a caller
//! longer than 2 s, and one that comes back is picked up on the next call.
//! Every call records whether it went through (`health`, for /readyz and a metric).
//!
//! Atomicity: each operation is one Lua script, which Redis runs without
//! interleaving any other command.

use std::sync::{Arc, LazyLock, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, FromRedisValue, RedisError, RedisResult, Script};
use tokio::time::timeout;

use crate::config::{Environment, redact_url};

/// The longest any Redis call may take, connecting included. Well under the 5 s shutdown grace, and
/// short enough that a leader notices an outage while its lock is still valid.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Sets the key unless it exists, then answers who holds it.
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])
          return redis.call('GET', KEYS[1])",
    )
});

/// Deletes the key only while it still holds the caller's value.
static RELEASE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
          return 0",
    )
});

/// Episodes are a sorted set of `{started ms} {id}` scored by when each ended.
/// Adds one (ARGV: started, ended, id, how long to keep in ms), forgets those
/// that ended longer ago than that before it, and keeps the set that long.
static RECORD_EPISODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1] .. ' ' .. ARGV[3])
          redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(ARGV[2]) - tonumber(ARGV[4])))
          redis.call('PEXPIRE', KEYS[1], ARGV[4])
          return 1",
    )
});

/// Answers the id of the first episode (earliest ended) whose span overlaps
/// [ARGV[1], ARGV[2]]; when none does and ARGV[3] is not empty, records
/// ARGV[3] with that span (as `RECORD_EPISODE`) and answers it; else nil.
static OVERLAPPING_EPISODE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"for _, e in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], ARGV[1], '+inf')) do
            local started, id = string.match(e, '^(%-?%d+) (.+)$')
            if started and tonumber(started) <= tonumber(ARGV[2]) then return id end
          end
          if ARGV[3] == '' then return false end
          redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1] .. ' ' .. ARGV[3])
          redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. (tonumber(ARGV[2]) - tonumber(ARGV[4])))
          redis.call('PEXPIRE', KEYS[1], ARGV[4])
          return ARGV[3]",
    )
});

pub type Result<T, E = CoordError> = std::result::Result<T, E>;

/// A handle on the Redis shared by the replicas; clones share one connection and one health record.
#[derive(Clone)]
pub struct Coordinator {
    inner: Arc<Inner>,
}

/// What the last Redis call said about Redis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CoordHealth {
    /// The last call went through. False before the first call.
    pub reachable: bool,
    /// Why the last call failed; `None` after a success.
    pub last_error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CoordError {
    #[error("invalid Redis URL {url}: {source}")]
    BadUrl {
        url: String,
        #[source]
        source: RedisError,
    },
    #[error("Redis at {url} is unreachable ({op}): {source}")]
    Unreachable {
        url: String,
        op: &'static str,
        #[source]
        source: RedisError,
    },
    #[error("Redis at {url} refused {op}: {source}")]
    Rejected {
        url: String,
        op: &'static str,
        #[source]
        source: RedisError,
    },
    #[error("Redis at {url} did not answer {op} within {after:?}")]
    TimedOut { url: String, op: &'static str, after: Duration },
}

struct Inner {
    client: redis::Client,
    /// With any password masked, for errors and logs.
    url: String,
    prefix: String,
    conn: Mutex<Conn>,
    health: Mutex<CoordHealth>,
}

/// The connection in use, numbered so that a failed call drops only the one it used.
#[derive(Default)]
struct Conn {
    generation: u64,
    manager: Option<ConnectionManager>,
}

/// The default key prefix: `nextgen:{environment}:`.
pub fn default_prefix(environment: Environment) -> String {
    format!("nextgen:{environment}:")
}

impl CoordError {
    /// For metric labels and logs.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadUrl { .. } => "bad_url",
            Self::Unreachable { .. } => "unreachable",
            Self::Rejected { .. } => "rejected",
            Self::TimedOut { .. } => "timed_out",
        }
    }
}

impl Coordinator {
    /// Parses `url` (`redis://[:password@]host[:port][/db]`); connects on first use, so Redis may be down.
    pub fn new(url: &str, prefix: impl Into<String>) -> Result<Self> {
        let redacted = redact_url(url);
        let client = redis::Client::open(url).map_err(|source| CoordError::BadUrl { url: redacted.clone(), source })?;
        let inner =
            Inner { client, url: redacted, prefix: prefix.into(), conn: Mutex::default(), health: Mutex::default() };
        Ok(Self { inner: Arc::new(inner) })
    }

    /// The full key for `suffix`: the prefix, then `suffix`.
    pub fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.inner.prefix)
    }

    /// The URL with any password masked.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    pub async fn ping(&self) -> Result<()> {
        self.call("PING", |mut conn| async move { redis::cmd("PING").query_async::<String>(&mut conn).await })
            .await
            .map(drop)
    }

    /// Sets `{prefix}{key_suffix}` to `value` for `ttl` unless it is set, atomically. Returns the value
    /// that holds the key afterwards: `value` when this call won, the earlier one when it did not.
    pub async fn claim(&self, key_suffix: &str, value: &str, ttl: Duration) -> Result<String> {
        let args = vec![value.to_owned(), millis(ttl)];
        self.eval("claim", &CLAIM, vec![self.key(key_suffix)], args).await
    }

    /// Deletes `{prefix}{key_suffix}` only if it still holds `value`; true when it did.
    pub async fn release(&self, key_suffix: &str, value: &str) -> Result<bool> {
        let deleted: i64 = self.eval("release", &RELEASE, vec![self.key(key_suffix)], vec![value.to_owned()]).await?;
        Ok(deleted > 0)
    }

    /// The value at `{prefix}{key_suffix}`, if any.
    pub async fn get(&self, key_suffix: &str) -> Result<Option<String>> {
        let key = self.key(key_suffix);
        self.call("get", |mut conn| async move { redis::cmd("GET").arg(key).query_async(&mut conn).await }).await
    }

    /// Sets `{prefix}{key_suffix}` to `value` for `ttl`, whatever it held.
    pub async fn put(&self, key_suffix: &str, value: &str, ttl: Duration) -> Result<()> {
        let (key, value, ttl) = (self.key(key_suffix), value.to_owned(), millis(ttl));
        self.call("put", |mut conn| async move {
            redis::cmd("SET").arg(key).arg(value).arg("PX").arg(ttl).query_async::<()>(&mut conn).await
        })
        .await
    }

    /// Records episode `id`, which started and ended at these milliseconds, in the set
    /// `{prefix}{key_suffix}`; the set forgets episodes that ended more than `keep` before it.
    pub async fn record_episode(
        &self,
        key_suffix: &str,
        id: &str,
        started: i64,
        ended: i64,
        keep: Duration,
    ) -> Result<()> {
        let args = vec![started.to_string(), ended.to_string(), id.to_owned(), millis(keep)];
        self.eval::<i64>("record an episode", &RECORD_EPISODE, vec![self.key(key_suffix)], args).await.map(drop)
    }

    /// The id of the first episode in `{prefix}{key_suffix}` whose span overlaps `started..=ended`.
    /// When none does and `or_record` is given, that id is recorded with this span (for `keep`) in
    /// the same step, so of two replicas asking at once the second finds the first, and is answered.
    pub async fn overlapping_episode(
        &self,
        key_suffix: &str,
        started: i64,
        ended: i64,
        or_record: Option<(&str, Duration)>,
    ) -> Result<Option<String>> {
        let (id, keep) = or_record.unwrap_or(("", Duration::ZERO));
        let args = vec![started.to_string(), ended.to_string(), id.to_owned(), millis(keep)];
        self.eval("find an episode", &OVERLAPPING_EPISODE, vec![self.key(key_suffix)], args).await
    }

    pub fn health(&self) -> CoordHealth {
        lock(&self.inner.health).clone()
    }

    /// Runs one Lua script with full key names; `op` names it in errors.
    pub(crate) async fn eval<T>(
        &self,
        op: &'static str,
        script: &'static Script,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<T>
    where
        T: FromRedisValue + Send + 'static,
    {
        self.call(op, move |mut conn| async move {
            let mut invocation = script.prepare_invoke();
            for key in &keys {
                invocation.key(key);
            }
            for arg in &args {
                invocation.arg(arg);
            }
            invocation.invoke_async(&mut conn).await
        })
        .await
    }

    /// One bounded call on the current connection; records health, and drops a broken connection.
    async fn call<T, F, Fut>(&self, op: &'static str, f: F) -> Result<T>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: Future<Output = RedisResult<T>>,
    {
        let outcome = match self.connection(op) {
            Ok((generation, conn)) => match timeout(CALL_TIMEOUT, f(conn)).await {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(source)) if answered(&source) => {
                    Err(CoordError::Rejected { url: self.url().into(), op, source })
                }
                Ok(Err(source)) if !source.is_timeout() => {
                    self.discard(generation);
                    Err(CoordError::Unreachable { url: self.url().into(), op, source })
                }
                // The connection's own timeouts equal ours: either way, no answer in time.
                Ok(Err(_)) | Err(_) => {
                    self.discard(generation);
                    Err(CoordError::TimedOut { url: self.url().into(), op, after: CALL_TIMEOUT })
                }
            },
            Err(e) => Err(e),
        };
        *lock(&self.inner.health) = match &outcome {
            Ok(_) => CoordHealth { reachable: true, last_error: None },
            Err(e) => CoordHealth { reachable: false, last_error: Some(e.to_string()) },
        };
        outcome
    }

    /// The connection in use, opened lazily. Its own retries are off: callers retry on their own schedule.
    fn connection(&self, op: &'static str) -> Result<(u64, ConnectionManager)> {
        let mut conn = lock(&self.inner.conn);
        if let Some(manager) = &conn.manager {
            return Ok((conn.generation, manager.clone()));
        }
        let config = ConnectionManagerConfig::new()
            .set_number_of_retries(0)
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        let manager = ConnectionManager::new_lazy_with_config(self.inner.client.clone(), config)
            .map_err(|source| CoordError::Unreachable { url: self.url().into(), op, source })?;
        conn.generation += 1;
        conn.manager = Some(manager.clone());
        Ok((conn.generation, manager))
    }

    fn discard(&self, generation: u64) {
        let mut conn = lock(&self.inner.conn);
        if conn.generation == generation {
            conn.manager = None;
        }
    }
}

impl std::fmt::Debug for Coordinator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coordinator").field("url", &self.inner.url).field("prefix", &self.inner.prefix).finish()
    }
}

/// Redis answered (an error reply, or a reply of an unexpected shape): the connection itself is fine.
fn answered(e: &RedisError) -> bool {
    matches!(e.kind(), ErrorKind::Server(_) | ErrorKind::UnexpectedReturnType | ErrorKind::Parse)
}

/// PX takes whole milliseconds, at least 1.
pub(crate) fn millis(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_live_under_the_prefix() {
        let coord = Coordinator::new("redis://127.0.0.1:6379", default_prefix(Environment::StagingShared)).unwrap();
        assert_eq!(coord.key("guardian:leader"), "nextgen:staging-shared:guardian:leader");
    }

    #[test]
    fn building_needs_no_redis_and_masks_the_password() {
        let coord = Coordinator::new("redis://:s3cret@127.0.0.1:1/0", "p:").unwrap();
        assert_eq!(coord.url(), "redis://:***@127.0.0.1:1/0");
        assert!(!format!("{coord:?}").contains("s3cret"));
        assert_eq!(coord.health(), CoordHealth { reachable: false, last_error: None });
    }

    #[test]
    fn a_bad_url_is_named_without_its_password() {
        let err = Coordinator::new("http://:s3cret@127.0.0.1", "p:").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("http://:***@127.0.0.1"), "{text}");
        assert!(!text.contains("s3cret"), "{text}");
        assert_eq!(err.code(), "bad_url");
    }

    #[test]
    fn ttls_are_whole_milliseconds_never_zero() {
        assert_eq!(millis(Duration::from_millis(1500)), "1500");
        assert_eq!(millis(Duration::from_micros(10)), "1");
    }
}
