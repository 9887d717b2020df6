//! The request log and fault injection, applied to every request before it reaches the API.
//!
//! Faults: the next N matching requests failed with a status or delayed; a flapping API (`Flap`: a share of the
//! matching requests answered 5xx/429, another share held past the client's timeout, until stopped); one request
//! held before or after it is applied until the test releases it (`Hold`), so a client can be stopped exactly
//! there. Held requests run in their own task: what happens to one is the test's choice (applied, or dropped), not
//! a side effect of the client's connection going away. Writes the API actually applied (answered 2xx) are logged
//! apart from the requests, so tests count mutations, not attempts.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::{oneshot, watch};

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
    content_type: Option<String>,
    watches: Option<bool>,
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

    /// The media type, without parameters (`application/json-patch+json`).
    pub fn content_type(mut self, media: &str) -> Self {
        self.content_type = Some(media.to_owned());
        self
    }

    /// Watch requests only (`true`) or everything but them (`false`).
    pub fn watches(mut self, watches: bool) -> Self {
        self.watches = Some(watches);
        self
    }

    pub fn matches(&self, r: &RecordedRequest) -> bool {
        let media = r.content_type.as_deref().unwrap_or("").split(';').next().unwrap_or("").trim();
        self.content_type.as_ref().is_none_or(|c| c == media)
            && self.watches.is_none_or(|w| w == r.is_watch())
            && self.method.as_ref().is_none_or(|m| *m == r.method)
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
    applied: Mutex<Vec<RecordedRequest>>,
    holds: Mutex<Vec<(Matcher, Arc<Hold>)>>,
    flap: Mutex<Option<Flap>>,
    /// Drives the flapping's choices: a fixed sequence, so a run can be replayed.
    dice: AtomicU64,
}

/// A flapping API: of the matching requests, `fail` (a share) answer one of `codes` in turn, and `hang` (a share)
/// are held `hang_for` before being served as usual (so a client that gave up may still see its write applied).
#[derive(Clone, Debug)]
pub struct Flap {
    pub matcher: Matcher,
    pub fail: f64,
    pub codes: Vec<u16>,
    pub hang: f64,
    pub hang_for: Duration,
}

/// Where a held request waits: before the API sees it, or after it was applied (its answer held back).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    BeforeApplying,
    AfterApplying,
}

/// What the test does with a request held before it was applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Release {
    Apply,
    Discard,
}

/// One request held until the test releases it; see [`Faults::hold_next`].
pub struct Hold {
    stage: Stage,
    arrived: watch::Sender<Option<RecordedRequest>>,
    release: watch::Sender<Option<Release>>,
}

impl Hold {
    /// The request, once one is held (after it was applied, for `AfterApplying`).
    pub fn held(&self) -> Option<RecordedRequest> {
        self.arrived.borrow().clone()
    }

    /// Waits until a request is held, up to `within`; panics past it.
    pub async fn arrived(&self, within: Duration) -> RecordedRequest {
        let mut rx = self.arrived.subscribe();
        let got = tokio::time::timeout(within, rx.wait_for(Option::is_some)).await;
        let got = got.unwrap_or_else(|_| panic!("no request was held within {within:?}"));
        got.expect("the hold is alive").clone().expect("held")
    }

    /// Lets it go: applied then answered (before), or answered (after).
    pub fn release(&self) {
        self.release.send_replace(Some(Release::Apply));
    }

    /// Drops it: a request held before it was applied is never applied (answered 503 if anyone still listens);
    /// one held after is answered as `release` does.
    pub fn discard(&self) {
        self.release.send_replace(Some(Release::Discard));
    }

    async fn released(&self) -> Release {
        let mut rx = self.release.subscribe();
        let r = rx.wait_for(Option::is_some).await.map(|r| *r);
        r.ok().flatten().unwrap_or(Release::Discard)
    }
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

    /// The next request that matches is held at `stage` until the returned handle releases or discards it.
    pub fn hold_next(&self, matcher: Matcher, stage: Stage) -> Arc<Hold> {
        let hold = Arc::new(Hold { stage, arrived: watch::Sender::new(None), release: watch::Sender::new(None) });
        lock(&self.holds).push((matcher, hold.clone()));
        hold
    }

    /// From now on until `stop_flapping`, the requests `flap.matcher` matches flap.
    pub fn flap(&self, flap: Flap) {
        *lock(&self.flap) = Some(flap);
    }

    pub fn stop_flapping(&self) {
        *lock(&self.flap) = None;
    }

    /// The writes the API applied (answered 2xx), in order.
    pub fn applied(&self) -> Vec<RecordedRequest> {
        lock(&self.applied).clone()
    }

    fn take_hold(&self, request: &RecordedRequest) -> Option<Arc<Hold>> {
        let mut holds = lock(&self.holds);
        let i = holds.iter().position(|(m, _)| m.matches(request))?;
        Some(holds.remove(i).1)
    }

    /// What the flapping does to this request: a status to answer, a hang, or nothing.
    fn roll(&self, request: &RecordedRequest) -> (Option<u16>, Duration) {
        let flap = lock(&self.flap);
        let Some(f) = flap.as_ref().filter(|f| f.matcher.matches(request)) else { return (None, Duration::ZERO) };
        let n = self.dice.fetch_add(1, Ordering::SeqCst);
        // A fixed, well-spread sequence in [0, 1) (the golden ratio's fractional multiples).
        let x = (n as f64 * 0.618_033_988_749_895).fract();
        if x < f.fail && !f.codes.is_empty() {
            return (Some(f.codes[n as usize % f.codes.len()]), Duration::ZERO);
        }
        if x < f.fail + f.hang {
            return (None, f.hang_for);
        }
        (None, Duration::ZERO)
    }

    fn note_applied(&self, request: &RecordedRequest, response: &Response) {
        if request.method != "GET" && response.status().is_success() {
            lock(&self.applied).push(request.clone());
        }
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
    let (flap_fail, hang) = if fail.is_none() { faults.roll(&recorded) } else { (None, Duration::ZERO) };
    let hold = faults.take_hold(&recorded);
    lock(&faults.log).push(recorded.clone());
    if !(delay + hang).is_zero() {
        tokio::time::sleep(delay + hang).await;
    }
    if let Some(code) = fail.or(flap_fail) {
        return ApiError::injected(code).into_response();
    }
    let request = Request::from_parts(parts, Body::from(bytes));
    let Some(hold) = hold else {
        let response = next.run(request).await;
        faults.note_applied(&recorded, &response);
        return response;
    };
    // In a task of its own: the held request's fate is the test's, whatever becomes of the client's connection.
    let (tx, rx) = oneshot::channel();
    tokio::spawn(async move {
        let response = match hold.stage {
            Stage::BeforeApplying => {
                hold.arrived.send_replace(Some(recorded.clone()));
                match hold.released().await {
                    Release::Apply => {
                        let response = next.run(request).await;
                        faults.note_applied(&recorded, &response);
                        response
                    }
                    Release::Discard => ApiError::injected(503).into_response(),
                }
            }
            Stage::AfterApplying => {
                let response = next.run(request).await;
                faults.note_applied(&recorded, &response);
                hold.arrived.send_replace(Some(recorded.clone()));
                hold.released().await;
                response
            }
        };
        let _ = tx.send(response);
    });
    rx.await.unwrap_or_else(|_| ApiError::injected(503).into_response())
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

/// The fault handles of the server, next to `fail_next` and `delay_next`.
impl super::FakeApiServer {
    /// The next request that matches is held before the API sees it, until the returned handle releases it
    /// (applied, then answered) or discards it (never applied).
    pub fn hold_next_before_applying(&self, matcher: Matcher) -> Arc<Hold> {
        self.shared.faults.hold_next(matcher, Stage::BeforeApplying)
    }

    /// The next request that matches is applied at once, and its answer held until the returned handle releases it.
    pub fn hold_next_after_applying(&self, matcher: Matcher) -> Arc<Hold> {
        self.shared.faults.hold_next(matcher, Stage::AfterApplying)
    }

    /// Until [`FakeApiServer::stop_flapping`], of the requests `matcher` matches, a share `fail` answer one of
    /// `codes` in turn and a share `hang` are held `hang_for` before being served as usual.
    pub fn flap(&self, matcher: Matcher, fail: f64, codes: &[u16], hang: f64, hang_for: Duration) {
        self.shared.faults.flap(Flap { matcher, fail, codes: codes.to_vec(), hang, hang_for });
    }

    pub fn stop_flapping(&self) {
        self.shared.faults.stop_flapping();
    }

    /// The writes the API applied (answered 2xx), in order: mutations, not attempts.
    pub fn applied_writes(&self) -> Vec<RecordedRequest> {
        self.shared.faults.applied()
    }
}
