//! Runs the real `guardian` binary for a test: writes its config, starts it
//! with JSON logs, finds its API address from the "guardian serving" line,
//! and keeps every log line so tests can look for leaks.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Guardian {
    pub child: Child,
    pub addr: SocketAddr,
    pub logs: Arc<Mutex<Vec<String>>>,
    _dir: Option<tempfile::TempDir>,
}

impl Guardian {
    /// Starts `guardian run` with this config text (its `listen` should be `127.0.0.1:0`).
    pub fn start(config: &str, envs: &[(&str, &str)]) -> Guardian {
        let dir = tempfile::tempdir().unwrap();
        let mut g = Self::start_in(dir.path(), config, envs);
        g._dir = Some(dir);
        g
    }

    /// Like `start`, in `dir` (its working directory, where `sqlite://guardian.db` lives).
    pub fn start_in(dir: &std::path::Path, config: &str, envs: &[(&str, &str)]) -> Guardian {
        let path = dir.join("guardian.yaml");
        std::fs::write(&path, config).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_guardian"))
            .args(["--log-format", "json", "run", "-c"])
            .arg(&path)
            .envs(envs.iter().copied())
            .env("RUST_LOG", "debug")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("guardian serving") {
                    let _ = tx.send(line.clone());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let line = rx.recv_timeout(Duration::from_secs(20)).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("guardian did not start: {:?}", logs.lock().unwrap())
        });
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        let addr = json["addr"].as_str().unwrap().parse().unwrap();
        Guardian { child, addr, logs, _dir: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Sends SIGTERM and waits at most `within` for the exit code.
    pub fn terminate(&mut self, within: Duration) -> Option<i32> {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        None
    }

    pub fn all_logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }
}

impl Drop for Guardian {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
