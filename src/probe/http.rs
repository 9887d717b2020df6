//! Sends one probe over HTTP (reqwest, rustls) and measures it: time to the
//! response head and to the last body byte, under a hard timeout, reading at
//! most `max_body` bytes so a hostile or broken target cannot exhaust memory.
//! Each probe is a `probe` span (kind client), and carries its W3C
//! `traceparent` when span export is on (see `telemetry`), so the target's
//! own traces join it.

use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::time::Instant;
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::baseline::Baselines;
use super::outcome::{Fetched, Outcome, ProbeResult, judge};
use crate::clock::Clock;
use crate::config::Check;
use crate::units::{format_duration, format_size};

/// Redirects followed when a check opts in; more is a loop.
const MAX_REDIRECTS: usize = 10;

/// Probes checks. Cheap to share: holds two connection pools and the
/// `no_drop` baselines its probes are judged against.
pub struct Prober {
    direct: reqwest::Client,
    following: reqwest::Client,
    clock: Arc<dyn Clock>,
    baselines: Arc<Baselines>,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the HTTP client: {0}")]
pub struct BuildError(#[from] reqwest::Error);

impl Prober {
    pub fn new(clock: Arc<dyn Clock>) -> Result<Self, BuildError> {
        Self::with_builder(clock, |b| b)
    }

    /// `tune` adjusts both clients (tests use it to swap the DNS resolver).
    pub fn with_builder(
        clock: Arc<dyn Clock>,
        tune: impl Fn(reqwest::ClientBuilder) -> reqwest::ClientBuilder,
    ) -> Result<Self, BuildError> {
        let base = || {
            reqwest::Client::builder()
                .user_agent(concat!("guardian/", env!("CARGO_PKG_VERSION")))
                .pool_idle_timeout(Duration::from_secs(30))
                .no_proxy()
        };
        Ok(Self {
            direct: tune(base().redirect(reqwest::redirect::Policy::none())).build()?,
            following: tune(base().redirect(reqwest::redirect::Policy::limited(MAX_REDIRECTS))).build()?,
            clock,
            baselines: Arc::new(Baselines::new()),
        })
    }

    /// The `no_drop` baselines: the guard arms and disarms checks here.
    pub fn baselines(&self) -> &Arc<Baselines> {
        &self.baselines
    }

    /// Probes `check` once. `over_budget` is called once, at the moment the
    /// budget elapses, if the probe is still running then, with its start time.
    pub async fn probe(&self, check: &Check, over_budget: impl FnOnce(jiff::Timestamp)) -> ProbeResult {
        let span = probe_span(check);
        let result = self.measure(check, over_budget).instrument(span.clone()).await;
        if !span.is_disabled() {
            span.record("outcome", result.outcome.code());
            span.record("latency_ms", result.latency.as_millis() as i64);
            if let Some(status) = result.status {
                span.record("http.response.status_code", i64::from(status));
            }
            if result.outcome == Outcome::Failed {
                span.record("otel.status_code", "error");
            }
        }
        result
    }

    async fn measure(&self, check: &Check, over_budget: impl FnOnce(jiff::Timestamp)) -> ProbeResult {
        let started_at = self.clock.now();
        let start = Instant::now();
        let fetch = tokio::time::timeout(check.timeout, self.fetch(check, start));
        tokio::pin!(fetch);
        let mut over_budget_early = false;
        let timed = tokio::select! {
            biased;
            done = &mut fetch => done,
            () = tokio::time::sleep(check.budget) => {
                over_budget_early = true;
                over_budget(started_at);
                fetch.await
            }
        };
        let latency = start.elapsed();
        let fetched = timed.unwrap_or_else(|_| Fetched::Failure {
            ttfb: None,
            status: None,
            reason: format!("no complete answer within the {} timeout", format_duration(check.timeout)),
        });
        let view = self.baselines.view(&check.name);
        let (outcome, reason, firsts) = judge(check, &fetched, latency, |path| view.baseline(path));
        self.baselines.record(&check.name, &view, &firsts);
        let (ttfb, status) = match &fetched {
            Fetched::Answer { status, ttfb, .. } => (Some(*ttfb), Some(*status)),
            Fetched::Failure { ttfb, status, .. } => (*ttfb, *status),
        };
        ProbeResult {
            check: check.name.clone(),
            seq: 0,
            started_at,
            latency,
            ttfb,
            status,
            outcome,
            reason,
            over_budget_early,
        }
    }

    async fn fetch(&self, check: &Check, start: Instant) -> Fetched {
        let client = if check.follow_redirects { &self.following } else { &self.direct };
        let mut request = client.request(check.method.clone(), check.url.clone());
        for (name, value) in &check.headers {
            request = request.header(name, value);
        }
        request = with_trace_context(request);
        let response = match request.send().await {
            Ok(r) => r,
            Err(e) => return Fetched::Failure { ttfb: None, status: None, reason: describe(&e, check) },
        };
        let ttfb = start.elapsed();
        let status = response.status().as_u16();
        let redirect_to =
            response.headers().get(http::header::LOCATION).and_then(|l| l.to_str().ok()).map(shown_location);
        match read_capped(response, check.max_body).await {
            Ok(body) => Fetched::Answer { status, ttfb, body, redirect_to },
            Err(reason) => Fetched::Failure { ttfb: Some(ttfb), status: Some(status), reason },
        }
    }
}

/// The span of one probe; the URL is computed only when someone listens,
/// and never with its password. Header values are never recorded. Numbers
/// are i64: the OpenTelemetry bridge would export a u64 as a string.
fn probe_span(check: &Check) -> tracing::Span {
    let span = tracing::info_span!(
        "probe",
        otel.kind = "client",
        otel.status_code = Empty,
        check = %check.name,
        url = Empty,
        budget_ms = check.budget.as_millis() as i64,
        outcome = Empty,
        latency_ms = Empty,
        http.response.status_code = Empty,
    );
    if !span.is_disabled() {
        span.record("url", crate::config::redact_url(check.url.as_str()));
    }
    span
}

/// Adds the current span's W3C `traceparent` (and `tracestate`). Without
/// span export no propagator is set, and nothing is added.
fn with_trace_context(request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let context = tracing::Span::current().context();
    let mut fields = std::collections::HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&context, &mut fields));
    fields.into_iter().fold(request, |r, (name, value)| r.header(name, value))
}

/// A redirect target as it may be shown: no password, at most 200 characters.
fn shown_location(location: &str) -> String {
    let text = crate::config::redact_url(location);
    match text.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text,
    }
}

/// Reads the body, failing as soon as it is known to exceed `max`.
async fn read_capped(response: reqwest::Response, max: u64) -> Result<bytes::Bytes, String> {
    let too_big = || format!("body is larger than the {} limit", format_size(max));
    if response.content_length().is_some_and(|n| n > max) {
        return Err(format!("{} (Content-Length {})", too_big(), response.content_length().unwrap_or(0)));
    }
    let mut body = bytes::BytesMut::new();
    let mut stream = response.bytes_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| format!("body broke off after {} bytes: {}", body.len(), chain(&e)))?;
        if (body.len() + chunk.len()) as u64 > max {
            return Err(too_big());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// Words in rustls errors that say the failure was the TLS handshake.
const TLS_HINTS: [&str; 5] = ["certificate", "tls", "handshake", "corrupt message", "alert"];

/// A transport error in words, naming the host but never headers.
fn describe(e: &reqwest::Error, check: &Check) -> String {
    let host = check.url.host_str().unwrap_or("?");
    let port = check.url.port_or_known_default().map(|p| format!(":{p}")).unwrap_or_default();
    let detail = chain(e);
    if e.is_redirect() {
        return format!("too many redirects (a loop?) from {}", check.display_url());
    }
    let lower = detail.to_lowercase();
    if lower.contains("dns error") || lower.contains("failed to lookup") || lower.contains("resolve") {
        format!("cannot resolve host {host}: {detail}")
    } else if lower.contains("connection refused") {
        format!("connection refused by {host}{port}")
    } else if check.url.scheme() == "https" && TLS_HINTS.iter().any(|h| lower.contains(h)) {
        format!("TLS handshake with {host}{port} failed: {detail}")
    } else if e.is_connect() {
        format!("cannot connect to {host}{port}: {detail}")
    } else {
        format!("request to {host}{port} failed: {detail}")
    }
}

/// The error's causes, without reqwest's own top line (which repeats the URL).
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        // hyper-util's "client error (Connect)" only says which layer failed; the causes below say why.
        if !text.starts_with("client error (") && !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        cur = s.source();
    }
    if parts.is_empty() { e.to_string() } else { parts.join(": ") }
}
