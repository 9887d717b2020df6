//! Watch streams: newline-delimited `{"type","object"}` events after a resourceVersion, filtered by selectors,
//! ended by `timeoutSeconds`, a client hang-up or [`FakeApiServer::break_watches`](super::FakeApiServer).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc, watch};
use tokio::time::Instant;

use super::resources::Resource;
use super::selectors::Selector;
use super::status::ApiError;
use super::store::{Event, EventType, Store};

/// What a `?watch=true` request asked for.
#[derive(Debug)]
pub struct WatchRequest {
    pub resource: &'static Resource,
    pub namespace: Option<String>,
    /// `None` for unset or "0": start with the current objects.
    pub resource_version: Option<u64>,
    pub labels: Selector,
    pub fields: Selector,
    pub bookmarks: bool,
    pub timeout: Option<Duration>,
}

/// The server-wide levers tests pull on open watches.
#[derive(Clone)]
pub struct WatchSignals {
    pub breaks: watch::Sender<u64>,
    pub bookmarks: watch::Sender<u64>,
    pub open: Arc<AtomicUsize>,
}

/// Counts a watch as open for as long as its task runs.
struct OpenGuard(Arc<AtomicUsize>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl WatchSignals {
    pub fn new() -> Self {
        Self { breaks: watch::channel(0).0, bookmarks: watch::channel(0).0, open: Arc::new(AtomicUsize::new(0)) }
    }
}

/// Answers a watch request: 200 and a stream; a compacted resourceVersion gets a single 410 `ERROR` event, as the
/// real server's watch cache sends, and the client is expected to list again.
pub fn serve(store: &Store, request: WatchRequest, signals: &WatchSignals) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    match store.watch_from(request.resource, request.namespace.as_deref(), request.resource_version) {
        Err(gone) => {
            let _ = tx.try_send(line("ERROR", &gone.to_status()));
        }
        Ok((backlog, live)) => {
            signals.open.fetch_add(1, Ordering::SeqCst);
            let guard = OpenGuard(signals.open.clone());
            let (breaks, bookmarks) = (signals.breaks.subscribe(), signals.bookmarks.subscribe());
            let start = request.resource_version.unwrap_or_else(|| store.resource_version());
            tokio::spawn(async move {
                let _guard = guard;
                run(request, start, backlog, live, (breaks, bookmarks), tx).await;
            });
        }
    }
    let body = Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<_, Infallible>(b), rx))
    }));
    (StatusCode::OK, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn run(
    request: WatchRequest,
    mut last_rv: u64,
    backlog: Vec<Event>,
    mut live: broadcast::Receiver<Event>,
    (mut breaks, mut bookmarks): (watch::Receiver<u64>, watch::Receiver<u64>),
    tx: mpsc::Sender<Bytes>,
) {
    let deadline = request.timeout.map(|t| Instant::now() + t);
    let mut seen = last_rv;
    for event in backlog {
        seen = seen.max(event.rv);
        if !send(&request, &event, &tx).await {
            return;
        }
    }
    last_rv = last_rv.max(seen);
    loop {
        let expired = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            received = live.recv() => match received {
                // Live events overlap the backlog only for the synthetic ADDED start, which carries the newest version.
                Ok(event) if event.rv <= last_rv => {}
                Ok(event) => {
                    last_rv = event.rv;
                    if !send(&request, &event, &tx).await {
                        return;
                    }
                }
                // A watcher that falls behind is cut off, as the real server does; the client resumes or relists.
                Err(_) => return,
            },
            Ok(()) = bookmarks.changed(), if request.bookmarks => {
                let object = json!({
                    "kind": request.resource.kind,
                    "apiVersion": request.resource.api_version(),
                    "metadata": {"resourceVersion": last_rv.to_string()},
                });
                if tx.send(line("BOOKMARK", &object)).await.is_err() {
                    return;
                }
            }
            _ = breaks.changed() => return,
            () = expired => return,
            () = tx.closed() => return,
        }
    }
}

/// Sends `event` as this watch sees it through its namespace and selectors; false once the client is gone.
async fn send(request: &WatchRequest, event: &Event, tx: &mpsc::Sender<Bytes>) -> bool {
    if event.resource != request.resource {
        return true;
    }
    let in_ns = |o: &Value| request.namespace.as_deref().is_none_or(|ns| o["metadata"]["namespace"] == ns);
    let sees = |o: &Value| in_ns(o) && request.labels.matches_labels(o) && request.fields.matches_fields(o);
    let now = sees(&event.object);
    let before = event.previous.as_ref().is_some_and(sees);
    let kind = match (event.kind, before, now) {
        (EventType::Added, _, true) => "ADDED",
        (EventType::Deleted, _, true) => "DELETED",
        (EventType::Modified, true, true) => "MODIFIED",
        (EventType::Modified, false, true) => "ADDED",
        (EventType::Modified, true, false) => "DELETED",
        _ => return true,
    };
    tx.send(line(kind, &event.object)).await.is_ok()
}

fn line(kind: &str, object: &Value) -> Bytes {
    let mut text = json!({"type": kind, "object": object}).to_string();
    text.push('\n');
    Bytes::from(text)
}

/// Parses the watch's `resourceVersion`: unset and "0" mean "start from now with the current state".
pub fn parse_resource_version(value: Option<&str>) -> Result<Option<u64>, ApiError> {
    match value {
        None | Some("" | "0") => Ok(None),
        Some(v) => v.parse().map(Some).map_err(|_| ApiError::bad_request(format!("invalid resource version: {v}"))),
    }
}
