//! A bare HTTP client for the fake, calling it as kube-rs would, with a reader for watch streams.

use std::time::Duration;

use futures_util::StreamExt;
use reqwest::{Client, Method};
use serde_json::Value;

use super::FakeApiServer;

/// A bare HTTP client for the fake, as kube-rs would call it.
pub struct Kube {
    client: Client,
    base: String,
}

impl Kube {
    pub fn new(server: &FakeApiServer) -> Self {
        let client = Client::builder().no_proxy().timeout(Duration::from_secs(5)).build().unwrap();
        Self { client, base: server.url() }
    }

    pub async fn send(&self, method: Method, path: &str, content_type: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = self.client.request(method, format!("{}{path}", self.base));
        if let Some(body) = body {
            request = request.header("content-type", content_type).body(body.to_string());
        }
        let response = request.send().await.unwrap();
        let code = response.status().as_u16();
        let text = response.text().await.unwrap();
        (code, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send(Method::GET, path, "", None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::POST, path, "application/json", Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(Method::PUT, path, "application/json", Some(body)).await
    }

    pub async fn patch(&self, path: &str, content_type: &str, body: Value) -> (u16, Value) {
        self.send(Method::PATCH, path, content_type, Some(body)).await
    }

    /// Opens a watch and reads its newline-delimited events.
    pub async fn watch(&self, path_and_query: &str) -> Events {
        let response = self.client.get(format!("{}{path_and_query}", self.base)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200);
        Events { stream: Box::pin(response.bytes_stream()), buffer: Vec::new() }
    }
}

pub struct Events {
    stream: std::pin::Pin<Box<dyn futures_util::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: Vec<u8>,
}

impl Events {
    /// The next event, or `None` once the server ends the stream; panics after 5 s of silence.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            if let Some(end) = self.buffer.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.buffer.drain(..=end).collect();
                return Some(serde_json::from_slice(&line).unwrap());
            }
            let chunk =
                tokio::time::timeout(Duration::from_secs(5), self.stream.next()).await.expect("no event in 5 s");
            match chunk {
                Some(bytes) => self.buffer.extend_from_slice(&bytes.unwrap()),
                None => return None,
            }
        }
    }

    /// The next event's type and the object's name and resourceVersion.
    pub async fn next_summary(&mut self) -> (String, String, String) {
        let e = self.next().await.expect("the stream ended");
        let meta = &e["object"]["metadata"];
        (text(&e["type"]), text(&meta["name"]), text(&meta["resourceVersion"]))
    }
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}
