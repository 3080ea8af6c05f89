//! HTTP/2 floods and h2→h1 downgrade vectors (reliability matrix A2, B6, B7), with frames built
//! by hand over h2c prior knowledge: every flood ends in GOAWAY or a closed connection within a
//! bounded number of frames and a fresh connection still gets a 200; every malformed request is
//! reset or refused, and the recorder behind the proxy never sees an ambiguous request.
//!
//! The frame and HPACK builders and the h2c client are here; the tests are in `floods` and
//! `downgrade`.

use crate::hostile::recorder;
use crate::support;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use recorder::{proxy_for, Recorder};
use support::proxy::*;
use switchyard::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::OwnedReadHalf;
use tokio::net::TcpStream;

mod downgrade;
mod floods;

const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
const DATA: u8 = 0;
const HEADERS: u8 = 1;
const RST_STREAM: u8 = 3;
const SETTINGS: u8 = 4;
const PING: u8 = 6;
const GOAWAY: u8 = 7;
const CONTINUATION: u8 = 9;
const END_STREAM: u8 = 1;
const END_HEADERS: u8 = 4;

fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An HPACK integer with an `n`-bit prefix whose high bits are `first`.
fn hpack_int(out: &mut Vec<u8>, first: u8, n: u32, mut value: usize) {
    let max = (1usize << n) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128 + 128) as u8);
        value /= 128;
    }
    out.push(value as u8);
}

/// A literal header field without indexing, new name, no Huffman: trivially hand-encoded.
fn literal(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.push(0x00);
    hpack_int(out, 0, 7, name.len());
    out.extend_from_slice(name);
    hpack_int(out, 0, 7, value.len());
    out.extend_from_slice(value);
}

fn block(fields: &[(&[u8], &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in fields {
        literal(&mut out, name, value);
    }
    out
}

fn get_block(path: &str) -> Vec<u8> {
    block(&[
        (b":method", b"GET"),
        (b":scheme", b"http"),
        (b":path", path.as_bytes()),
        (b":authority", b"open.test"),
    ])
}

/// What the server sent on a connection, as the reader task saw it.
#[derive(Default)]
struct Seen {
    goaway: Option<u32>,
    closed: bool,
    frames: usize,
    rst: Vec<(u32, u32)>,
    /// (stream, first byte of the header block).
    headers: Vec<(u32, u8)>,
}

async fn connect(
    addr: SocketAddr,
    settings: &[u8],
) -> (OwnedReadHalf, tokio::net::tcp::OwnedWriteHalf) {
    let stream = TcpStream::connect(addr).await.unwrap();
    let (read, mut write) = stream.into_split();
    let mut hello = PREFACE.to_vec();
    hello.extend(frame(SETTINGS, 0, 0, settings));
    write.write_all(&hello).await.unwrap();
    (read, write)
}

/// Reads frames until the connection closes or `stop` says so; records what matters.
async fn read_frames(mut read: OwnedReadHalf, seen: &std::sync::Mutex<Seen>, goaway: &AtomicBool) {
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        while buf.len() >= 9 {
            let len =
                (usize::from(buf[0]) << 16) | (usize::from(buf[1]) << 8) | usize::from(buf[2]);
            if buf.len() < 9 + len {
                break;
            }
            let (kind, stream) = (
                buf[3],
                u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]) & 0x7fff_ffff,
            );
            let payload = &buf[9..9 + len];
            let mut s = seen.lock().unwrap();
            s.frames += 1;
            match kind {
                GOAWAY if len >= 8 => {
                    s.goaway = Some(u32::from_be_bytes([
                        payload[4], payload[5], payload[6], payload[7],
                    ]));
                    goaway.store(true, Ordering::SeqCst);
                }
                RST_STREAM if len >= 4 => s.rst.push((
                    stream,
                    u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]]),
                )),
                HEADERS if len >= 1 => s.headers.push((stream, payload[0])),
                _ => {}
            }
            drop(s);
            buf.drain(..9 + len);
        }
        match read.read(&mut chunk).await {
            Ok(0) | Err(_) => {
                seen.lock().unwrap().closed = true;
                goaway.store(true, Ordering::SeqCst);
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn start() -> (Recorder, Proxy) {
    let recorder = Recorder::start_with(vec![b'x'; 4 << 20]).await;
    let config = ProxyConfig {
        header_timeout: Duration::from_millis(1000),
        client_send_timeout: Duration::from_millis(1000),
        ..ProxyConfig::default()
    };
    let proxy = proxy_for(&recorder, config).await;
    (recorder, proxy)
}

/// A fresh HTTP/2 connection gets a 200.
async fn fresh_h2_ok(addr: SocketAddr) {
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .resolve("open.test", addr)
        .build()
        .unwrap();
    let response = h2
        .get(format!("http://open.test:{}/v/fresh", addr.port()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}
