//! `GET /api/v1/incidents` and `GET /api/v1/actions`: what happened, open
//! and closed, and every action Guardian took, newest first.

use std::collections::HashSet;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use super::ApiState;
use super::error::ApiError;

/// How many rows a list answers.
const LIMIT: u32 = 500;

/// Memory first (open incidents are live there), then storage for older ones.
/// Storage being down still answers what memory holds.
pub async fn incidents(State(state): State<ApiState>) -> Json<Value> {
    let mut list = state.history.recent_incidents();
    let mut stored_ok = true;
    match state.writer.store().incidents(LIMIT).await {
        Ok(stored) => {
            let known: HashSet<String> = list.iter().map(|i| i.id.clone()).collect();
            list.extend(stored.into_iter().filter(|i| !known.contains(&i.id)));
        }
        Err(e) => {
            tracing::warn!(error = %e, "incidents answered from memory only");
            stored_ok = false;
        }
    }
    list.sort_by_key(|i| (i.ended_at.is_some(), std::cmp::Reverse(i.started_at)));
    list.truncate(LIMIT as usize);
    Json(json!({ "incidents": list, "complete": stored_ok }))
}

pub async fn actions(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let actions = state
        .writer
        .store()
        .actions(LIMIT)
        .await
        .map_err(|e| ApiError::Unavailable(format!("storage cannot list actions right now: {e}")))?;
    Ok(Json(json!({ "actions": actions })))
}
