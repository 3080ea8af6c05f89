//! HTTP/2 floods (B6, B7): each ends in GOAWAY or a closed connection within a bounded number of
//! frames (or at the body and idle timeouts), a shut window and an idle connection are closed,
//! and a fresh connection still gets a 200.

use super::*;

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
