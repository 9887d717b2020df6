//! Owns the mapping between domain values and columns: timestamps as unix
//! milliseconds, latencies as microseconds, counts and flags as BIGINT (the
//! `Any` driver has no unsigned or SQLite boolean type), gate reasons as JSON,
//! delivery states as their names.

use std::time::Duration;

use jiff::Timestamp;
use sqlx::any::AnyRow;
use sqlx::{Any, Decode, Row, Type};

use crate::audit::ActionRecord;
use crate::config::Environment;
use crate::gate::{Backup, GateDecision, Reason, ReasonCode};
use crate::incident::Incident;
use crate::migration::{Migration, OnBreach};
use crate::notify::{Delivery, DeliveryState};
use crate::slo::MinuteRollup;
use crate::store::{Error, Result};

#[derive(serde::Deserialize)]
struct StoredReason {
    code: String,
    message: String,
}

pub(super) fn millis(t: Timestamp) -> i64 {
    t.as_millisecond()
}

pub(super) fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

pub(super) fn count(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(super) fn flag(b: bool) -> i64 {
    i64::from(b)
}

pub(super) fn reasons_json(reasons: &[Reason]) -> Result<String> {
    serde_json::to_string(reasons).map_err(|e| bad("gate decision", "reasons", e))
}

pub(super) fn rollup(row: &AnyRow) -> Result<MinuteRollup> {
    const WHAT: &str = "rollup";
    Ok(MinuteRollup {
        check: get(row, WHAT, "check_name")?,
        minute: get(row, WHAT, "minute")?,
        good: unsigned(row, WHAT, "good")?,
        total: unsigned(row, WHAT, "total")?,
    })
}

pub(super) fn incident(row: &AnyRow) -> Result<Incident> {
    const WHAT: &str = "incident";
    Ok(Incident {
        id: get(row, WHAT, "id")?,
        check: get(row, WHAT, "check_name")?,
        started_at: timestamp(row, WHAT, "started_at_ms")?,
        ended_at: optional_timestamp(row, WHAT, "ended_at_ms")?,
        worst_latency: Duration::from_micros(unsigned(row, WHAT, "worst_latency_us")?),
        p95_latency: Duration::from_micros(unsigned(row, WHAT, "p95_latency_us")?),
        probes_total: unsigned(row, WHAT, "probes_total")?,
        probes_bad: unsigned(row, WHAT, "probes_bad")?,
        revenue_at_risk_eur: get(row, WHAT, "revenue_at_risk_eur")?,
        reason: get(row, WHAT, "reason")?,
    })
}

pub(super) fn backup(row: &AnyRow) -> Result<Backup> {
    const WHAT: &str = "backup";
    Ok(Backup {
        environment: environment(row, WHAT)?,
        id: get(row, WHAT, "id")?,
        completed_at: timestamp(row, WHAT, "completed_at_ms")?,
        ok: get::<i64>(row, WHAT, "ok")? != 0,
    })
}

pub(super) fn migration(row: &AnyRow) -> Result<Migration> {
    const WHAT: &str = "migration";
    let on_breach: String = get(row, WHAT, "on_breach")?;
    Ok(Migration {
        id: get(row, WHAT, "id")?,
        target: get(row, WHAT, "target")?,
        description: get(row, WHAT, "description")?,
        on_breach: match on_breach.as_str() {
            "rollback" => OnBreach::Rollback,
            "pause" => OnBreach::Pause,
            other => return Err(bad(WHAT, "on_breach", format!("unknown value {other:?}"))),
        },
        started_at: timestamp(row, WHAT, "started_at_ms")?,
        finished_at: optional_timestamp(row, WHAT, "finished_at_ms")?,
    })
}

pub(super) fn gate_decision(row: &AnyRow) -> Result<GateDecision> {
    const WHAT: &str = "gate decision";
    let reasons: String = get(row, WHAT, "reasons")?;
    Ok(GateDecision {
        environment: environment(row, WHAT)?,
        go: get::<i64>(row, WHAT, "go")? != 0,
        reasons: parse_reasons(&reasons)?,
        evaluated_at: timestamp(row, WHAT, "evaluated_at_ms")?,
    })
}

pub(super) fn action(row: &AnyRow) -> Result<ActionRecord> {
    const WHAT: &str = "action";
    Ok(ActionRecord {
        id: get(row, WHAT, "id")?,
        at: timestamp(row, WHAT, "at_ms")?,
        target: get(row, WHAT, "target")?,
        action: get(row, WHAT, "action")?,
        outcome: get(row, WHAT, "outcome")?,
        incident: get(row, WHAT, "incident")?,
        detail: get(row, WHAT, "detail")?,
    })
}

pub(super) fn delivery(row: &AnyRow) -> Result<Delivery> {
    const WHAT: &str = "delivery";
    let state: String = get(row, WHAT, "state")?;
    let attempts: i64 = get(row, WHAT, "attempts")?;
    Ok(Delivery {
        key: get(row, WHAT, "key")?,
        channel: get(row, WHAT, "channel")?,
        payload: get(row, WHAT, "payload")?,
        created_at: timestamp(row, WHAT, "created_at_ms")?,
        state: DeliveryState::parse(&state).ok_or_else(|| bad(WHAT, "state", format!("unknown value {state:?}")))?,
        attempts: u32::try_from(attempts).map_err(|_| bad(WHAT, "attempts", format!("out of range {attempts}")))?,
        next_attempt_at: timestamp(row, WHAT, "next_attempt_at_ms")?,
        last_error: get(row, WHAT, "last_error")?,
        done_at: optional_timestamp(row, WHAT, "done_at_ms")?,
    })
}

fn parse_reasons(text: &str) -> Result<Vec<Reason>> {
    let stored: Vec<StoredReason> = serde_json::from_str(text).map_err(|e| bad("gate decision", "reasons", e))?;
    stored
        .into_iter()
        // A stored reason must carry one of SPEC's codes; the gate owns the list.
        .map(|r| match ReasonCode::from_code(&r.code) {
            Some(code) => Ok(Reason { code: code.code(), message: r.message }),
            None => Err(bad("gate decision", "reasons", format!("unknown reason code {:?}", r.code))),
        })
        .collect()
}

fn get<'r, T: Decode<'r, Any> + Type<Any>>(row: &'r AnyRow, what: &'static str, column: &str) -> Result<T> {
    row.try_get(column).map_err(|e| bad(what, column, e))
}

fn unsigned(row: &AnyRow, what: &'static str, column: &str) -> Result<u64> {
    let n: i64 = get(row, what, column)?;
    u64::try_from(n).map_err(|_| bad(what, column, format!("negative value {n}")))
}

fn timestamp(row: &AnyRow, what: &'static str, column: &str) -> Result<Timestamp> {
    let ms: i64 = get(row, what, column)?;
    Timestamp::from_millisecond(ms).map_err(|e| bad(what, column, e))
}

fn optional_timestamp(row: &AnyRow, what: &'static str, column: &str) -> Result<Option<Timestamp>> {
    let ms: Option<i64> = get(row, what, column)?;
    ms.map(|ms| Timestamp::from_millisecond(ms).map_err(|e| bad(what, column, e))).transpose()
}

fn environment(row: &AnyRow, what: &'static str) -> Result<Environment> {
    let name: String = get(row, what, "environment")?;
    Environment::parse(&name).ok_or_else(|| bad(what, "environment", format!("unknown environment {name:?}")))
}

fn bad(what: &'static str, column: &str, detail: impl std::fmt::Display) -> Error {
    Error::BadRow { what, detail: format!("{column}: {detail}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_round_trip_through_json() {
        let reasons = vec![
            Reason { code: "backup_stale", message: "last prod backup 3h ago".into() },
            Reason { code: "data_stale", message: "no result for payments-health".into() },
        ];
        let text = reasons_json(&reasons).unwrap();
        assert_eq!(parse_reasons(&text).unwrap(), reasons);
    }

    #[test]
    fn an_unknown_reason_code_is_a_bad_row_not_a_panic() {
        let err = parse_reasons(r#"[{"code":"made_up","message":"?"}]"#).unwrap_err();
        assert_eq!(err.to_string(), "storage holds a bad gate decision row: reasons: unknown reason code \"made_up\"");
    }

    #[test]
    fn values_too_large_for_bigint_saturate() {
        assert_eq!(count(u64::MAX), i64::MAX);
        assert_eq!(micros(Duration::MAX), i64::MAX);
        assert_eq!(micros(Duration::from_millis(1500)), 1_500_000);
        assert_eq!(flag(true), 1);
    }
}
