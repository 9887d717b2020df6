//! A small OTLP/HTTP receiver (`POST /v1/traces`, JSON encoding) that keeps
//! every body as received and the spans decoded from it, and a probe target
//! that records the `traceparent` header of each request it answers.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::routing::post;
use serde_json::Value;

/// One span as received, with its attributes as plain JSON values.
#[derive(Debug, Clone)]
pub struct Span {
    pub service_name: String,
    pub trace_id: String,
    pub span_id: String,
    pub name: String,
    /// OTLP `SpanKind`: 1 internal, 3 client.
    pub kind: i64,
    pub attributes: BTreeMap<String, Value>,
}

impl Span {
    pub fn attr(&self, key: &str) -> &Value {
        self.attributes.get(key).unwrap_or(&Value::Null)
    }
}

#[derive(Default)]
struct Received {
    bodies: Vec<String>,
    spans: Vec<Span>,
    /// Requests to anything but `POST /v1/traces`.
    stray: Vec<String>,
}

/// Listens on 127.0.0.1 on a free port.
pub struct OtlpReceiver {
    pub addr: SocketAddr,
    received: Arc<Mutex<Received>>,
}

impl OtlpReceiver {
    pub async fn start() -> Self {
        let received = Arc::new(Mutex::new(Received::default()));
        let (traces, stray) = (received.clone(), received.clone());
        let app = Router::new()
            .route(
                "/v1/traces",
                post(move |headers: HeaderMap, body: Bytes| {
                    let received = traces.clone();
                    async move {
                        let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
                        assert_eq!(content_type, Some("application/json"), "OTLP/HTTP with JSON encoding");
                        let text = String::from_utf8_lossy(&body).to_string();
                        let json: Value = serde_json::from_str(&text).unwrap();
                        let mut r = received.lock().unwrap();
                        r.spans.extend(decode(&json));
                        r.bodies.push(text);
                        (StatusCode::OK, [("content-type", "application/json")], "{}")
                    }
                }),
            )
            .fallback(move |uri: Uri| {
                let received = stray.clone();
                async move {
                    received.lock().unwrap().stray.push(uri.to_string());
                    StatusCode::NOT_FOUND
                }
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, received }
    }

    /// The value for `OTEL_EXPORTER_OTLP_ENDPOINT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn spans(&self) -> Vec<Span> {
        self.received.lock().unwrap().spans.clone()
    }

    /// Every request body, verbatim, to look for leaks.
    pub fn raw(&self) -> String {
        self.received.lock().unwrap().bodies.join("\n")
    }

    /// How many requests arrived, on any path.
    pub fn requests(&self) -> usize {
        let r = self.received.lock().unwrap();
        r.bodies.len() + r.stray.len()
    }
}

/// The spans of an `ExportTraceServiceRequest` in its JSON form.
fn decode(request: &Value) -> Vec<Span> {
    let mut spans = Vec::new();
    for rs in request["resourceSpans"].as_array().into_iter().flatten() {
        let resource = attributes(&rs["resource"]["attributes"]);
        let service_name = resource.get("service.name").and_then(Value::as_str).unwrap_or_default().to_string();
        for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
            for s in ss["spans"].as_array().into_iter().flatten() {
                spans.push(Span {
                    service_name: service_name.clone(),
                    trace_id: s["traceId"].as_str().unwrap_or_default().to_lowercase(),
                    span_id: s["spanId"].as_str().unwrap_or_default().to_lowercase(),
                    name: s["name"].as_str().unwrap_or_default().to_string(),
                    kind: s["kind"].as_i64().unwrap_or(0),
                    attributes: attributes(&s["attributes"]),
                });
            }
        }
    }
    spans
}

/// OTLP `KeyValue`s as a map; `intValue` may come as a string (int64 in JSON).
fn attributes(list: &Value) -> BTreeMap<String, Value> {
    let mut map = BTreeMap::new();
    for kv in list.as_array().into_iter().flatten() {
        let (key, v) = (kv["key"].as_str().unwrap_or_default().to_string(), &kv["value"]);
        let value = if let Some(s) = v.get("stringValue") {
            s.clone()
        } else if let Some(i) = v.get("intValue") {
            i.as_i64().or_else(|| i.as_str().and_then(|s| s.parse().ok())).map(Value::from).unwrap_or(Value::Null)
        } else if let Some(d) = v.get("doubleValue") {
            d.clone()
        } else if let Some(b) = v.get("boolValue") {
            b.clone()
        } else {
            v.clone()
        };
        map.insert(key, value);
    }
    map
}

/// Answers 200 `{"status":"ok"}` and records each request's `traceparent`
/// (`None` when absent).
pub struct TraceTarget {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Option<String>>>>,
}

impl TraceTarget {
    pub async fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = Router::new().fallback(move |headers: HeaderMap| {
            let log = log.clone();
            async move {
                let parent = headers.get("traceparent").map(|v| v.to_str().unwrap().to_string());
                log.lock().unwrap().push(parent);
                ([("content-type", "application/json")], r#"{"status":"ok"}"#)
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, seen }
    }

    pub fn traceparents(&self) -> Vec<Option<String>> {
        self.seen.lock().unwrap().clone()
    }
}

/// Splits a W3C `traceparent` into (trace id, parent span id) when it has
/// the version-00 form `00-<32 hex>-<16 hex>-<2 hex>` with flags 00 or 01.
pub fn parse_traceparent(value: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    let valid = parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && matches!(parts[3], "00" | "01")
        && parts[1].bytes().any(|b| b != b'0')
        && parts[2].bytes().any(|b| b != b'0');
    valid.then(|| (parts[1].to_string(), parts[2].to_string()))
}
