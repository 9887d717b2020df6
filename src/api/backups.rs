//! `POST /api/v1/backups`: a backup script reports a finished backup; the
//! gate's `require_backup_within` reads it at once.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;

use super::ApiState;
use super::body::JsonBody;
use super::error::ApiError;
use crate::config::Environment;
use crate::gate::Backup;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupBody {
    environment: String,
    id: String,
    completed_at: jiff::Timestamp,
    ok: bool,
}

pub async fn post_backup(
    State(state): State<ApiState>,
    JsonBody(b): JsonBody<BackupBody>,
) -> Result<(StatusCode, Json<Backup>), ApiError> {
    let environment = Environment::parse(&b.environment).ok_or_else(|| {
        ApiError::BadRequest(format!("environment {:?} is not one of dev, staging-shared, prod", b.environment))
    })?;
    let id = b.id.trim();
    if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
        return Err(ApiError::BadRequest("id must be 1 to 200 printable characters".into()));
    }
    // A date in the future would stay "newest" and hide every real backup after it.
    let limit = state.clock.now().checked_add(jiff::SignedDuration::from_secs(60)).unwrap_or(b.completed_at);
    if b.completed_at > limit {
        return Err(ApiError::BadRequest(format!("completed_at {} is in the future", b.completed_at)));
    }
    let backup = Backup { environment, id: id.to_string(), completed_at: b.completed_at, ok: b.ok };
    tracing::info!(environment = %environment, id, ok = b.ok, completed_at = %b.completed_at, "backup reported");
    state.gatekeeper.record_backup(backup.clone());
    Ok((StatusCode::CREATED, Json(backup)))
}
