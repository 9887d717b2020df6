//! `Status` errors with the reasons and codes the real API server uses.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::resources::Resource;

/// A failed request, answered as a `Status` object with the same HTTP code.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    pub code: u16,
    pub reason: &'static str,
    pub message: String,
    pub details: Option<Value>,
}

impl ApiError {
    pub fn new(code: u16, reason: &'static str, message: impl Into<String>) -> Self {
        Self { code, reason, message: message.into(), details: None }
    }

    pub fn not_found(r: &Resource, name: &str) -> Self {
        Self::about(404, "NotFound", r, name, format!("{} \"{name}\" not found", r.group_resource()))
    }

    pub fn already_exists(r: &Resource, name: &str) -> Self {
        Self::about(409, "AlreadyExists", r, name, format!("{} \"{name}\" already exists", r.group_resource()))
    }

    pub fn conflict(r: &Resource, name: &str) -> Self {
        let msg = format!(
            "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; \
             please apply your changes to the latest version and try again",
            r.group_resource()
        );
        Self::about(409, "Conflict", r, name, msg)
    }

    pub fn invalid(r: &Resource, name: &str, message: impl Into<String>) -> Self {
        let msg = format!("{} \"{name}\" is invalid: {}", r.kind, message.into());
        Self::about(422, "Invalid", r, name, msg)
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message)
    }

    /// The `ERROR` event a watch gets when its resourceVersion has been compacted away.
    pub fn expired(requested: u64, oldest: u64) -> Self {
        Self::new(410, "Expired", format!("too old resource version: {requested} ({oldest})"))
    }

    /// The answer for an injected fault with this HTTP code.
    pub fn injected(code: u16) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            409 => "Conflict",
            410 => "Expired",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            _ => "InternalError",
        };
        Self::new(code, reason, format!("injected fault: {code} {reason}"))
    }

    fn about(code: u16, reason: &'static str, r: &Resource, name: &str, message: String) -> Self {
        let details = json!({"name": name, "group": r.group, "kind": r.plural});
        Self { code, reason, message, details: Some(details) }
    }

    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let Some(details) = &self.details {
            status["details"] = details.clone();
        }
        status
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = StatusCode::from_u16(self.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json_response(code, &self.to_status())
    }
}

/// A JSON answer with the content type the real server uses.
pub fn json_response(code: StatusCode, body: &Value) -> Response {
    (code, [(axum::http::header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

/// The `Status` a built-in resource's DELETE answers with.
pub fn deleted(r: &Resource, name: &str, uid: &Value) -> Value {
    json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": name, "group": r.group, "kind": r.plural, "uid": uid},
    })
}
