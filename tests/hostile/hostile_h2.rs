//! HTTP/2 floods and h2→h1 downgrade vectors (reliability matrix A2, B6, B7), with frames built
//! by hand over h2c prior knowledge: every flood ends in GOAWAY or a closed connection within a
//! bounded number of frames and a fresh connection still gets a 200; every malformed request is
//! reset or refused, and the recorder behind the proxy never sees an ambiguous request.

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

/// A flood: name, client SETTINGS payload, frames sent first, most frames, the i-th frame.
type FloodSpec = (
    &'static str,
    Vec<u8>,
    Vec<u8>,
    usize,
    Box<dyn Fn(usize) -> Vec<u8> + Send>,
);

/// The outcome of one flood.
struct Flood {
    frames_sent: usize,
    goaway: Option<u32>,
    closed: bool,
    /// Streams the server sent HEADERS on.
    answered: Vec<u32>,
}

/// Sends `next(i)` frames until the server sends GOAWAY or closes, or `max` frames went out.
async fn flood(
    addr: SocketAddr,
    settings: &[u8],
    opening: Vec<u8>,
    max: usize,
    next: impl Fn(usize) -> Vec<u8>,
) -> Flood {
    let (read, mut write) = connect(addr, settings).await;
    let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
    let ended = Arc::new(AtomicBool::new(false));
    let reader = tokio::spawn({
        let (seen, ended) = (seen.clone(), ended.clone());
        async move { read_frames(read, &seen, &ended).await }
    });
    let _ = write.write_all(&opening).await;
    let sent = AtomicUsize::new(0);
    let mut batch = Vec::new();
    for i in 0..max {
        if ended.load(Ordering::SeqCst) {
            break;
        }
        batch.extend(next(i));
        sent.fetch_add(1, Ordering::Relaxed);
        if batch.len() >= 16 * 1024 || i + 1 == max {
            if write.write_all(&batch).await.is_err() {
                break;
            }
            batch.clear();
        }
    }
    // Whatever the server decided, it decides within a bound after the flood stops.
    let _ = tokio::time::timeout(Duration::from_secs(5), reader).await;
    let s = seen.lock().unwrap();
    Flood {
        frames_sent: sent.load(Ordering::Relaxed),
        goaway: s.goaway,
        closed: s.closed,
        answered: s.headers.iter().map(|&(stream, _)| stream).collect(),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_end_in_goaway_or_close_within_bounded_frames() {
    let (_recorder, proxy) = start().await;
    let addr = proxy.handle.http_addr.unwrap();
    let bomb_value = vec![b'b'; 4000];
    let mut floods: Vec<FloodSpec> = Vec::new();
    floods.push((
        "rapid_reset",
        Vec::new(),
        Vec::new(),
        20_000,
        Box::new(|i| {
            let id = 1 + 2 * i as u32;
            let mut f = frame(HEADERS, END_STREAM | END_HEADERS, id, &get_block("/v/rr"));
            f.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
            f
        }),
    ));
    floods.push((
        "continuation",
        Vec::new(),
        frame(HEADERS, END_STREAM, 1, &get_block("/v/cont")),
        20_000,
        Box::new(|_| frame(CONTINUATION, 0, 1, &block(&[(b"x-filler", &[b'c'; 8000])]))),
    ));
    // One 4000-byte entry in the dynamic table, then headers that each repeat it 16 000 times
    // (64 MB decoded from 16 KB).
    let mut insert = Vec::new();
    insert.push(0x40);
    hpack_int(&mut insert, 0, 7, 7);
    insert.extend_from_slice(b"x-bomb1");
    hpack_int(&mut insert, 0, 7, bomb_value.len());
    insert.extend_from_slice(&bomb_value);
    let mut first = get_block("/v/bomb");
    first.extend(&insert);
    floods.push((
        "hpack_bomb",
        Vec::new(),
        frame(HEADERS, END_STREAM | END_HEADERS, 1, &first),
        2_000,
        Box::new(|i| {
            let mut b = get_block("/v/bomb");
            b.extend(std::iter::repeat_n(0xbe, 16_000 - b.len()));
            frame(HEADERS, END_STREAM | END_HEADERS, 3 + 2 * i as u32, &b)
        }),
    ));
    let post = block(&[
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", b"/v/data"),
        (b":authority", b"open.test"),
    ]);
    floods.push((
        "empty_data",
        Vec::new(),
        frame(HEADERS, END_HEADERS, 1, &post),
        100_000,
        Box::new(|_| frame(DATA, 0, 1, &[])),
    ));
    // h2 answers PING and SETTINGS one by one and does not end the connection for them; with no
    // stream open it gets the idle GOAWAY (NO_ERROR) at the idle timeout instead.
    floods.push((
        "ping",
        Vec::new(),
        Vec::new(),
        100_000,
        Box::new(|i| frame(PING, 0, 0, &(i as u64).to_be_bytes())),
    ));
    floods.push((
        "settings",
        Vec::new(),
        Vec::new(),
        100_000,
        Box::new(|_| frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff])),
    ));

    let mut failures = Vec::new();
    for (name, settings, opening, max, next) in floods {
        let started = Instant::now();
        let outcome = flood(addr, &settings, opening, max, next).await;
        println!(
            "{name:12} frames sent {:6} (max {max}); GOAWAY {:?}; closed {}; {:.2?}",
            outcome.frames_sent,
            outcome.goaway,
            outcome.closed,
            started.elapsed()
        );
        // h2 itself ends these before the flood runs out; PING and SETTINGS are answered, and
        // only the idle GOAWAY (no stream open) ends those connections.
        let answered_by_h2 = !matches!(name, "ping" | "settings");
        if answered_by_h2 && outcome.frames_sent >= max {
            failures.push(format!("{name}: not ended within {max} frames"));
        }
        if !answered_by_h2 && outcome.goaway != Some(0) {
            failures.push(format!("{name}: no idle GOAWAY: {:?}", outcome.goaway));
        }
        if outcome.goaway.is_none() && !outcome.closed {
            failures.push(format!(
                "{name}: neither GOAWAY nor close after {} frames",
                outcome.frames_sent
            ));
        }
        fresh_h2_ok(addr).await;
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// PING and SETTINGS floods while a request stream is held open (its body never comes): h2
/// answers every frame and never ends the connection for them, so the proxy's own limits must:
/// the stalled body gets its 408 at the body timeout, and the connection, with no stream left,
/// its idle GOAWAY. The flood is sent as fast as the server reads, with no frame limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ping_and_settings_floods_with_a_stream_open_end_at_the_body_and_idle_timeouts() {
    let recorder = Recorder::start_with(vec![b'x'; 1024]).await;
    let timeout = Duration::from_millis(1000);
    let config = ProxyConfig {
        header_timeout: timeout,
        client_body_timeout: timeout,
        client_send_timeout: timeout,
        ..ProxyConfig::default()
    };
    let proxy = proxy_for(&recorder, config).await;
    let addr = proxy.handle.http_addr.unwrap();
    let post = block(&[
        (b":method", b"POST"),
        (b":scheme", b"http"),
        (b":path", b"/v/held"),
        (b":authority", b"open.test"),
    ]);
    type Next = Box<dyn Fn(usize) -> Vec<u8>>;
    let floods: [(&str, Next); 2] = [
        (
            "ping",
            Box::new(|i| frame(PING, 0, 0, &(i as u64).to_be_bytes())),
        ),
        (
            "settings",
            Box::new(|_| frame(SETTINGS, 0, 0, &[0, 4, 0, 0, 0xff, 0xff])),
        ),
    ];
    for (name, next) in floods {
        let started = Instant::now();
        let opening = frame(HEADERS, END_HEADERS, 1, &post);
        let outcome = flood(addr, &[], opening, usize::MAX, next).await;
        let took = started.elapsed();
        println!(
            "{name} with a stream open: frames sent {}; answered {:?}; GOAWAY {:?}; closed {}; {took:.2?}",
            outcome.frames_sent, outcome.answered, outcome.goaway, outcome.closed
        );
        assert!(
            outcome.answered.contains(&1),
            "{name}: the held stream got no answer"
        );
        assert!(
            outcome.goaway == Some(0) || outcome.closed,
            "{name}: neither the idle GOAWAY nor a close"
        );
        // Body timeout, then idle timeout, then the close grace; the guard is loose.
        assert!(
            took < Duration::from_secs(15),
            "{name}: ran on for {took:?}"
        );
        fresh_h2_ok(addr).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shut_window_and_an_idle_connection_are_closed() {
    let (_recorder, proxy) = start().await;
    let addr = proxy.handle.http_addr.unwrap();

    // Zero window: INITIAL_WINDOW_SIZE 0, a 4 MiB response pending, no WINDOW_UPDATE ever.
    let started = Instant::now();
    let (read, mut write) = connect(addr, &[0, 4, 0, 0, 0, 0]).await;
    write
        .write_all(&frame(
            HEADERS,
            END_STREAM | END_HEADERS,
            1,
            &get_block("/v/big"),
        ))
        .await
        .unwrap();
    let seen = std::sync::Mutex::new(Seen::default());
    let done = AtomicBool::new(false);
    let ended = tokio::time::timeout(Duration::from_secs(5), read_frames(read, &seen, &done)).await;
    let (frames, goaway, first_head) = {
        let s = seen.lock().unwrap();
        (s.frames, s.goaway, s.headers.first().map(|h| h.1))
    };
    println!(
        "zero window: closed {} after {:.2?}, {frames} frames received, GOAWAY {goaway:?}",
        ended.is_ok(),
        started.elapsed(),
    );
    assert!(
        ended.is_ok(),
        "a response stuck behind a shut window holds the connection"
    );
    assert_eq!(first_head, Some(0x88), "the 200 head was sent");
    fresh_h2_ok(addr).await;

    // Idle: a connection with no stream gets GOAWAY (NO_ERROR) at the idle timeout.
    let started = Instant::now();
    let (read, _write) = connect(addr, &[]).await;
    let seen = std::sync::Mutex::new(Seen::default());
    let ended = tokio::time::timeout(Duration::from_secs(5), read_frames(read, &seen, &done)).await;
    let s = seen.lock().unwrap();
    println!(
        "idle h2: GOAWAY {:?}, closed after {:.2?}",
        s.goaway,
        started.elapsed()
    );
    assert!(ended.is_ok(), "an idle HTTP/2 connection stays open");
    assert_eq!(s.goaway, Some(0), "a polite GOAWAY first");
    assert!(started.elapsed() >= Duration::from_millis(1000));
}

/// One downgrade vector: a request HTTP/2 allows to be expressed but HTTP/1 must never see.
struct Downgrade {
    name: &'static str,
    fields: Vec<(Vec<u8>, Vec<u8>)>,
    /// A DATA frame after the head (with END_STREAM), when the vector has a body.
    body: Option<&'static [u8]>,
    /// Forwarding it cleaned up is acceptable (the offending part is dropped).
    may_normalise: bool,
}

fn downgrade_vectors() -> Vec<Downgrade> {
    let base = |name: &'static str,
                method: &[u8],
                path: &[u8],
                authority: &[u8],
                extra: &[(&[u8], &[u8])],
                body: Option<&'static [u8]>,
                may_normalise: bool| {
        let mut fields: Vec<(Vec<u8>, Vec<u8>)> = vec![
            (b":method".to_vec(), method.to_vec()),
            (b":scheme".to_vec(), b"http".to_vec()),
            (b":path".to_vec(), path.to_vec()),
            (b":authority".to_vec(), authority.to_vec()),
        ];
        fields.extend(extra.iter().map(|(n, v)| (n.to_vec(), v.to_vec())));
        Downgrade {
            name,
            fields,
            body,
            may_normalise,
        }
    };
    let p = |name: &str| format!("/v/{name}").into_bytes();
    vec![
        base(
            "te_chunked",
            b"POST",
            &p("te_chunked"),
            b"open.test",
            &[(b"transfer-encoding", b"chunked")],
            Some(b"0\r\n\r\nGET /smuggled/te HTTP/1.1\r\nHost: open.test\r\n\r\n"),
            false,
        ),
        base(
            "te_gzip",
            b"GET",
            &p("te_gzip"),
            b"open.test",
            &[(b"te", b"gzip")],
            None,
            false,
        ),
        base(
            "te_trailers",
            b"GET",
            &p("te_trailers"),
            b"open.test",
            &[(b"te", b"trailers")],
            None,
            true,
        ),
        base(
            "cl_mismatch_short",
            b"POST",
            &p("cl_mismatch_short"),
            b"open.test",
            &[(b"content-length", b"100")],
            Some(b"hello"),
            false,
        ),
        base(
            "cl_mismatch_long",
            b"POST",
            &p("cl_mismatch_long"),
            b"open.test",
            &[(b"content-length", b"1")],
            Some(b"GET /smuggled/cl HTTP/1.1\r\nHost: open.test\r\n\r\n"),
            false,
        ),
        base(
            "connection_header",
            b"GET",
            &p("connection_header"),
            b"open.test",
            &[(b"connection", b"keep-alive")],
            None,
            false,
        ),
        base(
            "keep_alive_header",
            b"GET",
            &p("keep_alive_header"),
            b"open.test",
            &[(b"keep-alive", b"timeout=5")],
            None,
            false,
        ),
        base(
            "upgrade_header",
            b"GET",
            &p("upgrade_header"),
            b"open.test",
            &[(b"upgrade", b"websocket")],
            None,
            false,
        ),
        base(
            "crlf_in_value",
            b"GET",
            &p("crlf_in_value"),
            b"open.test",
            &[(b"x-a", b"a\r\nTransfer-Encoding: chunked")],
            None,
            false,
        ),
        base(
            "lf_in_value",
            b"GET",
            &p("lf_in_value"),
            b"open.test",
            &[(b"x-a", b"a\nx-b: b")],
            None,
            false,
        ),
        base(
            "nul_in_value",
            b"GET",
            &p("nul_in_value"),
            b"open.test",
            &[(b"x-a", b"a\0b")],
            None,
            false,
        ),
        base(
            "crlf_in_name",
            b"GET",
            &p("crlf_in_name"),
            b"open.test",
            &[(b"x-a\r\nx-b", b"b")],
            None,
            false,
        ),
        base(
            "colon_in_name",
            b"GET",
            &p("colon_in_name"),
            b"open.test",
            &[(b"x-a:b", b"b")],
            None,
            false,
        ),
        base(
            "uppercase_name",
            b"GET",
            &p("uppercase_name"),
            b"open.test",
            &[(b"X-Upper", b"1")],
            None,
            false,
        ),
        base(
            "space_in_path",
            b"GET",
            b"/v/space_in_path HTTP/1.1\r\nHost: open.test\r\n\r\nGET /smuggled/path",
            b"open.test",
            &[],
            None,
            false,
        ),
        base(
            "crlf_in_path",
            b"GET",
            b"/v/crlf_in_path\r\nX-A: b",
            b"open.test",
            &[],
            None,
            false,
        ),
        base(
            "crlf_in_method",
            b"GET /smuggled/method HTTP/1.1\r\nHost: open.test\r\n\r\nGET",
            &p("crlf_in_method"),
            b"open.test",
            &[],
            None,
            false,
        ),
        base(
            "space_in_method",
            b"G ET",
            &p("space_in_method"),
            b"open.test",
            &[],
            None,
            false,
        ),
        base(
            "crlf_in_authority",
            b"GET",
            &p("crlf_in_authority"),
            b"open.test\r\nX-A: b",
            &[],
            None,
            false,
        ),
        base(
            "userinfo_in_authority",
            b"GET",
            &p("userinfo_in_authority"),
            b"evil@open.test",
            &[],
            None,
            false,
        ),
        base(
            "host_differs",
            b"GET",
            &p("host_differs"),
            b"open.test",
            &[(b"host", b"other.test")],
            None,
            true,
        ),
        base(
            "host_invalid",
            b"GET",
            &p("host_invalid"),
            b"open.test",
            &[(b"host", b"a b")],
            None,
            false,
        ),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn downgrade_vectors_are_reset_or_refused_and_nothing_ambiguous_reaches_http1() {
    let (recorder, proxy) = start().await;
    let addr = proxy.handle.http_addr.unwrap();
    let vectors = downgrade_vectors();
    let count = vectors.len();
    let mut failures = Vec::new();
    for vector in &vectors {
        let (read, mut write) = connect(addr, &[]).await;
        let fields: Vec<(&[u8], &[u8])> = vector
            .fields
            .iter()
            .map(|(n, v)| (&n[..], &v[..]))
            .collect();
        let head_flags = if vector.body.is_some() {
            END_HEADERS
        } else {
            END_HEADERS | END_STREAM
        };
        let mut bytes = frame(HEADERS, head_flags, 1, &block(&fields));
        if let Some(body) = vector.body {
            bytes.extend(frame(DATA, END_STREAM, 1, body));
        }
        write.write_all(&bytes).await.unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let ended = Arc::new(AtomicBool::new(false));
        let reader = tokio::spawn({
            let (seen, ended) = (seen.clone(), ended.clone());
            async move { read_frames(read, &seen, &ended).await }
        });
        // Wait (bounded) for the stream's answer: a RST_STREAM, a response head, or the end.
        let answered = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                {
                    let s = seen.lock().unwrap();
                    if s.closed || s.goaway.is_some() || !s.rst.is_empty() || !s.headers.is_empty()
                    {
                        return;
                    }
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await;
        reader.abort();
        let s = seen.lock().unwrap();
        let outcome = match (s.rst.first(), s.headers.first(), s.goaway) {
            (Some((1, code)), _, _) => format!("RST_STREAM {code}"),
            (_, Some((1, 0x8c)), _) => "400".to_owned(),
            (_, Some((1, 0x88)), _) if vector.may_normalise => "200 (normalised)".to_owned(),
            (_, _, Some(code)) => format!("GOAWAY {code}"),
            (_, Some((1, other)), _) => format!("response head {other:#04x}"),
            _ => format!("nothing ({answered:?})"),
        };
        let ok = outcome.starts_with("RST_STREAM")
            || outcome == "400"
            || outcome.starts_with("GOAWAY")
            || outcome.starts_with("200");
        println!("{:24} {outcome}", vector.name);
        if !ok {
            failures.push(format!("{}: {outcome}", vector.name));
        }
    }
    for message in recorder.messages() {
        let head = String::from_utf8_lossy(&message.head).to_ascii_lowercase();
        let name = message
            .request_line
            .split('/')
            .nth(2)
            .unwrap_or("")
            .split(' ')
            .next()
            .unwrap_or("");
        let allowed = vectors.iter().any(|v| v.name == name && v.may_normalise);
        if !allowed
            || !message.problems.is_empty()
            || message.request_line.contains("smuggled")
            || head.contains("\r\nte:")
            || head.contains("other.test")
        {
            failures.push(format!(
                "reached the backend: {:?} {:?}",
                message.request_line, message.problems
            ));
        }
    }
    println!(
        "{count} downgrade vectors, {} failures, {} requests reached the recorder",
        failures.len(),
        recorder.messages().len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}
