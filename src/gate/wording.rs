//! How gate messages write times, durations and shares for people: UTC
//! instants to the second, durations as `2h13m` or `45s`, shares as `4.2%`.
//! One place, so every reason reads the same way.

use jiff::{SignedDuration, Timestamp};

/// `2026-11-25T14:02:00Z`.
pub fn instant(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A length of time in its two largest units: `45s`, `3m20s`, `2h13m`, `1d2h`.
/// Negative lengths are written as zero.
pub fn duration(d: SignedDuration) -> String {
    let secs = u64::try_from(d.as_secs()).unwrap_or(0);
    let parts = [(secs / 86_400, "d"), (secs / 3_600 % 24, "h"), (secs / 60 % 60, "m"), (secs % 60, "s")];
    let Some(first) = parts.iter().position(|(n, _)| *n > 0) else { return "0s".into() };
    let mut out = format!("{}{}", parts[first].0, parts[first].1);
    if let Some((n, unit)) = parts.get(first + 1).filter(|(n, _)| *n > 0) {
        out += &format!("{n}{unit}");
    }
    out
}

/// A wait until a future instant, rounded up to the minute past one minute,
/// so "in 20h58m" never promises a moment that has not come yet.
pub fn wait(d: SignedDuration) -> String {
    let secs = d.as_secs().max(0);
    if secs < 60 {
        return duration(d);
    }
    let minutes = (secs + 59) / 60;
    duration(SignedDuration::from_mins(minutes))
}

/// A std duration (config values) in the same words.
pub fn std_duration(d: std::time::Duration) -> String {
    duration(SignedDuration::try_from(d).unwrap_or(SignedDuration::MAX))
}

/// A ratio as a percentage: `0.1` → `10%`, `0.042` → `4.2%`.
pub fn percent(ratio: f64) -> String {
    let p = ratio * 100.0;
    if (p - p.round()).abs() < 0.05 { format!("{:.0}%", p.round()) } else { format!("{p:.1}%") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_in_their_two_largest_units() {
        for (secs, text) in [(0, "0s"), (45, "45s"), (200, "3m20s"), (3_600, "1h"), (7_980, "2h13m"), (93_600, "1d2h")]
        {
            assert_eq!(duration(SignedDuration::from_secs(secs)), text, "{secs}s");
        }
        assert_eq!(duration(SignedDuration::from_secs(-5)), "0s");
    }

    #[test]
    fn waits_round_up_to_the_minute() {
        assert_eq!(wait(SignedDuration::from_secs(75_480)), "20h58m");
        assert_eq!(wait(SignedDuration::from_secs(75_450)), "20h58m");
        assert_eq!(wait(SignedDuration::from_secs(30)), "30s");
    }

    #[test]
    fn percentages_drop_a_useless_decimal() {
        assert_eq!(percent(0.1), "10%");
        assert_eq!(percent(0.042), "4.2%");
        assert_eq!(percent(-0.35), "-35%");
    }
}
