//! Hostile HTTP targets that break the protocol on purpose, each on its own
//! `127.0.0.1:0` listener, written as raw TCP so the test controls every byte
//! (the gentler ones live in `targets`). Large answers are streamed from small
//! buffers, so the server's own memory does not blur a test's measurement;
//! each counts the bytes it managed to write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::targets::read_head;

/// Bytes written per write call for streamed answers.
const CHUNK: usize = 64 * 1024;

/// A hostile target's address and how many bytes it has written so far.
pub struct Hostile {
    pub addr: SocketAddr,
    pub written: Arc<AtomicU64>,
}

impl Hostile {
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }
}

/// What to write after the request head: parts in order, each a unit written
/// some number of times, or until the client leaves.
#[derive(Clone, Default)]
pub struct Answer {
    parts: Vec<(Vec<u8>, Option<u64>)>,
}

impl Answer {
    pub fn new() -> Answer {
        Answer::default()
    }

    /// These bytes, once.
    pub fn then(mut self, bytes: impl Into<Vec<u8>>) -> Answer {
        self.parts.push((bytes.into(), Some(1)));
        self
    }

    /// `unit`, `times` times in a row.
    pub fn repeat(mut self, unit: impl Into<Vec<u8>>, times: u64) -> Answer {
        self.parts.push((unit.into(), Some(times)));
        self
    }

    /// `unit` over and over until the client goes away.
    pub fn forever(mut self, unit: impl Into<Vec<u8>>) -> Answer {
        self.parts.push((unit.into(), None));
        self
    }
}

/// Answers every request with `answer`, then closes the connection.
pub async fn answering(answer: Answer) -> Hostile {
    let written = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&written);
    let addr = serve(move |mut stream| {
        let (answer, count) = (answer.clone(), Arc::clone(&count));
        async move {
            if read_head(&mut stream).await.is_err() {
                return;
            }
            for (unit, times) in &answer.parts {
                if write_repeated(&mut stream, unit, *times, &count).await.is_err() {
                    return;
                }
            }
            let _ = stream.shutdown().await;
        }
    })
    .await;
    Hostile { addr, written }
}

/// Writes `unit` `times` times (for ever with `None`), about 64 KiB per write.
async fn write_repeated(
    stream: &mut TcpStream,
    unit: &[u8],
    times: Option<u64>,
    count: &AtomicU64,
) -> std::io::Result<()> {
    if unit.is_empty() {
        return Ok(());
    }
    let per = (CHUNK / unit.len()).max(1) as u64;
    let buffer = unit.repeat(per as usize);
    let mut left = times;
    while left != Some(0) {
        let n = left.map_or(per, |l| l.min(per));
        let bytes = &buffer[..n as usize * unit.len()];
        stream.write_all(bytes).await?;
        count.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        left = left.map(|l| l - n);
    }
    Ok(())
}

/// Reads the ClientHello, then sends `first` and one more byte of `drip` every
/// `every`, for ever: a TLS server that never finishes its handshake.
pub async fn tls_trickle(first: &'static [u8], drip: u8, every: Duration) -> Hostile {
    let written = Arc::new(AtomicU64::new(0));
    let count = Arc::clone(&written);
    let addr = serve(move |mut stream| {
        let count = Arc::clone(&count);
        async move {
            let mut hello = [0u8; 4096];
            if !matches!(stream.read(&mut hello).await, Ok(n) if n > 0) || stream.write_all(first).await.is_err() {
                return;
            }
            count.fetch_add(first.len() as u64, Ordering::SeqCst);
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                if stream.write_all(&[drip]).await.is_err() {
                    return;
                }
                count.fetch_add(1, Ordering::SeqCst);
            }
        }
    })
    .await;
    Hostile { addr, written }
}

/// A gzip stream of `zeros` zero bytes, streamed, labelled JSON with
/// `content-encoding: gzip`; also whether a request offered `accept-encoding`.
pub async fn gzip_bomb(zeros: u64) -> (Hostile, Arc<AtomicBool>) {
    let written = Arc::new(AtomicU64::new(0));
    let offered = Arc::new(AtomicBool::new(false));
    let (count, seen) = (Arc::clone(&written), Arc::clone(&offered));
    let addr = serve(move |mut stream| {
        let (count, seen) = (Arc::clone(&count), Arc::clone(&seen));
        async move {
            let Ok(head) = read_head(&mut stream).await else { return };
            if String::from_utf8_lossy(&head).to_ascii_lowercase().contains("\r\naccept-encoding:") {
                seen.store(true, Ordering::SeqCst);
            }
            let start = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-encoding: gzip\r\nconnection: close\r\n\r\n";
            if stream.write_all(start.as_bytes()).await.is_err() {
                return;
            }
            let mut bomb = GzipZeros::new(zeros);
            while let Some(chunk) = bomb.next_chunk() {
                if stream.write_all(&chunk).await.is_err() {
                    return;
                }
                count.fetch_add(chunk.len() as u64, Ordering::SeqCst);
            }
            let _ = stream.shutdown().await;
        }
    })
    .await;
    (Hostile { addr, written }, offered)
}

/// A gzip member holding `1 + 258 × k` zero bytes: one literal zero, then
/// `k` copies of "258 bytes from 1 back" in a fixed-Huffman deflate block
/// (13 bits each, so about 160:1), produced a chunk at a time.
pub struct GzipZeros {
    zeros: u64,
    copies_left: u64,
    bits: BitWriter,
    started: bool,
    done: bool,
}

impl GzipZeros {
    /// At least `zeros` zero bytes (rounded up to `1 + 258 × k`).
    pub fn new(zeros: u64) -> GzipZeros {
        let copies = zeros.saturating_sub(1).div_ceil(258);
        GzipZeros {
            zeros: 1 + 258 * copies,
            copies_left: copies,
            bits: BitWriter::default(),
            started: false,
            done: false,
        }
    }

    /// How many zero bytes the stream inflates to.
    pub fn inflated(&self) -> u64 {
        self.zeros
    }

    pub fn next_chunk(&mut self) -> Option<Vec<u8>> {
        if self.done {
            return None;
        }
        if !self.started {
            self.started = true;
            // ID1 ID2, deflate, no flags, no mtime, no extra flags, OS unknown.
            self.bits.out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
            self.bits.put(1, 1); // BFINAL
            self.bits.put(1, 2); // BTYPE 01: fixed Huffman
            self.bits.code(0x30, 8); // literal 0
        }
        // Length code 285 (258 bytes, Huffman 11000101) then distance code 0 (1 back, 00000).
        let copy = reverse(0xc5, 8);
        while self.copies_left > 0 && self.bits.out.len() < CHUNK {
            self.bits.put(copy, 13);
            self.copies_left -= 1;
        }
        if self.copies_left == 0 {
            self.bits.code(0, 7); // end of block
            self.bits.align();
            self.bits.out.extend_from_slice(&crc32_of_zeros(self.zeros).to_le_bytes());
            self.bits.out.extend_from_slice(&(self.zeros as u32).to_le_bytes());
            self.done = true;
        }
        Some(std::mem::take(&mut self.bits.out))
    }
}

/// Deflate's bit order: values least significant bit first, Huffman codes most significant first.
#[derive(Default)]
struct BitWriter {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl BitWriter {
    fn put(&mut self, value: u32, bits: u32) {
        self.acc |= u64::from(value & ((1 << bits) - 1)) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn code(&mut self, code: u32, bits: u32) {
        self.put(reverse(code, bits), bits);
    }

    fn align(&mut self) {
        if self.n > 0 {
            self.out.push(self.acc as u8);
            (self.acc, self.n) = (0, 0);
        }
    }
}

/// The low `bits` bits of `code` in reverse order.
fn reverse(code: u32, bits: u32) -> u32 {
    (0..bits).fold(0, |r, i| r | (((code >> i) & 1) << (bits - 1 - i)))
}

/// CRC-32 (gzip's) of `n` zero bytes, by squaring the "one more zero byte" operator.
fn crc32_of_zeros(n: u64) -> u32 {
    type Op = [u32; 32];
    let apply = |m: &Op, v: u32| (0..32).filter(|i| (v >> i) & 1 == 1).fold(0, |acc, i| acc ^ m[i]);
    let square = |m: &Op| -> Op { std::array::from_fn(|i| apply(m, m[i])) };
    // One zero bit: shift right, folding the polynomial back in when bit 0 was set.
    let mut bit: Op = std::array::from_fn(|i| if i == 0 { 0xedb8_8320 } else { 1 << (i - 1) });
    for _ in 0..3 {
        bit = square(&bit);
    }
    let (mut crc, mut m, mut n) = (u32::MAX, bit, n);
    while n > 0 {
        if n & 1 == 1 {
            crc = apply(&m, crc);
        }
        m = square(&m);
        n >>= 1;
    }
    !crc
}

/// Runs `handle` on every accepted connection, each in its own task.
async fn serve<H, Fut>(handle: H) -> SocketAddr
where
    H: Fn(TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap_or_else(|e| panic!("bind 127.0.0.1:0: {e}"));
    let addr = listener.local_addr().unwrap_or_else(|e| panic!("local address: {e}"));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream));
        }
    });
    addr
}
