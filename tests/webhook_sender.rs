#![allow(clippy::unwrap_used, clippy::expect_used)] // test set-up panics on failure by design
//! The webhook sender against a recording server on loopback: the exact body
//! for each format as JSON, a refusal naming the status and the URL without
//! its password, and a closed port reported as unreachable.

mod support;

use axum::http::StatusCode;
use guardian::config::{Webhook, WebhookFormat};
use guardian::notify::{Message, WebhookError, WebhookSender, render};
use support::recorder::Recorder;
use url::Url;

/// payments-health breached in prod; the dashboard was paused and rolled back.
fn opened_with_rollback() -> Message {
    support::messages::opened("inc-42", support::messages::at("2025-03-14T09:30:42Z"))
}

fn sender(url: &str, format: WebhookFormat) -> WebhookSender {
    WebhookSender::new(&Webhook { url: Url::parse(url).unwrap(), format }, None).unwrap()
}

#[tokio::test]
async fn each_format_posts_the_rendered_body_as_json() {
    let message = opened_with_rollback();
    for format in [WebhookFormat::Slack, WebhookFormat::Teams, WebhookFormat::Generic] {
        let server = Recorder::start(StatusCode::OK).await;
        let http = reqwest::Client::new();
        let hook = Webhook { url: Url::parse(&format!("http://{}/hook", server.addr)).unwrap(), format };
        WebhookSender::new(&hook, Some(http)).unwrap().send(&message).await.unwrap();
        let seen = server.seen();
        assert_eq!(seen.len(), 1, "{format:?}: exactly one request, no retries");
        assert_eq!(seen[0].content_type, "application/json", "{format:?}");
        assert_eq!(seen[0].body, render(format, &message), "{format:?}");
    }
}

#[tokio::test]
async fn a_refusal_names_the_status_and_the_host_never_the_url_s_secrets() {
    let server = Recorder::start(StatusCode::INTERNAL_SERVER_ERROR).await;
    // Slack-style: the secret is the path; Teams-style: a signature in the query; and a password.
    let url = format!("http://user:secret@{}/services/T0/B0/secret-path?sig=secret-sig", server.addr);
    let err = sender(&url, WebhookFormat::Generic).send(&opened_with_rollback()).await.unwrap_err();
    assert!(matches!(err, WebhookError::Rejected { status: 500, .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("500"), "{text}");
    assert!(text.contains(&format!("http://{}/… (webhook ", server.addr)), "{text}");
    assert!(text.contains("boom"), "{text}");
    assert!(!text.contains("secret"), "{text}");
    assert!(!format!("{err:?}").contains("secret"), "{err:?}");
    assert_eq!(server.seen().len(), 1, "no retries");
}

#[tokio::test]
async fn a_closed_port_is_reported_unreachable() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let url = format!("http://user:secret@{addr}/hook");
    let err = sender(&url, WebhookFormat::Slack).send(&opened_with_rollback()).await.unwrap_err();
    assert!(matches!(err, WebhookError::Unreachable { .. }), "{err:?}");
    let text = err.to_string();
    assert!(text.contains("unreachable"), "{text}");
    assert!(text.contains(&addr.to_string()), "{text}");
    assert!(!text.contains("secret"), "{text}");
}
