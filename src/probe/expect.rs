//! Checks a response body against a check's expectations: `body_contains`
//! and JSON Pointer (RFC 6901) assertions. Every failure says what was found
//! and what was expected; a body that is not JSON is a failure, not a panic.
//!
//! Pure: `no_drop` reads its baselines through a lookup and hands back the
//! first values it saw; `baseline.rs` keeps the state.

use serde_json::Value;

use crate::config::{Expect, JsonAssertion, JsonOp};

/// Where one `no_drop` path stands for the check being judged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Baseline {
    /// Not armed: the value only has to be a number.
    Unarmed,
    /// Armed, no baseline yet: this value becomes it if the body passes.
    Pending,
    /// Armed at this baseline: a lower value fails.
    At(f64),
}

/// Values seen on `no_drop` paths that had no baseline yet: (path, value).
pub type Firsts<'a> = Vec<(&'a str, f64)>;

/// `Ok` when the body meets every expectation, else the first reason it does
/// not. `baseline` says where each `no_drop` path stands; on `Ok`, the values
/// of the `Pending` ones come back, to be recorded as their baselines.
pub fn evaluate<'a>(
    expect: &'a Expect,
    body: &[u8],
    baseline: impl Fn(&str) -> Baseline,
) -> Result<Firsts<'a>, String> {
    if let Some(needle) = &expect.body_contains
        && !String::from_utf8_lossy(body).contains(needle.as_str())
    {
        {
            return Err(format!("body does not contain {}", show_str(needle)));
        }
    }
    let mut firsts = Vec::new();
    if expect.json.is_empty() {
        return Ok(firsts);
    }
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| format!("body is not JSON ({e}), so {} cannot be checked", expect.json[0].path_label()))?;
    for a in &expect.json {
        assertion(a, &root, &baseline, &mut firsts)?;
    }
    Ok(firsts)
}

impl JsonAssertion {
    fn path_label(&self) -> &str {
        if self.path.is_empty() { "the document" } else { &self.path }
    }
}

fn assertion<'a>(
    a: &'a JsonAssertion,
    root: &Value,
    baseline: &impl Fn(&str) -> Baseline,
    firsts: &mut Firsts<'a>,
) -> Result<(), String> {
    let found = root.pointer(&a.path);
    let label = a.path_label();
    for op in &a.ops {
        match (op, found) {
            (JsonOp::Exists(true), None) => return Err(format!("{label} is missing")),
            (JsonOp::Exists(false), Some(v)) => return Err(format!("{label} is {} but should not exist", show(v))),
            (JsonOp::Exists(_), _) => {}
            (_, None) => return Err(format!("{label} is missing")),
            (JsonOp::NoDrop, Some(v)) => {
                if let Some(first) = no_drop(v, label, baseline(&a.path))? {
                    firsts.push((&a.path, first));
                }
            }
            (op, Some(v)) => check_op(op, v, label)?,
        }
    }
    Ok(())
}

/// A number never below its baseline; `Some(value)` when it is the first seen while armed.
fn no_drop(v: &Value, label: &str, baseline: Baseline) -> Result<Option<f64>, String> {
    let n = number(v, label)?;
    match baseline {
        Baseline::Unarmed => Ok(None),
        Baseline::Pending => Ok(Some(n)),
        // f64's Display prints 1342.0 as 1342, like the JSON it came from.
        Baseline::At(base) if n < base => Err(format!("{label} dropped while armed: {base} → {n}")),
        Baseline::At(_) => Ok(None),
    }
}

fn check_op(op: &JsonOp, v: &Value, label: &str) -> Result<(), String> {
    match op {
        JsonOp::Equals(want) if !same(v, want) => Err(format!("{label} is {}, expected {}", show(v), show(want))),
        JsonOp::NotEquals(bad) if same(v, bad) => Err(format!("{label} is {}, which it must not be", show(v))),
        JsonOp::Length(want) => {
            let n = count(v)
                .ok_or_else(|| format!("{label} is {}, which has no length (expected {want} items)", kind(v)))?;
            if n == *want { Ok(()) } else { Err(format!("{label} has {n} items, expected {want}")) }
        }
        JsonOp::Min(min) => {
            let n = number(v, label)?;
            if n >= *min { Ok(()) } else { Err(format!("{label} is {}, below the minimum {}", show(v), min)) }
        }
        JsonOp::Max(max) => {
            let n = number(v, label)?;
            if n <= *max { Ok(()) } else { Err(format!("{label} is {}, above the maximum {}", show(v), max)) }
        }
        JsonOp::Matches(re) => {
            let text = match v {
                Value::String(s) => s.clone(),
                Value::Number(_) | Value::Bool(_) => v.to_string(),
                _ => return Err(format!("{label} is {}, expected text matching /{}/", kind(v), re.as_str())),
            };
            if re.is_match(&text) {
                Ok(())
            } else {
                Err(format!("{label} is {}, which does not match /{}/", show(v), re.as_str()))
            }
        }
        // Judged by `no_drop`, which knows the baselines.
        JsonOp::Equals(_) | JsonOp::NotEquals(_) | JsonOp::Exists(_) | JsonOp::NoDrop => Ok(()),
    }
}

/// JSON equality where 230 and 230.0 are the same number.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

fn count(v: &Value) -> Option<u64> {
    let n = match v {
        Value::Array(a) => a.len(),
        Value::Object(o) => o.len(),
        Value::String(s) => s.chars().count(),
        _ => return None,
    };
    u64::try_from(n).ok()
}

fn number(v: &Value, label: &str) -> Result<f64, String> {
    v.as_f64().ok_or_else(|| format!("{label} is {}, expected a number", kind(v)))
}

fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => format!("a boolean ({v})"),
        Value::Number(_) => format!("a number ({v})"),
        Value::String(_) => format!("a string ({})", show(v)),
        Value::Array(a) => format!("an array of {}", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// A value as shown in a reason: JSON text, cut short.
fn show(v: &Value) -> String {
    let text = v.to_string();
    cut(&text)
}

fn show_str(s: &str) -> String {
    cut(&format!("{s:?}"))
}

fn cut(text: &str) -> String {
    const MAX: usize = 80;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
