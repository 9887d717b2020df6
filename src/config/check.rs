//! Validates the `checks:` list: names, URLs, timing, headers (with `${VAR}`
//! expansion) and the body expectations.

use std::collections::HashMap;
use std::time::Duration;

use serde_saphyr::Spanned;

use super::error::Problems;
use super::raw::{RawCheck, RawExpect, RawJsonAssertion};
use super::validate::{duration, http_url, name};
use super::{Check, Env, Expect, JsonAssertion, JsonOp, defaults, env};
use crate::units;

pub fn checks(p: &mut Problems, raw: Option<Spanned<Vec<RawCheck>>>, env: &dyn Env) -> Vec<Check> {
    let Some(raw) = raw else {
        p.field("checks", "missing: a guardian needs at least one check");
        return Vec::new();
    };
    if raw.value.is_empty() {
        p.at(&raw, "checks", "empty: a guardian needs at least one check");
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (i, rc) in raw.value.into_iter().enumerate() {
        let path = format!("checks[{i}]");
        if let Some(first) = seen.insert(rc.name.value.clone(), i) {
            p.at(
                &rc.name,
                format!("{path}.name"),
                format!("duplicate check name {:?} (also checks[{first}])", rc.name.value),
            );
        }
        if let Some(c) = check(p, rc, &path, env) {
            out.push(c);
        }
    }
    out
}

fn check(p: &mut Problems, mut rc: RawCheck, path: &str, env: &dyn Env) -> Option<Check> {
    let before = p.0.len();
    name(p, &rc.name, &format!("{path}.name"));
    let url = http_url(p, &rc.url, &format!("{path}.url"));
    let method = method(p, rc.method.as_ref(), path);
    let headers = headers(p, rc.headers.take().unwrap_or_default(), path, env);
    let (interval, budget, timeout) = timing(p, &rc, path);
    let max_body = match &rc.max_body {
        None => Some(defaults::MAX_BODY),
        Some(raw) => match units::parse_size(&raw.value) {
            Ok(0) => {
                p.at(raw, format!("{path}.max_body"), "must be larger than 0");
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                p.at(raw, format!("{path}.max_body"), e);
                None
            }
        },
    };
    let revenue_share = revenue_share(p, rc.revenue_share.as_ref(), url.as_ref(), path);
    let expect = expect(p, rc.expect, path);
    if p.0.len() > before {
        return None;
    }
    Some(Check {
        name: rc.name.value,
        url: url?,
        method: method?,
        headers,
        interval: interval?,
        timeout: timeout?,
        budget: budget?,
        max_body: max_body?,
        follow_redirects: rc.follow_redirects.is_some_and(|f| f.value),
        revenue_share,
        expect,
    })
}

/// Revenue and payments endpoints carry all of the revenue by default; any
/// other check carries none unless its share is set.
fn revenue_share(p: &mut Problems, raw: Option<&Spanned<f64>>, url: Option<&url::Url>, path: &str) -> f64 {
    match raw {
        Some(r) if (0.0..=1.0).contains(&r.value) => r.value,
        Some(r) => {
            p.at(r, format!("{path}.revenue_share"), format!("{} must be between 0 and 1", r.value));
            0.0
        }
        None => {
            let carries = url.is_some_and(|u| defaults::REVENUE_PATHS.iter().any(|k| u.path().starts_with(k)));
            if carries { 1.0 } else { 0.0 }
        }
    }
}

fn method(p: &mut Problems, raw: Option<&Spanned<String>>, path: &str) -> Option<http::Method> {
    let Some(raw) = raw else { return Some(http::Method::GET) };
    const KNOWN: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
    if !KNOWN.contains(&raw.value.as_str()) {
        p.at(raw, format!("{path}.method"), format!("{:?} is not one of {}", raw.value, KNOWN.join(", ")));
        return None;
    }
    http::Method::from_bytes(raw.value.as_bytes()).ok()
}

fn headers(
    p: &mut Problems,
    raw: std::collections::BTreeMap<String, Spanned<String>>,
    path: &str,
    env: &dyn Env,
) -> Vec<(http::HeaderName, http::HeaderValue)> {
    let mut out: Vec<(http::HeaderName, http::HeaderValue)> = Vec::new();
    for (key, value) in raw {
        let field = format!("{path}.headers.{key}");
        let Ok(name) = http::HeaderName::from_bytes(key.as_bytes()) else {
            p.at(&value, field, format!("{key:?} is not a valid header name"));
            continue;
        };
        if out.iter().any(|(n, _)| *n == name) {
            p.at(&value, field, format!("{key:?} is set twice (header names ignore case)"));
            continue;
        }
        // The expanded value is a secret: errors name the variable only, and
        // the header is marked sensitive so its Debug form hides it too.
        match env::expand(&value.value, env).map(|v| http::HeaderValue::from_str(&v)) {
            Ok(Ok(mut v)) => {
                v.set_sensitive(true);
                out.push((name, v));
            }
            Ok(Err(_)) => p.at(&value, field, "value has characters a header cannot carry (value not shown)"),
            Err(e) => p.at(&value, field, e),
        }
    }
    out
}

fn timing(p: &mut Problems, rc: &RawCheck, path: &str) -> (Option<Duration>, Option<Duration>, Option<Duration>) {
    let interval = match &rc.interval {
        None => Some(defaults::INTERVAL),
        Some(raw) => bounded(p, raw, &format!("{path}.interval"), defaults::MIN_INTERVAL, defaults::MAX_INTERVAL),
    };
    let budget = bounded(p, &rc.budget, &format!("{path}.budget"), Duration::ZERO, defaults::MAX_TIMEOUT);
    let timeout = match (&rc.timeout, budget) {
        (Some(raw), _) => bounded(p, raw, &format!("{path}.timeout"), Duration::ZERO, defaults::MAX_TIMEOUT),
        (None, Some(b)) => Some(b.saturating_mul(defaults::TIMEOUT_BUDGET_FACTOR).max(defaults::TIMEOUT_FLOOR)),
        (None, None) => None,
    };
    if let (Some(b), Some(t), Some(raw_t)) = (budget, timeout, &rc.timeout)
        && b > t
    {
        let line = raw_t.referenced.line();
        let msg = format!(
            "budget {} is above timeout {} (line {line}): a slow answer could never be measured",
            rc.budget.value, raw_t.value
        );
        p.at(&rc.budget, format!("{path}.budget"), msg);
    }
    (interval, budget, timeout)
}

/// A duration within `[min, max]`: beyond these a value is a typo, and the
/// scheduler's timers have limits of their own.
fn bounded(p: &mut Problems, raw: &Spanned<String>, path: &str, min: Duration, max: Duration) -> Option<Duration> {
    let d = duration(p, raw, path)?;
    let fmt = units::format_duration;
    if d < min {
        p.at(raw, path, format!("{} is below the {} minimum", raw.value, fmt(min)));
        return None;
    }
    if d > max {
        p.at(raw, path, format!("{} is above the {} maximum", raw.value, fmt(max)));
        return None;
    }
    Some(d)
}

fn expect(p: &mut Problems, raw: Option<RawExpect>, path: &str) -> Expect {
    let Some(raw) = raw else {
        return Expect { status: defaults::STATUS.to_vec(), json: Vec::new(), body_contains: None };
    };
    let status = match raw.status {
        None => defaults::STATUS.to_vec(),
        Some(list) => {
            if list.value.is_empty() {
                p.at(&list, format!("{path}.expect.status"), "empty: list the statuses that count as good, e.g. [200]");
            }
            for s in list.value.iter().filter(|s| !(100..=599).contains(&s.value)) {
                p.at(s, format!("{path}.expect.status"), format!("{} is not an HTTP status (100–599)", s.value));
            }
            list.value.into_iter().map(|s| s.value).collect()
        }
    };
    let json = raw
        .json
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .filter_map(|(i, a)| assertion(p, a, &format!("{path}.expect.json[{i}]")))
        .collect();
    let body_contains = raw.body_contains.map(|b| {
        if b.value.is_empty() {
            p.at(&b, format!("{path}.expect.body_contains"), "empty: it would match any body");
        }
        b.value
    });
    Expect { status, json, body_contains }
}

fn assertion(p: &mut Problems, a: RawJsonAssertion, path: &str) -> Option<JsonAssertion> {
    let before = p.0.len();
    let pointer = &a.path.value;
    if !pointer.is_empty() && !pointer.starts_with('/') {
        p.at(
            &a.path,
            format!("{path}.path"),
            format!("{pointer:?} is not a JSON Pointer: it must start with / (e.g. /status)"),
        );
    } else if has_bad_escape(pointer) {
        p.at(
            &a.path,
            format!("{path}.path"),
            format!("{pointer:?} is not a JSON Pointer: ~ must be followed by 0 or 1"),
        );
    }
    let mut ops = Vec::new();
    if let Some(v) = a.equals {
        ops.push(JsonOp::Equals(v.value));
    }
    if let Some(v) = a.not_equals {
        ops.push(JsonOp::NotEquals(v.value));
    }
    if let Some(v) = a.length {
        ops.push(JsonOp::Length(v.value));
    }
    // NaN or an infinity would make the check fail every answer, or never.
    for (v, op, make) in [(&a.min, "min", JsonOp::Min as fn(f64) -> JsonOp), (&a.max, "max", JsonOp::Max)] {
        match v {
            Some(v) if !v.value.is_finite() => {
                p.at(v, format!("{path}.{op}"), format!("{op} must be a finite number, not {}", v.value))
            }
            Some(v) => ops.push(make(v.value)),
            None => {}
        }
    }
    if let Some(v) = a.exists {
        ops.push(JsonOp::Exists(v.value));
    }
    if let Some(v) = a.no_drop.filter(|v| v.value) {
        let _ = v;
        ops.push(JsonOp::NoDrop);
    }
    if let Some(raw) = a.matches {
        match regex::Regex::new(&raw.value) {
            Ok(re) => ops.push(JsonOp::Matches(re)),
            Err(e) => p.at(&raw, format!("{path}.matches"), format!("bad regex: {}", one_line(&e.to_string()))),
        }
    }
    if let (Some(min), Some(max)) = (&a.min, &a.max)
        && min.value > max.value
    {
        {
            p.at(min, format!("{path}.min"), format!("min {} is above max {}", min.value, max.value));
        }
    }
    if ops.is_empty() && p.0.len() == before {
        p.at(
            &a.path,
            path.to_string(),
            "no operator: add one of equals, not_equals, length, min, max, exists, matches, no_drop",
        );
    }
    (p.0.len() == before).then(|| JsonAssertion { path: a.path.value, ops })
}

fn has_bad_escape(pointer: &str) -> bool {
    let bytes = pointer.as_bytes();
    bytes.iter().enumerate().any(|(i, b)| *b == b'~' && !matches!(bytes.get(i + 1), Some(b'0' | b'1')))
}

/// Regex errors span several lines with a caret; one line reads better here.
fn one_line(text: &str) -> String {
    text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.chars().all(|c| c == '^')).collect::<Vec<_>>().join(" ")
}
