//! `GET /api/v1/gate?environment=ENV`: 200 go, 409 no-go, SPEC's body.
//! `POST` is the same answer for a Flagger `confirm-rollout` or
//! `confirm-promotion` webhook: its payload names the asking canary, whose
//! own rollout does not count against it.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::ApiState;
use super::error::ApiError;
use crate::config::Environment;

#[derive(Debug, Deserialize)]
pub struct GateQuery {
    environment: Option<String>,
    /// The asking target, `NAMESPACE/KIND/NAME` (Argo Rollouts' web metric sets it).
    target: Option<String>,
}

/// Flagger's webhook payload; only the canary's name and namespace matter here.
#[derive(Debug, Deserialize)]
struct FlaggerPayload {
    name: Option<String>,
    namespace: Option<String>,
}

pub async fn get_gate(State(state): State<ApiState>, Query(q): Query<GateQuery>) -> Result<Response, ApiError> {
    let env = environment(&state, q.environment.as_deref())?;
    Ok(answer(&state, env, q.target.as_deref()))
}

pub async fn post_gate(
    State(state): State<ApiState>,
    Query(q): Query<GateQuery>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let env = environment(&state, q.environment.as_deref())?;
    let asking = match body.iter().all(u8::is_ascii_whitespace) {
        true => q.target,
        false => {
            let p: FlaggerPayload = serde_json::from_slice(&body).map_err(|e| {
                ApiError::BadRequest(format!("bad JSON body (expected Flagger's webhook payload): {e}"))
            })?;
            match (p.namespace, p.name) {
                (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
                _ => q.target,
            }
        }
    };
    Ok(answer(&state, env, asking.as_deref()))
}

/// The asked environment must be this guardian's: its checks, SLOs and
/// incidents say nothing about another, and a script pointed at the wrong
/// guardian must not get a go.
fn environment(state: &ApiState, raw: Option<&str>) -> Result<Environment, ApiError> {
    let raw = raw.ok_or_else(|| ApiError::BadRequest("missing ?environment= (dev, staging-shared or prod)".into()))?;
    let env = Environment::parse(raw)
        .ok_or_else(|| ApiError::BadRequest(format!("unknown environment {raw:?}: use dev, staging-shared or prod")))?;
    let own = state.config.environment;
    if env != own {
        return Err(ApiError::BadRequest(format!("this guardian watches {own}; ask the guardian of {env}")));
    }
    Ok(env)
}

fn answer(state: &ApiState, env: Environment, asking: Option<&str>) -> Response {
    let decision = state.gatekeeper.decide(env, asking);
    let status = StatusCode::from_u16(decision.verdict().http_status()).unwrap_or(StatusCode::CONFLICT);
    (status, Json(decision.body())).into_response()
}
