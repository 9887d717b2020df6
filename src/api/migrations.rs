//! `POST /api/v1/migrations` and `POST /api/v1/migrations/{id}/finish`: a
//! deploy script declares a change (a schema migration, a data move) so the
//! guard watches its target even when no rollout shows, and says what a
//! breach should do (`on_breach`: rollback, or pause for changes that
//! rolling the code back would make worse).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::ApiState;
use super::body::JsonBody;
use super::error::ApiError;
use crate::migration::{Migration, OnBreach};
use crate::targets::MigrationError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MigrationBody {
    target: String,
    description: String,
    on_breach: Option<OnBreach>,
}

pub async fn post_migration(
    State(state): State<ApiState>,
    JsonBody(b): JsonBody<MigrationBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let description = b.description.trim();
    if description.is_empty() || description.len() > 1_000 || description.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApiError::BadRequest(
            "description must say what changes, in 1 to 1000 printable characters".into(),
        ));
    }
    let target = state.targets.resolve(b.target.trim()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let now = state.clock.now();
    let migration = Migration {
        id: format!("mig-{}-{:08x}", now.as_millisecond(), rand::random::<u32>()),
        target: target.to_string(),
        description: description.to_string(),
        on_breach: b.on_breach.unwrap_or(OnBreach::Rollback),
        started_at: now,
        finished_at: None,
    };
    state.targets.declare(migration.clone()).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    Ok((StatusCode::CREATED, Json(json!({ "id": migration.id, "migration": migration }))))
}

pub async fn finish_migration(State(state): State<ApiState>, Path(id): Path<String>) -> Result<Json<Value>, ApiError> {
    match state.targets.finish(&id) {
        Ok(m) => Ok(Json(json!({ "id": m.id, "migration": m }))),
        Err(MigrationError::Unknown(_)) => finished_before(&state, &id).await,
        Err(e) => Err(ApiError::BadRequest(e.to_string())),
    }
}

/// Declared on another replica, or finished before (finishing twice is
/// harmless): storage knows it.
async fn finished_before(state: &ApiState, id: &str) -> Result<Json<Value>, ApiError> {
    let found = state.targets.finish_stored(state.writer.store().as_ref(), id).await.map_err(|e| {
        ApiError::Unavailable(format!("migration {id:?} is not held here and storage cannot be read: {e}"))
    })?;
    match found {
        Some(m) => Ok(Json(json!({ "id": m.id, "migration": m }))),
        None => Err(ApiError::NotFound(format!("no migration {id:?}"))),
    }
}
