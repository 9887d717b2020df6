//! Owns fault injection: the table of faults shared by the three simulator
//! ports, the validation of a fault set over HTTP, and the decision taken for
//! one request (how long to stall, whether to fail, with which status, which
//! JSON merge patch to apply to a successful body).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The path that matches every business path (never the `/sim/` paths).
pub const ANY_PATH: &str = "*";

/// Status answered when a fault gives only an error rate.
const DEFAULT_FAULT_STATUS: u16 = 500;

/// One injected fault: stall `latency_ms`, then fail with `status` at
/// `error_rate` (or always, when a status is set and the rate is 0); a
/// request that does not fail gets `json` merged into its body.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fault {
    /// A request path matched exactly, or `*` for every business path.
    pub path: String,
    #[serde(default)]
    pub latency_ms: u64,
    #[serde(default)]
    pub status: Option<u16>,
    #[serde(default)]
    pub error_rate: f64,
    /// An RFC 7386 merge patch for the body of a successful answer, so the
    /// business data itself can change (customers 1342 → 1200). Over HTTP it
    /// must be an object; in-process, any other value replaces the whole
    /// body, as RFC 7386 says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<Value>,
}

/// The fault table; clones share it, so one handle drives all three ports.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    table: Arc<RwLock<HashMap<String, Fault>>>,
}

/// What a matched fault does to one request, decided before it is served.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Effect {
    pub latency: Duration,
    /// `Some` when this request must fail with that status.
    pub fail_with: Option<u16>,
    /// Merged into the body when the request does not fail.
    pub patch: Option<Value>,
}

impl Fault {
    /// A fault on `path` that does nothing until given latency or errors.
    pub fn on(path: impl Into<String>) -> Fault {
        Fault { path: path.into(), latency_ms: 0, status: None, error_rate: 0.0, json: None }
    }

    pub fn with_latency_ms(mut self, ms: u64) -> Fault {
        self.latency_ms = ms;
        self
    }

    pub fn with_status(mut self, status: u16) -> Fault {
        self.status = Some(status);
        self
    }

    pub fn with_error_rate(mut self, rate: f64) -> Fault {
        self.error_rate = rate;
        self
    }

    /// Merges `patch` (RFC 7386) into the body of every successful answer.
    pub fn with_json(mut self, patch: Value) -> Fault {
        self.json = Some(patch);
        self
    }

    /// Checks what serde cannot: the path shape, the rate range, the status,
    /// the patch being an object.
    pub fn validate(&self) -> Result<(), String> {
        if self.path != ANY_PATH && !self.path.starts_with('/') {
            return Err(format!("path must start with '/' or be '*', got {:?}", self.path));
        }
        if self.path.starts_with("/sim/") {
            return Err("the /sim/ paths cannot be faulted".to_owned());
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            return Err(format!("error_rate must be within 0..=1, got {}", self.error_rate));
        }
        if let Some(s) = self.status.filter(|s| !(100..=599).contains(s)) {
            return Err(format!("status must be within 100..=599, got {s}"));
        }
        match &self.json {
            Some(patch) if !patch.is_object() => {
                Err(format!("json must be an object (a merge patch merged into the body), got {patch}"))
            }
            _ => Ok(()),
        }
    }

    /// Rolls the dice for one request. A rate outside 0..=1 (possible through
    /// `Faults::set`, which does not validate) acts as clamped.
    fn effect(&self) -> Effect {
        let fails = if self.error_rate > 0.0 { rand::random::<f64>() < self.error_rate } else { self.status.is_some() };
        let status = self.status.filter(|s| (100..=599).contains(s));
        Effect {
            latency: Duration::from_millis(self.latency_ms),
            fail_with: fails.then_some(status.unwrap_or(DEFAULT_FAULT_STATUS)),
            patch: if fails { None } else { self.json.clone() },
        }
    }
}

impl Faults {
    /// Sets a fault, replacing any earlier one for the same path.
    pub fn set(&self, f: Fault) {
        let mut table = self.table.write().unwrap_or_else(PoisonError::into_inner);
        table.insert(f.path.clone(), f);
    }

    /// Removes every fault.
    pub fn clear(&self) {
        self.table.write().unwrap_or_else(PoisonError::into_inner).clear();
    }

    /// Every fault, sorted by path so listings are stable.
    pub fn list(&self) -> Vec<Fault> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<Fault> = table.values().cloned().collect();
        all.sort_by(|a, b| a.path.cmp(&b.path));
        all
    }

    /// The effect on a request to `path`: its exact fault wins over `*`.
    pub(crate) fn effect(&self, path: &str) -> Option<Effect> {
        let table = self.table.read().unwrap_or_else(PoisonError::into_inner);
        if table.is_empty() {
            return None;
        }
        table.get(path).or_else(|| table.get(ANY_PATH)).map(Fault::effect)
    }
}

/// Applies `patch` to `target` as RFC 7386 says: objects merge key by key,
/// recursively; a null removes its key; anything else replaces the target.
pub(crate) fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(changes) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(fields) = target else { return };
    for (key, change) in changes {
        if change.is_null() {
            fields.remove(key);
        } else {
            merge_patch(fields.entry(key.as_str()).or_insert(Value::Null), change);
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_exact_fault_wins_over_the_wildcard() {
        let faults = Faults::default();
        faults.set(Fault::on("*").with_latency_ms(10));
        faults.set(Fault::on("/api/health").with_status(503));
        let exact = faults.effect("/api/health");
        assert_eq!(exact, Some(Effect { latency: Duration::ZERO, fail_with: Some(503), patch: None }));
        let other = faults.effect("/api/domains");
        assert_eq!(other, Some(Effect { latency: Duration::from_millis(10), fail_with: None, patch: None }));
    }

    #[test]
    fn an_error_rate_alone_fails_with_500() {
        let faults = Faults::default();
        faults.set(Fault::on("/x").with_error_rate(1.0));
        assert_eq!(faults.effect("/x").and_then(|e| e.fail_with), Some(500));
    }

    #[test]
    fn setting_a_path_again_replaces_its_fault() {
        let faults = Faults::default();
        faults.set(Fault::on("/x").with_status(502));
        faults.set(Fault::on("/x").with_latency_ms(5));
        assert_eq!(faults.list(), vec![Fault::on("/x").with_latency_ms(5)]);
    }

    #[test]
    fn validation_rejects_bad_rates_statuses_and_paths() {
        assert!(Fault::on("/x").with_error_rate(1.5).validate().is_err());
        assert!(Fault::on("/x").with_error_rate(f64::NAN).validate().is_err());
        assert!(Fault::on("/x").with_status(42).validate().is_err());
        assert!(Fault::on("api").validate().is_err());
        assert!(Fault::on("/sim/faults").validate().is_err());
        assert!(Fault::on("*").with_error_rate(0.5).with_status(503).validate().is_ok());
    }

    #[test]
    fn validation_rejects_a_patch_that_is_not_an_object() {
        for patch in [json!(1200), json!("x"), json!([1]), json!(true)] {
            let err = Fault::on("/x").with_json(patch.clone()).validate().unwrap_err();
            assert!(err.starts_with("json must be an object"), "{patch}: {err}");
        }
        assert!(Fault::on("/x").with_json(json!({})).validate().is_ok());
    }

    #[test]
    fn a_failing_request_carries_no_patch() {
        let faults = Faults::default();
        faults.set(Fault::on("/x").with_status(503).with_json(json!({"count": 1})));
        faults.set(Fault::on("/y").with_latency_ms(5).with_json(json!({"count": 1})));
        assert_eq!(faults.effect("/x").and_then(|e| e.patch), None);
        assert_eq!(faults.effect("/y").and_then(|e| e.patch), Some(json!({"count": 1})));
    }

    #[test]
    fn merge_patch_follows_rfc_7386() {
        // Rows from RFC 7386 appendix A: target, patch, result.
        let rows = [
            ("replace", json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            ("add", json!({"a": "b"}), json!({"b": "c"}), json!({"a": "b", "b": "c"})),
            ("remove", json!({"a": "b", "b": "c"}), json!({"a": null}), json!({"b": "c"})),
            ("array replaces", json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            ("into array", json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            ("nested", json!({"a": {"b": "c"}}), json!({"a": {"b": "d", "c": null}}), json!({"a": {"b": "d"}})),
            ("arrays whole", json!({"a": [{"b": "c"}]}), json!({"a": [1]}), json!({"a": [1]})),
            ("non-object patch", json!({"a": "foo"}), json!(["c"]), json!(["c"])),
            ("null patch", json!({"a": "foo"}), json!(null), json!(null)),
            ("into non-object", json!([1, 2]), json!({"a": "b", "c": null}), json!({"a": "b"})),
            ("deep new", json!({}), json!({"a": {"bb": {"ccc": null}}}), json!({"a": {"bb": {}}})),
        ];
        for (name, mut target, patch, want) in rows {
            merge_patch(&mut target, &patch);
            assert_eq!(target, want, "{name}");
        }
    }
}
