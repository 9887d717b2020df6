//! The local PostgreSQL (127.0.0.1:5432, user `postgres`, trust auth) for
//! integration tests: a fresh database per test, dropped when the test ends,
//! and stopping and starting the server for outage tests.
//!
//! When the server cannot be reached, tests print a note and return early,
//! except under `CI=true`, where they fail. Under nextest every test is its
//! own process and `.config/nextest.toml` keeps the outage test alone; under
//! `cargo test` the tests of one binary share a process, so a lock keeps the
//! other PostgreSQL tests of that binary from running while the server is down.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sqlx::migrate::MigrateDatabase;
use sqlx::{Connection, PgConnection, Postgres};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

/// The server's maintenance database.
pub const ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";

/// Read by every test database, written by the one that stops the server.
static SERVER: RwLock<()> = RwLock::const_new(());
static NEXT: AtomicU32 = AtomicU32::new(0);

/// A database that exists for one test.
pub struct TestDb {
    pub url: String,
    pub name: String,
    lock: Lock,
}

enum Lock {
    Shared(RwLockReadGuard<'static, ()>),
    Alone(RwLockWriteGuard<'static, ()>),
}

/// A fresh database, or `None` when PostgreSQL is unreachable outside CI.
pub async fn fresh_db() -> Option<TestDb> {
    create(Lock::Shared(SERVER.read().await)).await
}

/// Like `fresh_db`, for a test that stops the server: no other PostgreSQL
/// test of this process runs meanwhile.
pub async fn fresh_db_alone() -> Option<TestDb> {
    create(Lock::Alone(SERVER.write().await)).await
}

async fn create(lock: Lock) -> Option<TestDb> {
    if let Err(why) = reachable().await {
        let message = format!("PostgreSQL at {ADMIN_URL} is unreachable: {why}");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{message} (CI=true: PostgreSQL tests must run)");
        eprintln!("note: {message}; skipping this PostgreSQL test");
        return None;
    }
    let name = format!("guardian_test_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed));
    let url = format!("postgres://postgres@127.0.0.1:5432/{name}");
    Postgres::create_database(&url).await.unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    Some(TestDb { url, name, lock })
}

/// Connects to the maintenance database within a few seconds.
pub async fn reachable() -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(3), PgConnection::connect(ADMIN_URL)).await {
        Ok(Ok(conn)) => conn.close().await.map_err(|e| e.to_string()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer within 3s".into()),
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // Drop runs outside async and also while a failed test unwinds: use a runtime of its own.
        let url = self.url.clone();
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(drop_database(&url))
        });
        if dropped.join().ok().flatten().is_none() {
            eprintln!("note: could not drop test database {}", self.name);
        }
    }
}

/// Drops the database, waiting for a server that is still starting.
async fn drop_database(url: &str) -> Option<()> {
    for _ in 0..50 {
        if Postgres::force_drop_database(url).await.is_ok() {
            return Some(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// The stopped server; dropping this starts it again, whatever happened.
pub struct StoppedServer {
    running: bool,
}

/// Stops the server. Only a test holding `fresh_db_alone` may do so.
///
/// Should this process die before starting the server again (killed on a
/// timeout, say), a detached watchdog starts it once the process is gone.
pub fn stop_server(db: &TestDb) -> StoppedServer {
    assert!(matches!(db.lock, Lock::Alone(_)), "stop the server only from a test that holds fresh_db_alone()");
    spawn_watchdog();
    pg_ctlcluster("stop");
    StoppedServer { running: false }
}

impl StoppedServer {
    pub fn start(&mut self) {
        if !self.running {
            pg_ctlcluster("start");
            self.running = true;
        }
    }
}

impl Drop for StoppedServer {
    fn drop(&mut self) {
        self.start();
    }
}

/// `pg_ctlcluster --skip-systemctl-redirect VERSION main ACTION`; panics on failure
/// unless already unwinding.
fn pg_ctlcluster(action: &str) {
    let status =
        Command::new("pg_ctlcluster").args(["--skip-systemctl-redirect", &cluster_version(), "main", action]).status();
    let ok = status.as_ref().is_ok_and(|s| s.success());
    if !ok && !std::thread::panicking() {
        panic!("pg_ctlcluster {action} failed: {status:?}");
    }
}

/// The installed cluster version: the one directory under /etc/postgresql.
fn cluster_version() -> String {
    let mut dirs = std::fs::read_dir("/etc/postgresql").expect("/etc/postgresql lists the cluster versions");
    let first = dirs.next().expect("one PostgreSQL version under /etc/postgresql").expect("readable");
    first.file_name().to_string_lossy().into_owned()
}

/// Starts the server after this process exits, in its own session so that a
/// runner killing this test's process group does not kill it too.
fn spawn_watchdog() {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.2; done; \
         pg_ctlcluster --skip-systemctl-redirect {version} main start >/dev/null 2>&1 || true",
        pid = std::process::id(),
        version = cluster_version(),
    );
    let spawned = Command::new("setsid").args(["sh", "-c", &script]).spawn();
    if let Err(e) = spawned {
        eprintln!("note: no watchdog to restart PostgreSQL if this test dies: {e}");
    }
}
