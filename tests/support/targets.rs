//! HTTP targets for probe tests, each on its own `127.0.0.1:0` listener.
//!
//! Ordinary targets run on axum. Hostile ones (`silent`, `trickle`, `huge_body`) write raw TCP:
//! they break HTTP on purpose or must control exactly what reaches the socket. Every server runs
//! in a spawned task and ends with the test's runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Chunk size for streamed bodies, so a large body never sits in memory.
const CHUNK: usize = 64 * 1024;
/// What `huge_body` writes, one chunk at a time.
static FILLER: [u8; CHUNK] = [b'x'; CHUNK];
/// Pace of `trickle`: slow enough to trip any sane body timeout, fast enough to never look idle.
const TRICKLE_EVERY: Duration = Duration::from_millis(100);

/// 200 with `body` as `application/json`, on every path.
pub async fn healthy(body: &'static str) -> SocketAddr {
    status(200, body).await
}

/// Waits `delay`, then answers like [`healthy`].
pub async fn slow(delay: Duration, body: &'static str) -> SocketAddr {
    serve(Router::new().fallback(move || async move {
        tokio::time::sleep(delay).await;
        json(StatusCode::OK, body)
    }))
    .await
}

/// `code` with `body` as `application/json`, on every path.
pub async fn status(code: u16, body: &'static str) -> SocketAddr {
    let code = StatusCode::from_u16(code).unwrap_or_else(|e| panic!("status {code}: {e}"));
    serve(Router::new().fallback(move || async move { json(code, body) })).await
}

/// 200 whose JSON body stops half-way: `{"status": "ok",`.
pub async fn invalid_json() -> SocketAddr {
    healthy(r#"{"status": "ok","#).await
}

/// Answers every path with 302 to the next one: `/` → `/r/1` → `/r/2` → …
pub async fn redirect_loop() -> SocketAddr {
    serve(Router::new().fallback(|uri: Uri| async move {
        let n: u64 = uri.path().strip_prefix("/r/").and_then(|n| n.parse().ok()).unwrap_or(0);
        (StatusCode::FOUND, [(header::LOCATION, format!("/r/{}", n + 1))])
    }))
    .await
}

/// Like [`healthy`], plus the number of requests served so far.
pub async fn counting(body: &'static str) -> (SocketAddr, Arc<AtomicU64>) {
    let requests = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&requests);
    let addr = serve(Router::new().fallback(move || {
        seen.fetch_add(1, Ordering::SeqCst);
        async move { json(StatusCode::OK, body) }
    }))
    .await;
    (addr, requests)
}

/// An address on 127.0.0.1 where nothing listens: connecting is refused.
pub fn refused_addr() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
    local_addr(listener.local_addr())
}

/// Accepts connections, reads what comes, never writes a byte. The socket stays open until the
/// client leaves.
pub async fn silent() -> SocketAddr {
    raw(|mut stream| async move {
        let mut sink = [0u8; 1024];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    })
    .await
}

/// Valid 200 headers with a chunked JSON body, then one byte every 100 ms, forever.
pub async fn trickle() -> SocketAddr {
    raw(|mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        if read_head(&mut stream).await.is_err() || stream.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        let mut tick = tokio::time::interval(TRICKLE_EVERY);
        loop {
            tick.tick().await;
            // One chunk of one byte: a space, which JSON readers skip.
            if stream.write_all(b"1\r\n \r\n").await.is_err() {
                return;
            }
        }
    })
    .await
}

/// 200 with a `content-length: bytes` body of `x`s, streamed in 64 KiB chunks, plus the body bytes
/// written so far, over all connections. The body is labelled JSON, so only a size limit stops it.
/// Writes stop when the client goes away; socket buffers let the count run a few MiB ahead of
/// what the client actually read.
pub async fn huge_body(bytes: usize) -> (SocketAddr, Arc<AtomicU64>) {
    let written = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&written);
    let addr = raw(move |mut stream| {
        let counter = Arc::clone(&counter);
        async move {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {bytes}\r\nconnection: close\r\n\r\n"
            );
            if read_head(&mut stream).await.is_err() || stream.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let mut left = bytes;
            while left > 0 {
                let n = left.min(CHUNK);
                if stream.write_all(&FILLER[..n]).await.is_err() {
                    return;
                }
                counter.fetch_add(n as u64, Ordering::SeqCst);
                left -= n;
            }
            let _ = stream.shutdown().await;
        }
    })
    .await;
    (addr, written)
}

fn json(code: StatusCode, body: &'static str) -> Response {
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn bind() -> (TcpListener, SocketAddr) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
    let addr = local_addr(listener.local_addr());
    (listener, addr)
}

// Helpers under tests/ are not `#[test]` functions, so clippy's allow-expect-in-tests misses them:
// they panic with the error spelled out instead.
fn local_addr(addr: std::io::Result<SocketAddr>) -> SocketAddr {
    addr.unwrap_or_else(|e| panic!("local address of a bound listener: {e}"))
}

async fn serve(router: Router) -> SocketAddr {
    let (listener, addr) = bind().await;
    tokio::spawn(async move { axum::serve(listener, router).await });
    addr
}

/// Runs `handle` on every accepted connection, each in its own task.
async fn raw<H, Fut>(handle: H) -> SocketAddr
where
    H: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let (listener, addr) = bind().await;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream));
        }
    });
    addr
}

/// Reads up to the blank line that ends a request head, so the response never races the request; returns the head.
pub async fn read_head(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut seen = Vec::new();
    let mut buf = [0u8; 1024];
    while !seen.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        seen.extend_from_slice(&buf[..n]);
    }
    Ok(seen)
}
