//! A PostgreSQL server of one test's own, for outage tests: `initdb` into a
//! temporary directory, a `postgres` process on a free loopback port (its
//! socket in that directory, trust auth), stopped and started again on the
//! same port whenever the test says. The machine's shared server is never
//! touched, so these tests run alongside every other.
//!
//! The server runs as the `postgres` OS user when the test runs as root
//! (PostgreSQL refuses root), as the test's own user otherwise. It is shut
//! down when dropped, also while a failed test unwinds; should the test
//! process be killed outright, a detached watchdog stops it and removes its
//! directory once the process is gone.
//!
//! Without PostgreSQL's binaries a test prints a note and returns early,
//! except under `CI=true`, where it fails.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use sqlx::migrate::MigrateDatabase;
use sqlx::{Connection, PgConnection, Postgres};

/// How long a start (with crash recovery after an immediate stop) or a stop may take.
const WITHIN: Duration = Duration::from_secs(30);

/// How the server is stopped: PostgreSQL's own shutdown modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// SIGINT: sessions are ended, a checkpoint is written (`pg_ctl stop -m fast`, a service restart).
    Fast,
    /// SIGQUIT: everything exits at once, crash recovery at the next start (`-m immediate`, a crash).
    Immediate,
}

/// A private PostgreSQL server with one database, `guardian`.
pub struct PrivatePg {
    pub port: u16,
    /// `postgres://postgres@127.0.0.1:PORT/guardian`.
    pub url: String,
    bin: PathBuf,
    dir: tempfile::TempDir,
    owner: Option<(u32, u32)>,
    child: Option<Child>,
}

impl PrivatePg {
    /// Initialises and starts a server on a free port, with its `guardian` database;
    /// `None` when PostgreSQL is not installed, outside CI.
    pub async fn start() -> Option<Self> {
        let Some(bin) = bin_dir() else {
            let message = "no PostgreSQL binaries under /usr/lib/postgresql/*/bin";
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{message} (CI=true: these tests must run)");
            eprintln!("note: {message}; skipping this test");
            return None;
        };
        let dir = tempfile::Builder::new().prefix("guardian-pg-").tempdir().unwrap();
        let owner = owner();
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("postgres://postgres@127.0.0.1:{port}/guardian");
        let mut pg = Self { port, url, bin, dir, owner, child: None };
        pg.initdb();
        reap_when_gone(pg.dir.path());
        pg.start_again().await;
        Postgres::create_database(&pg.url).await.unwrap_or_else(|e| panic!("cannot create the database: {e}"));
        Some(pg)
    }

    /// Starts the server again on the same port and data, and waits until it takes connections.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "the private PostgreSQL already runs");
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.path("server.log")).unwrap();
        if let Some((uid, gid)) = self.owner {
            std::os::unix::fs::chown(self.path("server.log"), Some(uid), Some(gid)).unwrap();
        }
        let mut cmd = self.command("postgres");
        cmd.arg("-D").arg(self.path("data")).arg("-k").arg(self.dir.path()).args(["-h", "127.0.0.1", "-p"]);
        cmd.arg(self.port.to_string());
        // Durability is not under test here, and the machine is shared: keep it light.
        for setting in ["fsync=off", "full_page_writes=off", "shared_buffers=16MB", "max_connections=40"] {
            cmd.args(["-c", setting]);
        }
        let child = cmd.stdin(Stdio::null()).stdout(log.try_clone().unwrap()).stderr(log).spawn().unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + WITHIN;
        loop {
            if self.answers().await {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().unwrap()) {
                panic!("the private PostgreSQL exited with {status}: {}", self.log());
            }
            assert!(
                Instant::now() < deadline,
                "the private PostgreSQL did not start within {WITHIN:?}: {}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Stops the server and waits until it is gone: from now on every connection is refused.
    pub async fn stop(&mut self, how: Stop) {
        let Some(mut child) = self.child.take() else { return };
        let signal = match how {
            Stop::Fast => "-INT",
            Stop::Immediate => "-QUIT",
        };
        Command::new("kill").args([signal, &child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + WITHIN;
        while child.try_wait().unwrap().is_none() {
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the private PostgreSQL did not stop ({how:?}) within {WITHIN:?}: {}", self.log());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Whether a connection to the maintenance database succeeds within a second.
    pub async fn answers(&self) -> bool {
        let url = format!("postgres://postgres@127.0.0.1:{}/postgres", self.port);
        matches!(tokio::time::timeout(Duration::from_secs(1), PgConnection::connect(&url)).await, Ok(Ok(_)))
    }

    /// The server's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("server.log")).unwrap_or_default()
    }

    fn initdb(&self) {
        let out = self
            .command("initdb")
            .arg("-D")
            .arg(self.path("data"))
            .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb failed: {}", String::from_utf8_lossy(&out.stderr));
    }

    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.current_dir(self.dir.path()).env("LC_ALL", "C");
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid).gid(gid);
        }
        cmd
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").args(["-QUIT", &child.id().to_string()]).status();
            let deadline = Instant::now() + Duration::from_secs(5);
            while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The newest installed version's binaries.
fn bin_dir() -> Option<PathBuf> {
    let versions = std::fs::read_dir("/usr/lib/postgresql").ok()?;
    let mut found: Vec<(u32, PathBuf)> = versions
        .filter_map(Result::ok)
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("postgres").exists() && bin.join("initdb").exists())
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

/// The `postgres` OS user's uid and gid when this test runs as root, which PostgreSQL refuses.
fn owner() -> Option<(u32, u32)> {
    if std::fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0) != 0 {
        return None;
    }
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, "postgres"]).output().unwrap();
        assert!(out.status.success(), "running as root needs a postgres OS user to run PostgreSQL");
        String::from_utf8(out.stdout).unwrap().trim().parse::<u32>().unwrap()
    };
    Some((id("-u"), id("-g")))
}

/// Once this process is gone, stops the server still serving `dir` (its command line names
/// `dir`, so a reused pid is left alone) and removes `dir`; in a session of its own, so a
/// runner killing the test's group misses it.
fn reap_when_gone(dir: &Path) {
    let dir = dir.display();
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         p=$(head -n 1 '{dir}/data/postmaster.pid' 2>/dev/null) && grep -aq '{dir}' /proc/$p/cmdline 2>/dev/null \
           && kill -QUIT $p && sleep 2; rm -rf '{dir}'",
        pid = std::process::id(),
    );
    if let Err(e) = Command::new("setsid")
        .args(["sh", "-c", &script])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
    {
        eprintln!("note: no watchdog to stop the private PostgreSQL if this test dies: {e}");
    }
}
