//! What the benches read from /proc (Linux): a process's CPU seconds,
//! state and peak RSS, and the machine's load average.

use anyhow::Context;

/// Clock ticks per second in /proc/*/stat (USER_HZ).
pub const USER_HZ: f64 = 100.0;

/// The fields of /proc/PID/stat after the command name (which is in
/// parentheses and may hold spaces): field 0 is the state.
pub fn stat_fields(pid: u32) -> anyhow::Result<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat.rsplit_once(')').context("stat format")?.1;
    Ok(rest.split_whitespace().map(String::from).collect())
}

/// User + system CPU seconds of a process so far.
pub fn cpu(pid: u32) -> anyhow::Result<f64> {
    let fields = stat_fields(pid)?;
    let tick = |i: usize| -> anyhow::Result<f64> { Ok(fields.get(i).context("utime/stime")?.parse::<f64>()?) };
    Ok((tick(11)? + tick(12)?) / USER_HZ)
}

/// Peak resident memory (VmHWM) of a process, in KiB.
pub fn peak_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).context("VmHWM")?;
    Ok(line.split_whitespace().nth(1).context("VmHWM value")?.parse()?)
}

/// The 1, 5 and 15 minute load averages.
pub fn loadavg() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
