//! A local HTTP receiver that records every request (method, path, content
//! type, JSON body) and answers a fixed status: the stand-in for
//! Alertmanager and webhook receivers in notification tests.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;
use url::Url;

/// One request a recording server saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: Method,
    pub path: String,
    pub content_type: String,
    pub body: Value,
}

/// Records requests and answers `status` (body `boom`).
pub struct Recorder {
    pub addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl Recorder {
    pub async fn start(status: StatusCode) -> Self {
        Self::start_on("127.0.0.1:0".parse().unwrap(), status).await
    }

    /// On a given address: a receiver that comes back on the port it had.
    pub async fn start_on(addr: SocketAddr, status: StatusCode) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let log = log.clone();
            async move {
                let content_type = headers.get("content-type").map(|v| v.to_str().unwrap().to_string());
                let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let path = uri.path().to_string();
                log.lock().unwrap().push(Seen { method, path, content_type: content_type.unwrap_or_default(), body });
                (status, "boom")
            }
        });
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { addr, seen }
    }

    pub fn url(&self, userinfo: &str) -> Url {
        Url::parse(&format!("http://{userinfo}{}/", self.addr)).unwrap()
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}
