//! The hyper connection builders of one listener, every limit set explicitly, and how a
//! connection's protocol is chosen from its first bytes or its ALPN.

use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;

use crate::proxy::ProxyContext;

/// How a connection's protocol is chosen.
#[derive(Clone, Copy)]
pub enum HttpServer<'a> {
    /// HTTP/1, known from the first bytes: served without detection. The detecting builder
    /// reads the first 24 bytes apart and hands them over; that short first read made hyper
    /// double its read buffer to 16 KiB for the life of the connection.
    Http1(&'a http1::Builder),
    /// HTTP/1.1 or HTTP/2 by the first bytes (prior knowledge), or HTTP/2 only (ALPN `h2`).
    Detect(&'a auto::Builder<TokioExecutor>),
}

/// The HTTP/1 settings, for hyper's own builder and the detecting builder's HTTP/1 part
/// alike (two types with the same methods).
macro_rules! http1_settings {
    ($builder:expr, $config:expr) => {
        $builder
            // Without a timer hyper's header timeout is silently off.
            .timer(TokioTimer::new())
            .header_read_timeout($config.header_timeout)
            // The request head plus pipelined bytes; a longer head is a 431.
            .max_buf_size($config.max_header_bytes.max(8192))
            // Header lines: hyper's default of 100 (more is a 431; `tests/hostile/hostile_h1.rs` sends
            // 500 and checks the 431), not set here: setting it makes hyper fill a 100-slot
            // vector on every request it parses instead of using an uninitialised array,
            // ~6,000 instructions.
            .keep_alive(true)
    };
}

/// What every HTTP/2 connection starts with (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One listener's connection builders: by protocol detection, for HTTP/1 known from the first
/// bytes, and for HTTP/2 agreed by ALPN (which the client must then speak: bytes other than
/// the preface get a GOAWAY, not an HTTP/1 400).
pub struct HttpBuilders {
    any: auto::Builder<TokioExecutor>,
    http1: http1::Builder,
    http2: auto::Builder<TokioExecutor>,
}

impl HttpBuilders {
    pub fn new(ctx: &ProxyContext) -> HttpBuilders {
        let any = http_builder(ctx);
        let mut http1 = http1::Builder::new();
        http1_settings!(http1, ctx.config);
        // `max_buf_size` alone is a soft bound: one read may fill the whole buffer, and a head
        // past it that arrives complete is parsed. This one is checked on every head (a 431).
        // The detecting builder has no such setting; there the bound stays soft.
        http1.max_header_size(ctx.config.max_header_bytes);
        HttpBuilders {
            http2: any.clone().http2_only(),
            http1,
            any,
        }
    }

    /// For a plain connection, by its first bytes (peeked; only the preface's length counts):
    /// what may still become HTTP/2's preface is left to detection.
    pub fn for_first_bytes(&self, first: &[u8]) -> HttpServer<'_> {
        if H2_PREFACE.starts_with(&first[..first.len().min(H2_PREFACE.len())]) {
            HttpServer::Detect(&self.any)
        } else {
            HttpServer::Http1(&self.http1)
        }
    }

    /// Keeps serving after the client half-closes (hyper's default is to close on an EOF
    /// mid-request). For a driver whose client half-closes once its bytes are written.
    pub fn allow_half_close(&mut self) {
        self.any.http1().half_close(true);
        self.http1.half_close(true);
    }

    /// A client that agreed on a protocol by ALPN speaks it (RFC 7301); one that named none
    /// may still send HTTP/2's preface.
    pub fn for_alpn(&self, alpn: Option<&[u8]>) -> HttpServer<'_> {
        match alpn {
            Some(b"h2") => HttpServer::Detect(&self.http2),
            Some(b"http/1.1") => HttpServer::Http1(&self.http1),
            _ => HttpServer::Detect(&self.any),
        }
    }
}

/// HTTP/1.1 and HTTP/2 (prior knowledge) on one port, every limit set explicitly so that a
/// dependency upgrade cannot loosen one silently (reliability spec §3).
fn http_builder(ctx: &ProxyContext) -> auto::Builder<TokioExecutor> {
    let config = &ctx.config;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    http1_settings!(builder.http1(), config);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Rapid reset (CVE-2023-44487): fewer streams to cancel at once (hyper's default 200).
        .max_concurrent_streams(config.max_concurrent_streams)
        // CONTINUATION floods and HPACK bombs end at the same head size HTTP/1 allows.
        .max_header_list_size(config.max_header_bytes as u32)
        // HEADERS+RST_STREAM before we accept the stream (RUSTSEC-2023-0034): GOAWAY past 20.
        .max_pending_accept_reset_streams(Some(20))
        // Streams we had to reset for the client's errors (MadeYouReset); never unlimited.
        .max_local_error_reset_streams(Some(256))
        // Upload buffering per stream and per connection while the upstream is slow: the
        // connection window caps what one client can make us hold.
        .initial_stream_window_size(Some(256 * 1024))
        .initial_connection_window_size(Some(1024 * 1024))
        .adaptive_window(false)
        .max_frame_size(Some(16 * 1024))
        // Response data queued per stream for a client that does not read.
        .max_send_buf_size(64 * 1024)
        // A dead peer (no PING answer) is noticed within 40 s; idle connections with no
        // streams are closed by the connection watchdog at the header timeout.
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}
