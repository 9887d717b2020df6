//! API errors and the statuses SPEC gives them; the body is always
//! `{"error": "…"}` with a message a person can act on.

use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or wrong bearer token (send Authorization: Bearer <token>)")]
    Unauthorized,
    #[error("mutating endpoints are disabled: no API token is configured (set api.token_env and that variable)")]
    NoTokenConfigured,
    #[error("body larger than 64 KiB")]
    TooLarge,
    #[error("too many requests; slow down and retry")]
    TooManyRequests,
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::NoTokenConfigured => StatusCode::FORBIDDEN,
            Self::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::TooManyRequests => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.to_string() }).to_string();
        let mut response = (self.status(), [(header::CONTENT_TYPE, "application/json")], body).into_response();
        if matches!(self, Self::Unauthorized) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Bearer"));
        }
        if matches!(self, Self::TooManyRequests) {
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
        }
        response
    }
}

/// Refusals made before a handler runs (axum's extractors: a repeated query
/// key, an id that is not UTF-8, a body over the limit; an unknown route or
/// method) answer plain text; under `/api/` every error is SPEC's
/// `{"error": …}` instead, with the same status.
pub async fn json_errors(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !api || is_json || !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.map(|b| String::from_utf8_lossy(&b).trim().to_string());
    let message = match (status, text) {
        (StatusCode::PAYLOAD_TOO_LARGE, _) => ApiError::TooLarge.to_string(),
        (_, Ok(text)) if !text.is_empty() => text,
        (StatusCode::NOT_FOUND, _) => "no such endpoint; see GET /api/v1/status and SPEC's API table".to_string(),
        (StatusCode::METHOD_NOT_ALLOWED, _) => "this endpoint does not take that method".to_string(),
        _ => status.canonical_reason().unwrap_or("refused").to_string(),
    };
    parts.headers.insert(header::CONTENT_TYPE, header::HeaderValue::from_static("application/json"));
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = serde_json::json!({ "error": message }).to_string();
    Response::from_parts(parts, axum::body::Body::from(body))
}
