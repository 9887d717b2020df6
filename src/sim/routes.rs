//! Owns the simulator's HTTP surface: which body each port serves on which
//! path, the 404/405 answers, the `/sim/faults` control endpoints, and the
//! middleware that applies faults to business paths (a fault's JSON merge
//! patch reaches the business handler as a request extension).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::data;
use super::faults::{self, Fault, Faults};

/// Pre-serialized bodies by path: the data never changes, so each request
/// only clones a `Bytes` (a reference count), which keeps benches cheap.
#[derive(Debug, Default)]
pub(crate) struct Bodies(HashMap<&'static str, Bytes>);

/// A fault's merge patch for this request, set by `inject_faults`.
#[derive(Clone)]
struct Patch(Value);

#[derive(Clone)]
struct Sim {
    bodies: Arc<Bodies>,
    faults: Faults,
    stop: CancellationToken,
}

impl Bodies {
    /// The business API that landing and dashboard both serve.
    pub(crate) fn business(service: &str, domains: &[data::Domain]) -> Bodies {
        Bodies::from([
            ("/api/health", data::health(service)),
            ("/api/revenue/status", data::revenue_status()),
            ("/api/payments/health", data::payments_health()),
            ("/api/payments/status", data::payments_status()),
            ("/api/domains", data::domains_list(domains)),
            ("/api/domains/count", data::domains_count(domains)),
            ("/api/domains/health", data::domains_health(domains)),
            ("/api/domains/portfolio/status", data::portfolio_status(domains)),
            ("/api/customers/count", data::customers_count()),
            ("/api/affiliation/status", data::affiliation_status()),
            ("/api/analytics/revenue", data::analytics_revenue()),
        ])
    }

    /// The landing serves the business API too, and its home page (the
    /// staging validation's `landing-home` check).
    pub(crate) fn landing(domains: &[data::Domain]) -> Bodies {
        let mut bodies = Self::business("nextgen-landing", domains);
        bodies.0.insert("/", Bytes::from(data::landing_home().to_string()));
        bodies
    }

    pub(crate) fn admin() -> Bodies {
        Bodies::from([("/api/health", data::health("nextgen-admin")), ("/api/admin/health", data::admin_health())])
    }
}

impl<const N: usize> From<[(&'static str, Value); N]> for Bodies {
    fn from(pairs: [(&'static str, Value); N]) -> Bodies {
        Bodies(pairs.into_iter().map(|(p, v)| (p, Bytes::from(v.to_string()))).collect())
    }
}

/// One port's router: its bodies, the shared faults, and `stop`, which cuts
/// injected latency short so shutdown never waits on a stalled request.
pub(crate) fn router(bodies: Arc<Bodies>, faults: Faults, stop: CancellationToken) -> Router {
    let sim = Sim { bodies, faults, stop };
    Router::new()
        .route("/sim/faults", get(list_faults).post(set_fault).delete(clear_faults))
        .fallback(business)
        .layer(middleware::from_fn_with_state(sim.clone(), inject_faults))
        .with_state(sim)
}

async fn business(State(sim): State<Sim>, req: Request) -> Response {
    let path = req.uri().path();
    match sim.bodies.0.get(path) {
        Some(body) if matches!(*req.method(), Method::GET | Method::HEAD) => match req.extensions().get::<Patch>() {
            Some(Patch(patch)) => patched(body, patch),
            None => json_bytes(StatusCode::OK, body.clone()),
        },
        Some(_) => json_value(StatusCode::METHOD_NOT_ALLOWED, &json!({"error": "method not allowed"})),
        None => json_value(StatusCode::NOT_FOUND, &json!({"error": "not found", "path": path})),
    }
}

/// A 200 with `patch` merged into `body`. The bodies are our own JSON, so
/// parsing cannot fail; were it to, the body is served unpatched.
fn patched(body: &Bytes, patch: &Value) -> Response {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            faults::merge_patch(&mut value, patch);
            json_value(StatusCode::OK, &value)
        }
        Err(_) => json_bytes(StatusCode::OK, body.clone()),
    }
}

async fn inject_faults(State(sim): State<Sim>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/sim/") {
        return next.run(req).await;
    }
    let Some(effect) = sim.faults.effect(path) else {
        return next.run(req).await;
    };
    if !effect.latency.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(effect.latency) => {}
            () = sim.stop.cancelled() => {
                let body = json!({"error": "simulator shutting down"});
                return json_value(StatusCode::SERVICE_UNAVAILABLE, &body);
            }
        }
    }
    match effect.fail_with {
        Some(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            json_value(status, &json!({"error": "injected fault"}))
        }
        None => {
            if let Some(patch) = effect.patch {
                req.extensions_mut().insert(Patch(patch));
            }
            next.run(req).await
        }
    }
}

async fn list_faults(State(sim): State<Sim>) -> Response {
    json_value(StatusCode::OK, &json!({ "faults": sim.faults.list() }))
}

/// Parses the body by hand so every bad body is a 400 with serde's message
/// (axum's `Json` answers 415 or 422 depending on what is wrong).
async fn set_fault(State(sim): State<Sim>, body: Bytes) -> Response {
    let fault = match serde_json::from_slice::<Fault>(&body) {
        Ok(f) => f,
        Err(e) => return bad_request(format!("invalid fault: {e}")),
    };
    if let Err(msg) = fault.validate() {
        return bad_request(format!("invalid fault: {msg}"));
    }
    let json = fault.json.as_ref().map(Value::to_string);
    tracing::info!(path = %fault.path, latency_ms = fault.latency_ms, status = ?fault.status,
        error_rate = fault.error_rate, json, "fault set");
    let echo = json!({ "fault": &fault });
    sim.faults.set(fault);
    json_value(StatusCode::OK, &echo)
}

async fn clear_faults(State(sim): State<Sim>) -> Response {
    let cleared = sim.faults.list().len();
    sim.faults.clear();
    tracing::info!(cleared, "faults cleared");
    json_value(StatusCode::OK, &json!({ "cleared": cleared }))
}

fn bad_request(message: String) -> Response {
    json_value(StatusCode::BAD_REQUEST, &json!({ "error": message }))
}

fn json_value(status: StatusCode, body: &Value) -> Response {
    json_bytes(status, Bytes::from(body.to_string()))
}

fn json_bytes(status: StatusCode, body: Bytes) -> Response {
    let mut res = Response::new(Body::from(body));
    *res.status_mut() = status;
    let json = header::HeaderValue::from_static("application/json");
    res.headers_mut().insert(header::CONTENT_TYPE, json);
    res
}
