//! The JSON body extractor of every POST: SPEC's statuses instead of axum's
//! defaults — 413 over the size limit, 400 with a message a person can act
//! on for anything else wrong, whatever the Content-Type.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use serde::de::DeserializeOwned;

use super::error::ApiError;

/// SPEC: a body over 64 KiB is refused with 413.
pub const MAX_BODY: usize = 64 * 1024;

pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::TooLarge
            } else {
                ApiError::BadRequest(format!("cannot read the body: {e}"))
            }
        })?;
        if bytes.len() > MAX_BODY {
            return Err(ApiError::TooLarge);
        }
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
            let path = e.path().to_string();
            let inner = e.into_inner();
            match path.as_str() {
                "." | "" => ApiError::BadRequest(format!("bad JSON body: {inner}")),
                _ => ApiError::BadRequest(format!("bad JSON body at {path}: {inner}")),
            }
        })?;
        Ok(JsonBody(value))
    }
}
