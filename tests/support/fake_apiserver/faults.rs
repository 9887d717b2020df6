//! The request log and fault injection, applied to every request before it reaches the API.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::status::ApiError;

/// Bodies above this are refused, so a runaway client fails loudly.
const MAX_BODY: usize = 16 * 1024 * 1024;

/// One request as the client sent it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    /// The raw (still percent-encoded) query string.
    pub query: Option<String>,
    pub content_type: Option<String>,
    /// The JSON body; `Null` when empty, a JSON string when the body is not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// One decoded query parameter.
    pub fn param(&self, name: &str) -> Option<String> {
        let query = self.query.as_deref()?;
        url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
    }

    /// Whether this is a watch request (`?watch=true`).
    pub fn is_watch(&self) -> bool {
        matches!(self.param("watch").as_deref(), Some("true" | "1"))
    }
}

/// Which requests a fault applies to; every field set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Matcher {
    method: Option<String>,
    path: Option<String>,
    path_prefix: Option<String>,
    query_contains: Option<String>,
}

impl Matcher {
    pub fn any() -> Self {
        Self::default()
    }

    /// `Matcher::method("PATCH")`.
    pub fn method(method: &str) -> Self {
        Self { method: Some(method.to_ascii_uppercase()), ..Self::default() }
    }

    /// The exact path, without the query.
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_owned());
        self
    }

    /// A substring of the raw query, such as `watch=true`.
    pub fn query_contains(mut self, text: &str) -> Self {
        self.query_contains = Some(text.to_owned());
        self
    }

    pub fn matches(&self, r: &RecordedRequest) -> bool {
        self.method.as_ref().is_none_or(|m| *m == r.method)
            && self.path.as_ref().is_none_or(|p| *p == r.path)
            && self.path_prefix.as_ref().is_none_or(|p| r.path.starts_with(p.as_str()))
            && self.query_contains.as_ref().is_none_or(|q| r.query.as_deref().unwrap_or("").contains(q.as_str()))
    }
}

#[derive(Clone, Copy, Debug)]
enum Action {
    Fail(u16),
    Delay(Duration),
}

#[derive(Debug)]
struct Fault {
    remaining: usize,
    matcher: Matcher,
    action: Action,
}

/// Shared by the handle and the middleware.
#[derive(Default)]
pub struct Faults {
    log: Mutex<Vec<RecordedRequest>>,
    faults: Mutex<Vec<Fault>>,
}

impl Faults {
    pub fn requests(&self) -> Vec<RecordedRequest> {
        lock(&self.log).clone()
    }

    pub fn clear_requests(&self) {
        lock(&self.log).clear();
    }

    pub fn fail_next(&self, n: usize, matcher: Matcher, code: u16) {
        lock(&self.faults).push(Fault { remaining: n, matcher, action: Action::Fail(code) });
    }

    pub fn delay_next(&self, n: usize, matcher: Matcher, delay: Duration) {
        lock(&self.faults).push(Fault { remaining: n, matcher, action: Action::Delay(delay) });
    }

    /// Faults armed but not yet used up.
    pub fn pending(&self) -> usize {
        lock(&self.faults).iter().map(|f| f.remaining).sum()
    }

    /// Uses up one shot of each fault that matches: every delay applies, the first failure answers.
    fn take(&self, request: &RecordedRequest) -> (Duration, Option<u16>) {
        let mut faults = lock(&self.faults);
        let (mut delay, mut fail) = (Duration::ZERO, None);
        for fault in faults.iter_mut().filter(|f| f.remaining > 0 && f.matcher.matches(request)) {
            match fault.action {
                Action::Delay(d) => delay += d,
                Action::Fail(_) if fail.is_some() => continue,
                Action::Fail(code) => fail = Some(code),
            }
            fault.remaining -= 1;
        }
        faults.retain(|f| f.remaining > 0);
        (delay, fail)
    }
}

/// Records the request, then applies any matching delay and failure before the API sees it.
pub async fn record_and_inject(State(faults): State<Arc<Faults>>, request: Request, next: Next) -> Response {
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::new(413, "RequestEntityTooLarge", "request body too large").into_response();
    };
    let recorded = RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        query: parts.uri.query().map(str::to_owned),
        content_type: parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).map(str::to_owned),
        body: body_value(&bytes),
    };
    let (delay, fail) = faults.take(&recorded);
    lock(&faults.log).push(recorded);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    if let Some(code) = fail {
        return ApiError::injected(code).into_response();
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

fn body_value(bytes: &[u8]) -> Value {
    if bytes.is_empty() {
        return Value::Null;
    }
    serde_json::from_slice(bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned()))
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}
