//! Real command-line tools from Debian (promtool, amtool) run by tests.
//! A tool missing from PATH skips the test with a note, except under
//! `CI=true`, where the test fails.

use std::process::{Command, Output};

/// Runs `tool` with `args`; `None` when it is not on PATH (outside CI).
pub fn run(tool: &str, args: &[&str]) -> Option<Output> {
    match Command::new(tool).args(args).output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{tool} is not on PATH, and CI=true requires it");
            eprintln!("{tool} not on PATH (Debian packages prometheus, prometheus-alertmanager): skipped");
            None
        }
        Err(e) => panic!("cannot run {tool}: {e}"),
    }
}

/// What the tool printed, both streams.
pub fn report(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}
