//! The demo's stand-in for the business team's chat: a webhook receiver on
//! loopback that keeps every message the guardian posts (generic format),
//! so the story shows what people would read, delivered the real way.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Default)]
pub struct Inbox {
    messages: Arc<Mutex<Vec<Value>>>,
}

impl Inbox {
    /// Serves `POST /business` on a free loopback port until `stop`.
    pub async fn start(stop: CancellationToken) -> anyhow::Result<(Self, SocketAddr)> {
        let inbox = Self::default();
        let kept = inbox.clone();
        let app = Router::new().route(
            "/business",
            post(move |body: Bytes| {
                let kept = kept.clone();
                async move {
                    match serde_json::from_slice::<Value>(&body) {
                        Ok(message) => {
                            kept.lock().push(message);
                            StatusCode::OK
                        }
                        Err(_) => StatusCode::BAD_REQUEST,
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .await
            .context("cannot bind the demo's webhook receiver")?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let serve = axum::serve(listener, app).with_graceful_shutdown(stop.cancelled_owned());
            if let Err(e) = serve.await {
                tracing::warn!(error = %e, "the demo's webhook receiver stopped");
            }
        });
        Ok((inbox, addr))
    }

    /// Every message received so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Value>> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner())
    }
}
