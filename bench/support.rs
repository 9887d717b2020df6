//! What the benches share: the real `guardian sim` and `guardian run` as
//! child processes, killed when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use anyhow::Context;

pub const BIN: &str = env!("CARGO_BIN_EXE_guardian");

pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `guardian sim` on ephemeral ports; returns its landing, dashboard and admin addresses.
pub fn start_sim() -> anyhow::Result<(Proc, Vec<String>)> {
    let mut child = Command::new(BIN)
        .args(["sim", "--ports", "0,0,0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("sim stdout")?;
    let mut ports = Vec::new();
    for line in BufReader::new(stdout).lines().take(3) {
        ports.push(line?.rsplit(' ').next().context("sim address")?.to_string());
    }
    Ok((Proc(child), ports))
}

/// `guardian run -c guardian.yaml` in `dir`; returns its API address.
pub fn start_guardian(dir: &std::path::Path) -> anyhow::Result<(Proc, String)> {
    let mut child = Command::new(BIN)
        .args(["--log-format", "json", "run", "-c", "guardian.yaml"])
        .current_dir(dir)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().context("guardian stderr")?;
    let mut lines = BufReader::new(stderr).lines();
    let addr = loop {
        let line = lines.next().context("guardian exited before serving")??;
        if line.contains("guardian serving") {
            let v: serde_json::Value = serde_json::from_str(&line)?;
            break v["addr"].as_str().context("addr")?.to_string();
        }
    };
    // Keep draining stderr so the guardian never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    Ok((Proc(child), addr))
}
