//! Owns what the guard knows of the Kubernetes API's health: whether the
//! API answers the guard's calls now, so `/readyz` and
//! `guardian_kubernetes_up` can say when the guard cannot pause or roll
//! back, and a count of the calls that failed.
//!
//! What counts: every call the guard makes (reads and patches of the
//! targets, the ReplicaSet list, each watch's list and watch requests) and,
//! when nothing else finished for `PROBE_EVERY`, a `GET /version` probe, so
//! a quiet cluster is still looked at. An answer is any HTTP answer but
//! 429 and 5xx (a 404 or a 409 is the API working). A failure is a 5xx
//! (`server_error`), a 429 (`throttled`), a call given up before any answer
//! (`timeout`: the caller's deadline passed) or no connection at all
//! (`unreachable`). The Lease's own calls are not seen here; leadership has
//! `guardian_leader`.
//!
//! The rule: the API is down once `DOWN_AFTER_FAILURES` calls in a row have
//! failed *and* nothing was answered for `DOWN_AFTER`, and up again at the
//! first answer; before its first answer it is down ("no answer yet"). Both
//! conditions, so a flapping API that still answers some calls (the guard
//! retries until it acts) stays up, and an idle one is not taken for dead.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Consecutive failed calls before the API may count as down.
pub const DOWN_AFTER_FAILURES: u32 = 3;
/// How long without any answer before the API counts as down.
pub const DOWN_AFTER: Duration = Duration::from_secs(10);
/// A probe is sent when no call finished for this long.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// A probe without an answer within this counts as failed (`timeout`).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// Which kind of call failed: the `call` label of the failure counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Get,
    List,
    Patch,
    Watch,
    Probe,
}

impl Call {
    pub const ALL: [Call; 5] = [Call::Get, Call::List, Call::Patch, Call::Watch, Call::Probe];

    pub fn code(self) -> &'static str {
        match self {
            Self::Get => "get",
            Self::List => "list",
            Self::Patch => "patch",
            Self::Watch => "watch",
            Self::Probe => "probe",
        }
    }
}

/// Why a call failed: the `reason` label of the failure counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    ServerError,
    Throttled,
    Timeout,
    Unreachable,
}

impl Failure {
    pub const ALL: [Failure; 4] = [Failure::ServerError, Failure::Throttled, Failure::Timeout, Failure::Unreachable];

    pub fn code(self) -> &'static str {
        match self {
            Self::ServerError => "server_error",
            Self::Throttled => "throttled",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
        }
    }
}

/// Told of every failed call and of the health after each probe round (the metrics).
pub trait ApiObserver: Send + Sync + 'static {
    fn failed(&self, call: Call, failure: Failure);
    fn up(&self, up: bool);
}

/// The API's health as `/readyz` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Health {
    pub up: bool,
    /// Why it is down, in words; `None` while up.
    pub why: Option<String>,
}

pub struct ApiHealth {
    inner: Mutex<Inner>,
    observer: Arc<dyn ApiObserver>,
}

#[derive(Default)]
struct Inner {
    last_answer: Option<Instant>,
    last_finished: Option<Instant>,
    failed_in_a_row: u32,
    last_error: Option<String>,
}

impl ApiHealth {
    pub fn new(observer: Arc<dyn ApiObserver>) -> Self {
        Self { inner: Mutex::default(), observer }
    }

    /// The API answered a call.
    pub fn answered(&self) {
        let now = Instant::now();
        let mut inner = lock(&self.inner);
        inner.last_answer = Some(now);
        inner.last_finished = Some(now);
        inner.failed_in_a_row = 0;
    }

    /// A call failed, or was given up before an answer.
    pub fn failed(&self, call: Call, failure: Failure, detail: &str) {
        {
            let mut inner = lock(&self.inner);
            inner.last_finished = Some(Instant::now());
            inner.failed_in_a_row = inner.failed_in_a_row.saturating_add(1);
            inner.last_error = Some(format!("{} {}: {detail}", call.code(), failure.code()));
        }
        self.observer.failed(call, failure);
    }

    /// Records how a call ended: an answer, or a failure of this kind.
    pub fn observe<T>(&self, call: Call, result: &Result<T, kube::Error>) {
        match result.as_ref().err().and_then(classify) {
            None => self.answered(),
            Some(failure) => {
                let detail = result.as_ref().err().map(ToString::to_string).unwrap_or_default();
                self.failed(call, failure, &detail);
            }
        }
    }

    /// Runs `call`, recording how it ended; dropped before it ends (its
    /// caller's deadline passed), it counts as a `timeout`.
    pub async fn track<T>(
        &self,
        call: Call,
        fut: impl Future<Output = Result<T, kube::Error>>,
    ) -> Result<T, kube::Error> {
        let mut pending = Pending { health: self, call, done: false };
        let result = fut.await;
        pending.done = true;
        self.observe(call, &result);
        result
    }

    pub fn health(&self) -> Health {
        let inner = lock(&self.inner);
        let Some(last_answer) = inner.last_answer else {
            let why = inner.last_error.as_deref().unwrap_or("no answer yet");
            return Health { up: false, why: Some(format!("no answer yet ({why})")) };
        };
        let silent = last_answer.elapsed();
        if inner.failed_in_a_row >= DOWN_AFTER_FAILURES && silent >= DOWN_AFTER {
            let why = format!(
                "{} calls failed in a row, none answered for {} s; last: {}",
                inner.failed_in_a_row,
                silent.as_secs(),
                inner.last_error.as_deref().unwrap_or("?")
            );
            return Health { up: false, why: Some(why) };
        }
        Health { up: true, why: None }
    }

    /// Probes the API whenever no call finished for `PROBE_EVERY`, and tells
    /// the observer the health every round, until `stop`.
    pub async fn probe_loop(self: Arc<Self>, client: kube::Client, stop: CancellationToken) {
        loop {
            let idle = lock(&self.inner).last_finished.is_none_or(|t| t.elapsed() >= PROBE_EVERY);
            if idle {
                let probe = tokio::time::timeout(PROBE_TIMEOUT, self.track(Call::Probe, client.apiserver_version()));
                tokio::select! {
                    () = stop.cancelled() => return,
                    _ = probe => {}
                }
            }
            self.observer.up(self.health().up);
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(PROBE_EVERY) => {}
            }
        }
    }
}

/// Marks a call given up when dropped before it ended.
struct Pending<'a> {
    health: &'a ApiHealth,
    call: Call,
    done: bool,
}

impl Drop for Pending<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.health.failed(self.call, Failure::Timeout, "given up before the API answered");
        }
    }
}

/// `None` when the API answered (any status but 429 and 5xx).
pub fn classify(e: &kube::Error) -> Option<Failure> {
    match e {
        kube::Error::Api(status) if status.code == 429 => Some(Failure::Throttled),
        kube::Error::Api(status) if status.code >= 500 => Some(Failure::ServerError),
        kube::Error::Api(_) => None,
        _ => Some(Failure::Unreachable),
    }
}

/// For a watcher's error: the failure, or `None` when the API answered
/// (a 410 Gone, a 404).
pub fn classify_watch(e: &kube::runtime::watcher::Error) -> Option<Failure> {
    use kube::runtime::watcher::Error as W;
    match e {
        W::InitialListFailed(e) | W::WatchStartFailed(e) | W::WatchFailed(e) => classify(e),
        W::WatchError(status) if status.code == 429 => Some(Failure::Throttled),
        W::WatchError(status) if status.code >= 500 => Some(Failure::ServerError),
        W::WatchError(_) | W::NoResourceVersion => None,
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Counts(Mutex<Vec<(&'static str, &'static str)>>);

    impl ApiObserver for Counts {
        fn failed(&self, call: Call, failure: Failure) {
            lock(&self.0).push((call.code(), failure.code()));
        }
        fn up(&self, _: bool) {}
    }

    #[tokio::test(start_paused = true)]
    async fn down_only_after_failures_in_a_row_and_a_silence_and_up_at_the_first_answer() {
        let counts = Arc::new(Counts::default());
        let h = ApiHealth::new(counts.clone());
        assert!(!h.health().up, "no answer yet");
        h.answered();
        for _ in 0..5 {
            h.failed(Call::Patch, Failure::ServerError, "500");
        }
        assert!(h.health().up, "failures, but an answer came just now");
        tokio::time::advance(DOWN_AFTER).await;
        let health = h.health();
        assert!(!health.up);
        assert!(health.why.as_deref().is_some_and(|w| w.contains("5 calls failed in a row")), "{health:?}");
        h.answered();
        assert!(h.health().up);
        // Silence without failures is a quiet API, not a dead one.
        tokio::time::advance(DOWN_AFTER * 3).await;
        assert!(h.health().up);
        assert_eq!(lock(&counts.0).len(), 5);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_dropped_before_its_answer_counts_as_a_timeout() {
        let counts = Arc::new(Counts::default());
        let h = ApiHealth::new(counts.clone());
        let never = std::future::pending::<Result<(), kube::Error>>();
        let given_up = tokio::time::timeout(Duration::from_secs(1), h.track(Call::Get, never)).await;
        assert!(given_up.is_err());
        assert_eq!(*lock(&counts.0), [("get", "timeout")]);
    }
}
