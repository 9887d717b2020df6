//! Checks a response body against a check's expectations: `body_contains`
//! and JSON Pointer (RFC 6901) assertions. Every failure says what was found
//! and what was expected; a body that is not JSON is a failure, not a panic.

use serde_json::Value;

use crate::config::{Expect, JsonAssertion, JsonOp};

/// `Ok` when the body meets every expectation, else the first reason it does not.
pub fn evaluate(expect: &Expect, body: &[u8]) -> Result<(), String> {
    if let Some(needle) = &expect.body_contains
        && !String::from_utf8_lossy(body).contains(needle.as_str())
    {
        {
            return Err(format!("body does not contain {}", show_str(needle)));
        }
    }
    if expect.json.is_empty() {
        return Ok(());
    }
    let root: Value = serde_json::from_slice(body)
        .map_err(|e| format!("body is not JSON ({e}), so {} cannot be checked", expect.json[0].path_label()))?;
    expect.json.iter().try_for_each(|a| assertion(a, &root))
}

impl JsonAssertion {
    fn path_label(&self) -> &str {
        if self.path.is_empty() { "the document" } else { &self.path }
    }
}

fn assertion(a: &JsonAssertion, root: &Value) -> Result<(), String> {
    let found = root.pointer(&a.path);
    let label = a.path_label();
    for op in &a.ops {
        match (op, found) {
            (JsonOp::Exists(true), None) => return Err(format!("{label} is missing")),
            (JsonOp::Exists(false), Some(v)) => return Err(format!("{label} is {} but should not exist", show(v))),
            (JsonOp::Exists(_), _) => {}
            (_, None) => return Err(format!("{label} is missing")),
            (op, Some(v)) => check_op(op, v, label)?,
        }
    }
    Ok(())
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
        // The baseline comparison belongs to the guard, which knows when it armed.
        JsonOp::NoDrop => number(v, label).map(|_| ()),
        JsonOp::Equals(_) | JsonOp::NotEquals(_) | JsonOp::Exists(_) => Ok(()),
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
