//! A Redis server of one test's own, for outage tests: `redis-server` on a
//! free loopback port, keeping nothing (no RDB snapshot, no AOF), killed and
//! started again on the same port whenever the test says, so it comes back
//! empty as a Redis without persistence does after a crash. The machine's
//! shared Redis is never touched.
//!
//! Killed when dropped, also while a failed test unwinds; should the test
//! process be killed outright, a detached watchdog kills the server once the
//! process is gone. Without `redis-server` a test prints a note and returns
//! early, except under `CI=true`, where it fails.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const WITHIN: Duration = Duration::from_secs(10);

pub struct PrivateRedis {
    pub port: u16,
    /// `redis://127.0.0.1:PORT`.
    pub url: String,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Starts a server on a free port; `None` when `redis-server` is not installed, outside CI.
    pub async fn start() -> Option<Self> {
        if Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_err() {
            let message = "redis-server is not installed";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{message} (CI=true: these tests must run)");
            eprintln!("note: {message}; skipping this test");
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::Builder::new().prefix("guardian-redis-").tempdir().unwrap();
        let mut redis = Self { port, url: format!("redis://127.0.0.1:{port}"), dir, child: None };
        kill_when_gone(&redis);
        redis.start_again().await;
        Some(redis)
    }

    /// Starts the server again on the same port, empty, and waits until it answers PING.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "the private Redis already runs");
        let log = self.dir.path().join("server.log");
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args(["--port", &port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .arg("--logfile")
            .arg(&log)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::fs::write(self.pid_file(), child.id().to_string()).unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + WITHIN;
        while !self.answers().await {
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("the private Redis exited with {status}: {}", self.log());
            }
            assert!(Instant::now() < deadline, "the private Redis did not start within {WITHIN:?}: {}", self.log());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Kills the server (SIGKILL: a crash, nothing saved) and waits until it is gone.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Whether it answers PING within a second.
    pub async fn answers(&self) -> bool {
        let ping = async {
            let client = ::redis::Client::open(self.url.as_str()).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            ::redis::cmd("PING").query_async::<String>(&mut conn).await.ok()
        };
        matches!(tokio::time::timeout(Duration::from_secs(1), ping).await, Ok(Some(_)))
    }

    /// How many keys it holds now.
    pub async fn dbsize(&self) -> i64 {
        let client = ::redis::Client::open(self.url.as_str()).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        ::redis::cmd("DBSIZE").query_async(&mut conn).await.unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn pid_file(&self) -> std::path::PathBuf {
        self.dir.path().join("server.pid")
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Once this process is gone, kills the server it started last if that still runs (its
/// process title names the port, so a reused pid is left alone); from a session of its own.
fn kill_when_gone(redis: &PrivateRedis) {
    let script = format!(
        "while kill -0 {me} 2>/dev/null; do sleep 0.5; done; \
         p=$(cat '{file}' 2>/dev/null) && grep -aq 'redis-server.*:{port}' /proc/$p/cmdline 2>/dev/null && kill -9 $p",
        me = std::process::id(),
        file = redis.pid_file().display(),
        port = redis.port,
    );
    let spawned = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if let Err(e) = spawned {
        eprintln!("note: no watchdog to kill the private Redis if this test dies: {e}");
    }
}
