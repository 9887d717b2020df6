//! Owns the outbox's data: one `Delivery` per notification and channel, as
//! storage keeps it so nothing is lost across restarts and nothing is sent
//! twice. Pure; the courier (`courier.rs`) moves rows through their states.

use jiff::Timestamp;

/// One notification for one channel.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// Unique with `channel`: `{incident}:{event}[:…]`, the same on every
    /// replica and after a restart, so a second enqueue is a no-op.
    pub key: String,
    /// `alertmanager`, or `webhook-{format}-{hash of the URL}` (never the URL:
    /// a Slack webhook's path is its secret).
    pub channel: String,
    /// The `Message`, as JSON.
    pub payload: String,
    pub created_at: Timestamp,
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// Not sent again before this.
    pub next_attempt_at: Timestamp,
    /// Why the last attempt failed, with any URL password masked.
    pub last_error: Option<String>,
    /// When it was delivered or abandoned.
    pub done_at: Option<Timestamp>,
}

/// Where a delivery is. `Delivered` and `Abandoned` are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    Pending,
    Delivered,
    Abandoned,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Abandoned => "abandoned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "delivered" => Some(Self::Delivered),
            "abandoned" => Some(Self::Abandoned),
            _ => None,
        }
    }

    pub fn is_final(self) -> bool {
        self != Self::Pending
    }
}

/// How long a delivery is tried before it is abandoned: a receiver down for
/// longer than a day has lost its audience, and the audit log keeps the rest.
pub const MAX_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);
/// First wait after a failed attempt; doubles up to `MAX_RETRY_WAIT`.
const FIRST_RETRY_WAIT: std::time::Duration = std::time::Duration::from_secs(1);
/// Short enough that a receiver back after minutes hears within half a minute.
const MAX_RETRY_WAIT: std::time::Duration = std::time::Duration::from_secs(30);
/// The longest wait `retry_wait` gives (`MAX_RETRY_WAIT` × 1.5), longer than
/// any other wait between attempts: a later due time is a wall-clock jump.
pub const LONGEST_WAIT: std::time::Duration = std::time::Duration::from_secs(45);
/// A receiver that refuses the same body this many times (a 4xx) will not
/// take it later either; it no longer holds the channel's queue up.
pub const MAX_REFUSALS: u32 = 3;

/// The wait before attempt `attempts + 1`, given `spread` in [0, 1): the
/// base doubles from 1 s up to 30 s, then is scaled by 0.5 + spread so
/// replicas and channels do not retry in step.
pub fn retry_wait(attempts: u32, spread: f64) -> std::time::Duration {
    let base = FIRST_RETRY_WAIT.saturating_mul(1 << attempts.saturating_sub(1).min(16)).min(MAX_RETRY_WAIT);
    base.mul_f64(0.5 + spread.clamp(0.0, 1.0))
}

/// A short, stable, non-reversible tag of a webhook URL, so a channel keeps
/// its identity across restarts without storing the URL (FNV-1a, 32 bits).
pub fn url_tag(url: &str) -> String {
    let hash = url.bytes().fold(0x811c_9dc5_u32, |h, b| (h ^ u32::from(b)).wrapping_mul(0x0100_0193));
    format!("{hash:08x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn retry_waits_double_from_a_second_cap_at_thirty_and_spread_by_half() {
        for (attempts, base) in [(1, 1_000), (2, 2_000), (3, 4_000), (5, 16_000), (6, 30_000), (60, 30_000)] {
            assert_eq!(retry_wait(attempts, 0.5), Duration::from_millis(base), "{attempts}");
            assert_eq!(retry_wait(attempts, 0.0), Duration::from_millis(base / 2), "{attempts}");
            assert_eq!(retry_wait(attempts, 1.0), Duration::from_millis(base * 3 / 2), "{attempts}");
        }
        assert_eq!(retry_wait(0, 0.5), Duration::from_secs(1));
        assert_eq!(retry_wait(60, 1.0), LONGEST_WAIT, "no wait is longer");
    }

    #[test]
    fn url_tags_are_stable_and_tell_urls_apart() {
        assert_eq!(url_tag(""), "811c9dc5");
        assert_eq!(url_tag("a"), "e40c292c");
        assert_ne!(
            url_tag("https://hooks.slack.com/services/T0/B0/x"),
            url_tag("https://hooks.slack.com/services/T0/B0/y")
        );
    }

    #[test]
    fn states_round_trip_and_only_pending_is_open() {
        for s in [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Abandoned] {
            assert_eq!(DeliveryState::parse(s.as_str()), Some(s));
        }
        assert_eq!(DeliveryState::parse("sent"), None);
        assert!(!DeliveryState::Pending.is_final() && DeliveryState::Delivered.is_final());
    }
}
