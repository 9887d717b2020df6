//! Owns posting one `Message` to one configured webhook: the body is
//! `render(format, message)` as JSON, and any 2xx answer is success.
//!
//! No retries here: the outbox retries a failed send, with back-off, so a
//! receiver that is down never delays a pause or a rollback. Errors name the
//! webhook by host and tag only: its URL is a credential.

use std::time::Duration;

use url::Url;

use super::alertmanager::chain;
use super::format::render;
use super::message::Message;
use crate::config::{Webhook, WebhookFormat, redact_url};

/// A request that takes longer is a failure; the outbox sends again later.
const SEND_TIMEOUT: Duration = Duration::from_secs(5);
/// How much of a refusal's body goes into the error: enough for the
/// receiver's reason, never a whole page.
const BODY_EXCERPT: usize = 200;

/// Posts messages to one webhook in its configured format.
#[derive(Debug, Clone)]
pub struct WebhookSender {
    url: Url,
    format: WebhookFormat,
    http: reqwest::Client,
}

/// Why a webhook did not take a message; every `url` is redacted.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("cannot build the webhook HTTP client: {}", chain(.0))]
    Client(#[source] reqwest::Error),
    #[error("webhook {url}: cannot encode the body: {source}")]
    Encode { url: String, source: serde_json::Error },
    #[error("webhook {url}: unreachable: {}", chain(.source))]
    Unreachable { url: String, source: reqwest::Error },
    #[error("webhook {url}: answered {status}: {body}")]
    Rejected { url: String, status: u16, body: String },
}

impl WebhookSender {
    /// A sender for `webhook`, sharing `http` when given, else with its own
    /// client. Every request times out after 5 s, whatever `http` says.
    pub fn new(webhook: &Webhook, http: Option<reqwest::Client>) -> Result<Self, WebhookError> {
        let http = match http {
            Some(http) => http,
            None => reqwest::Client::builder()
                .user_agent(concat!("guardian/", env!("CARGO_PKG_VERSION")))
                .build()
                .map_err(WebhookError::Client)?,
        };
        Ok(Self { url: webhook.url.clone(), format: webhook.format, http })
    }

    /// The webhook's URL as it may be shown: see [`shown_url`].
    pub fn url(&self) -> String {
        shown_url(&self.url)
    }

    /// Posts `m` once; Ok when the webhook answered 2xx.
    pub async fn send(&self, m: &Message) -> Result<(), WebhookError> {
        let body = serde_json::to_vec(&render(self.format, m))
            .map_err(|source| WebhookError::Encode { url: self.url(), source })?;
        let response = self
            .http
            .post(self.url.clone())
            .header(http::header::CONTENT_TYPE, "application/json")
            .timeout(SEND_TIMEOUT)
            .body(body)
            .send()
            .await
            .map_err(|e| WebhookError::Unreachable { url: self.url(), source: e.without_url() })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let text = response.text().await.unwrap_or_default();
        let body = redact_url(text.trim()).chars().take(BODY_EXCERPT).collect();
        Err(WebhookError::Rejected { url: self.url(), status: status.as_u16(), body })
    }
}

/// A webhook URL is a credential: Slack's and Teams' carry their secret in
/// the path or the query. Shown as scheme, host and port, with the stable tag
/// the outbox uses, so two webhooks on one host can be told apart.
pub fn shown_url(url: &Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let host = url.host_str().unwrap_or("?");
    format!("{}://{host}{port}/… (webhook {})", url.scheme(), super::outbox::url_tag(url.as_str()))
}
