//! The test process's memory, read from `/proc/self/status`: what a hostile
//! input may cost. nextest runs each test in a process of its own, so the
//! peak is the test's; under `cargo test` meters take turns, but tests that
//! measure nothing may still add to what one sees.

use std::sync::{Mutex, MutexGuard};

/// What one hostile input may add to a probing process's peak memory.
pub const BOUND: u64 = 64 << 20;

/// One meter at a time per process: each resets the peak.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Memory growth since it was started.
pub struct Meter {
    start: u64,
    _alone: MutexGuard<'static, ()>,
}

impl Meter {
    /// Resets the peak to the current size (Linux `clear_refs` 5) and remembers that size.
    pub fn start() -> Meter {
        let alone = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let _ = std::fs::write("/proc/self/clear_refs", "5");
        Meter { start: now(), _alone: alone }
    }

    /// How far the peak rose above the size at start, in bytes.
    pub fn grew(&self) -> u64 {
        peak().saturating_sub(self.start)
    }
}

/// Resident set size now, in bytes.
pub fn now() -> u64 {
    field("VmRSS:")
}

/// Peak resident set size (VmHWM), in bytes.
pub fn peak() -> u64 {
    field("VmHWM:")
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_else(|e| panic!("/proc/self/status: {e}"));
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no {name} in /proc/self/status"));
    kib * 1024
}
