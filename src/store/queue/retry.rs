//! Owns the retry rules of the write queue, as pure functions: which failed
//! writes are worth retrying and how long to wait before the next attempt.
//!
//! Rule: a write is retried until it lands, unless the database answered
//! that this very write can never be stored (a data or constraint error);
//! that write is dropped and counted so one bad value cannot block the rest.
//! Every other error (refused connection, pool timeout, I/O, a missing
//! table) is retried after an exponential back-off with jitter, capped, so
//! a recovering database is not stampeded by every replica at once.

use std::time::Duration;

use sqlx::error::ErrorKind;

use crate::store::Error;

/// Exponential back-off between failed flushes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// The wait after the first failure.
    pub base: Duration,
    /// The longest wait.
    pub cap: Duration,
}

impl Backoff {
    /// The wait after `failures` failures in a row (1 = the first), with
    /// `jitter` in `[0, 1]` spreading it over the upper half of its range.
    pub fn delay(&self, failures: u32, jitter: f64) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        let full = self.base.saturating_mul(1u32 << doublings).min(self.cap);
        let jitter = if jitter.is_finite() { jitter.clamp(0.0, 1.0) } else { 0.0 };
        full / 2 + full.mul_f64(jitter) / 2
    }
}

/// True when retrying this failed write can never succeed.
pub fn is_permanent(error: &Error) -> bool {
    match error {
        Error::Query { source: sqlx::Error::Database(db), .. } => rejects_the_data(db.kind(), db.code().as_deref()),
        Error::Query { source: sqlx::Error::Encode(_), .. } | Error::BadRow { .. } | Error::Unsupported(_) => true,
        _ => false,
    }
}

/// The database refused the values themselves: a constraint, or (PostgreSQL
/// SQLSTATE class 22) a data exception such as a NUL byte in text.
pub fn rejects_the_data(kind: ErrorKind, code: Option<&str>) -> bool {
    let constraint = matches!(
        kind,
        ErrorKind::UniqueViolation
            | ErrorKind::ForeignKeyViolation
            | ErrorKind::NotNullViolation
            | ErrorKind::CheckViolation
    );
    let data_exception = code.is_some_and(|c| c.len() == 5 && c.starts_with("22"));
    constraint || data_exception
}

#[cfg(test)]
mod tests {
    use super::*;

    const BACKOFF: Backoff = Backoff { base: Duration::from_millis(200), cap: Duration::from_secs(10) };

    #[test]
    fn waits_double_after_each_failure_up_to_the_cap() {
        let cases = [
            ("first failure, no jitter", 1, 0.0, 100),
            ("first failure, full jitter", 1, 1.0, 200),
            ("second failure", 2, 1.0, 400),
            ("third failure, half jitter", 3, 0.5, 600),
            ("sixth failure reaches the cap", 7, 1.0, 10_000),
            ("many failures stay capped", 1_000, 1.0, 10_000),
            ("capped, no jitter", 1_000, 0.0, 5_000),
        ];
        for (name, failures, jitter, want_ms) in cases {
            assert_eq!(BACKOFF.delay(failures, jitter), Duration::from_millis(want_ms), "{name}");
        }
    }

    #[test]
    fn jitter_out_of_range_is_clamped() {
        assert_eq!(BACKOFF.delay(2, 7.0), Duration::from_millis(400));
        assert_eq!(BACKOFF.delay(2, -1.0), Duration::from_millis(200));
        assert_eq!(BACKOFF.delay(2, f64::NAN), Duration::from_millis(200));
        assert_eq!(BACKOFF.delay(0, 1.0), Duration::from_millis(200));
    }

    #[test]
    fn only_data_the_database_refuses_is_given_up() {
        let cases = [
            ("NUL byte in PostgreSQL text", ErrorKind::Other, Some("22021"), true),
            ("numeric out of range", ErrorKind::Other, Some("22003"), true),
            ("not null", ErrorKind::NotNullViolation, Some("23502"), true),
            ("check", ErrorKind::CheckViolation, Some("23514"), true),
            ("server shutting down", ErrorKind::Other, Some("57P01"), false),
            ("too many connections", ErrorKind::Other, Some("53300"), false),
            ("missing table", ErrorKind::Other, Some("42P01"), false),
            ("SQLite busy", ErrorKind::Other, Some("5"), false),
            ("SQLite read-only", ErrorKind::Other, Some("8"), false),
            ("no code", ErrorKind::Other, None, false),
        ];
        for (name, kind, code, want) in cases {
            assert_eq!(rejects_the_data(kind, code), want, "{name}");
        }
    }

    #[test]
    fn connection_failures_are_retried() {
        let refused = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        assert!(!is_permanent(&Error::Query { op: "log_action", source: sqlx::Error::Io(refused) }));
        assert!(!is_permanent(&Error::Query { op: "log_action", source: sqlx::Error::PoolTimedOut }));
        assert!(is_permanent(&Error::BadRow { what: "action", detail: "x".into() }));
    }
}
