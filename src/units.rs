//! Owns the text forms of durations (`250ms`, `2s`, `30d`) and sizes
//! (`64KiB`, `1MiB`) used in config files and on the command line.

use std::time::Duration;

/// Parses a duration such as `250ms`, `2s`, `5m`, `1h` or `30d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("empty duration (write e.g. 250ms, 2s, 5m)".into());
    }
    if text.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!("duration {text:?} has no unit (write e.g. {text}s or {text}ms)"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("bad duration {text:?}: {e} (write e.g. 250ms, 2s, 5m, 1h, 30d)"))
}

/// Writes a duration the way a person reads it: `500ms`, `3s`, `3.52s`, `2m`.
pub fn format_duration(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        if ms < 10.0 { format!("{ms:.1}ms") } else { format!("{ms:.0}ms") }
    } else if d.as_secs() < 120 {
        let s = d.as_secs_f64();
        if (s - s.round()).abs() < 0.005 { format!("{s:.0}s") } else { format!("{s:.2}s") }
    } else {
        match d.as_secs() {
            s if s % 86_400 == 0 => format!("{}d", s / 86_400),
            s if s % 3_600 == 0 => format!("{}h", s / 3_600),
            s if s % 60 == 0 => format!("{}m", s / 60),
            s => humantime::format_duration(Duration::from_secs(s)).to_string(),
        }
    }
}

/// Parses a size such as `512`, `64KiB`, `1MiB`, `10MB`.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().map_err(|_| format!("bad size {text:?} (write e.g. 64KiB, 1MiB)"))?;
    let mult: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("bad size unit {other:?} in {text:?} (use B, KiB, MiB, GiB, KB, MB, GB)")),
    };
    n.checked_mul(mult).ok_or_else(|| format!("size {text:?} is too large"))
}

/// Writes a size in binary units: `1MiB`, `64KiB`, `1500B`.
pub fn format_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 && b % (1 << 20) == 0 => format!("{}MiB", b >> 20),
        b if b >= 1 << 10 && b % (1 << 10) == 0 => format!("{}KiB", b >> 10),
        b => format!("{b}B"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_of_spec_parse() {
        for (text, ms) in [("250ms", 250), ("2s", 2_000), ("5m", 300_000), ("1h", 3_600_000), ("30d", 2_592_000_000)] {
            assert_eq!(parse_duration(text).unwrap(), Duration::from_millis(ms), "{text}");
        }
    }

    #[test]
    fn durations_without_unit_or_garbage_are_rejected_with_a_hint() {
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("fast").unwrap_err().contains("bad duration \"fast\""));
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn sizes_parse_in_binary_and_decimal_units() {
        assert_eq!(parse_size("64KiB").unwrap(), 65_536);
        assert_eq!(parse_size("1MiB").unwrap(), 1_048_576);
        assert_eq!(parse_size("10MB").unwrap(), 10_000_000);
        assert_eq!(parse_size("512").unwrap(), 512);
        assert!(parse_size("1 potato").unwrap_err().contains("unit"));
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999GiB").unwrap_err().contains("too large"));
    }

    #[test]
    fn formatting_reads_naturally() {
        assert_eq!(format_duration(Duration::from_millis(500)), "500ms");
        assert_eq!(format_duration(Duration::from_millis(3520)), "3.52s");
        assert_eq!(format_duration(Duration::from_secs(3)), "3s");
        assert_eq!(format_size(1 << 20), "1MiB");
        assert_eq!(format_duration(Duration::from_secs(86_400)), "1d");
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m 5s");
    }
}
