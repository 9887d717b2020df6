//! A receiver on a fixed loopback address that a test takes down and brings
//! back: refusing connections (nothing listens), hanging (connections are
//! accepted and never answered), or answering — recording every request,
//! and either answering 200 itself or passing the request on to an upstream
//! (a real Alertmanager) and answering what it answered.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use url::Url;

use super::recorder::Seen;

pub struct Receiver {
    pub addr: SocketAddr,
    upstream: Option<Url>,
    seen: Arc<Mutex<Vec<Seen>>>,
    serving: Mutex<Option<JoinHandle<()>>>,
}

impl Receiver {
    /// Down: a loopback port nobody listens on, so connections are refused.
    pub fn refusing() -> Self {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        Self { addr, upstream: None, seen: Arc::default(), serving: Mutex::new(None) }
    }

    /// Once answering, passes every request on to `upstream` (its path kept).
    pub fn passing_on_to(mut self, upstream: Url) -> Self {
        self.upstream = Some(upstream);
        self
    }

    /// Refuses connections from now on; connections held so far are closed.
    pub async fn refuse(&self) {
        let task = self.serving.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }

    /// Accepts connections and never answers (nor closes) them.
    pub async fn hang(&self) {
        self.refuse().await;
        let listener = self.bind().await;
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            loop {
                if let Ok((stream, _)) = listener.accept().await {
                    held.push(stream);
                }
            }
        });
        *self.serving.lock().unwrap() = Some(task);
    }

    /// Back: records each request and answers 200, or what the upstream answered.
    pub async fn answer(&self) {
        self.refuse().await;
        let listener = self.bind().await;
        let (seen, upstream, http) = (self.seen.clone(), self.upstream.clone(), reqwest::Client::new());
        let app = Router::new().fallback(move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let (seen, upstream, http) = (seen.clone(), upstream.clone(), http.clone());
            async move {
                let content_type =
                    headers.get("content-type").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
                let json = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let path = uri.path().to_string();
                seen.lock().unwrap().push(Seen {
                    method: method.clone(),
                    path: path.clone(),
                    content_type,
                    body: json,
                });
                let Some(upstream) = upstream else { return (StatusCode::OK, String::new()) };
                let r = http
                    .request(method, upstream.join(path.trim_start_matches('/')).unwrap())
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                (StatusCode::from_u16(r.status().as_u16()).unwrap(), r.text().await.unwrap_or_default())
            }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        *self.serving.lock().unwrap() = Some(task);
    }

    /// Every request received while answering, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// The port was ours a moment ago; another test may hold it briefly, so retry.
    async fn bind(&self) -> TcpListener {
        for _ in 0..100 {
            if let Ok(l) = TcpListener::bind(self.addr).await {
                return l;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("cannot listen on {} again", self.addr)
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.serving.lock().unwrap().take() {
            task.abort();
        }
    }
}
