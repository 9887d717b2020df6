//! The local Redis (127.0.0.1:6379) for integration tests: a key prefix of
//! its own per test, whose keys are deleted when the test ends.
//!
//! When Redis cannot be reached, tests print a note and return early, except
//! under `CI=true`, where they fail.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

pub const URL: &str = "redis://127.0.0.1:6379";

static NEXT: AtomicU32 = AtomicU32::new(0);

/// The local Redis URL, or `None` when it is unreachable outside CI (under `CI=true`, a panic).
pub async fn redis_url_or_skip() -> Option<&'static str> {
    if let Err(why) = reachable().await {
        let message = format!("Redis at {URL} is unreachable: {why}");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message} (CI=true: Redis tests must run)");
        eprintln!("note: {message}; skipping this Redis test");
        return None;
    }
    Some(URL)
}

/// PINGs the server within a few seconds.
pub async fn reachable() -> Result<(), String> {
    let ping = async {
        let client = ::redis::Client::open(URL).map_err(|e| e.to_string())?;
        let mut conn = client.get_multiplexed_async_connection().await.map_err(|e| e.to_string())?;
        ::redis::cmd("PING").query_async::<String>(&mut conn).await.map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_secs(3), ping).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no answer within 3s".into()),
    }
}

/// A key prefix no other test or run uses; its keys are deleted on drop, even when the test fails.
pub struct TestPrefix {
    pub prefix: String,
}

impl TestPrefix {
    pub fn new() -> Self {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let prefix = format!("guardian-test:{}:{n}:{:08x}:", std::process::id(), rand::random::<u32>());
        Self { prefix }
    }

    /// The value at `{prefix}{suffix}`, read directly (not through the code under test).
    pub async fn get(&self, suffix: &str) -> Option<String> {
        let mut conn = connect().await;
        ::redis::cmd("GET").arg(format!("{}{suffix}", self.prefix)).query_async(&mut conn).await.unwrap()
    }

    /// The remaining time to live of `{prefix}{suffix}` in milliseconds (-2 absent, -1 no expiry).
    pub async fn pttl(&self, suffix: &str) -> i64 {
        let mut conn = connect().await;
        ::redis::cmd("PTTL").arg(format!("{}{suffix}", self.prefix)).query_async(&mut conn).await.unwrap()
    }
}

impl TestPrefix {
    /// Deletes `{prefix}{suffix}` directly, as an eviction or a failover that lost the write would.
    pub async fn del(&self, suffix: &str) {
        let mut conn = connect().await;
        ::redis::cmd("DEL").arg(format!("{}{suffix}", self.prefix)).query_async::<i64>(&mut conn).await.unwrap();
    }

    /// Sets `{prefix}{suffix}` to `value` directly, without expiry.
    pub async fn set(&self, suffix: &str, value: &str) {
        let mut conn = connect().await;
        ::redis::cmd("SET")
            .arg(format!("{}{suffix}", self.prefix))
            .arg(value)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }

    /// Increments the counter at `{prefix}{suffix}` directly.
    pub async fn incr(&self, suffix: &str) -> i64 {
        let mut conn = connect().await;
        ::redis::cmd("INCR").arg(format!("{}{suffix}", self.prefix)).query_async(&mut conn).await.unwrap()
    }
}

async fn connect() -> ::redis::aio::MultiplexedConnection {
    let client = ::redis::Client::open(URL).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

impl Default for TestPrefix {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        // Synchronous: Drop runs outside async, and also while a failed test unwinds.
        let deleted = (|| -> ::redis::RedisResult<()> {
            let client = ::redis::Client::open(URL)?;
            let mut conn = client.get_connection_with_timeout(Duration::from_secs(2))?;
            let keys: Vec<String> = ::redis::cmd("KEYS").arg(format!("{}*", self.prefix)).query(&mut conn)?;
            if !keys.is_empty() {
                ::redis::cmd("DEL").arg(keys).query::<i64>(&mut conn)?;
            }
            Ok(())
        })();
        if let Err(e) = deleted {
            eprintln!("note: could not delete the test keys under {}: {e}", self.prefix);
        }
    }
}
