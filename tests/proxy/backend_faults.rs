//! Backend faults (reliability matrix D1–D7 and the keep-alive race), each with a small
//! hand-written backend on loopback that misbehaves in one exact way. Tests wait on counters
//! and answers, never on sleeps; timeouts only bound a failure.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::metric;
use support::proxy::*;
use switchyard::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// Guards against a hang; never a synchronisation point.
const GUARD: Duration = Duration::from_secs(10);

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// What a raw backend does after it read one request.
enum Reply {
    /// Write these bytes, keep the connection for the next request.
    Send(Vec<u8>),
    /// Write these bytes, then close the connection.
    SendAndClose(Vec<u8>),
    /// Write these bytes, then reset the connection (RST, not FIN).
    SendAndReset(Vec<u8>),
    /// Write these bytes one at a time, each in its own write.
    Dribble(Vec<u8>),
    /// Close without answering.
    Close,
    /// Say nothing; keep the connection open until the peer closes it.
    Silent,
}

/// A request as a raw backend saw it: its path, and which of the backend's connections (in
/// accept order, from 1) it came on.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    connection: usize,
    /// Requests before it on the same connection.
    index_on_connection: usize,
}

/// A raw HTTP/1.1 backend: requests without bodies, answered by `reply(seen)`.
struct RawBackend {
    port: u16,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections the proxy closed on us (EOF while we waited for a request).
    closed_by_peer: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl RawBackend {
    async fn start(reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let backend = RawBackend {
            port,
            connections: Arc::default(),
            seen: Arc::default(),
            closed_by_peer: Arc::default(),
            changed: Arc::default(),
        };
        let reply = Arc::new(reply);
        let (connections, seen, closed, changed) = (
            backend.connections.clone(),
            backend.seen.clone(),
            backend.closed_by_peer.clone(),
            backend.changed.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = connections.fetch_add(1, Ordering::SeqCst) + 1;
                let (reply, seen, closed, changed) =
                    (reply.clone(), seen.clone(), closed.clone(), changed.clone());
                tokio::spawn(async move {
                    serve_raw(stream, connection, &*reply, &seen, &closed).await;
                    changed.notify_waiters();
                });
            }
        });
        backend
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until the proxy closed at least `n` connections to this backend.
    async fn wait_closed_by_peer(&self, n: usize) {
        loop {
            let changed = self.changed.notified();
            if self.closed_by_peer.load(Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }
}

async fn serve_raw(
    mut stream: TcpStream,
    connection: usize,
    reply: &(dyn Fn(&Seen) -> Reply + Send + Sync),
    seen: &Mutex<Vec<Seen>>,
    closed_by_peer: &AtomicUsize,
) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::new();
    let mut index_on_connection = 0;
    loop {
        // One request head (the tests send no bodies).
        let head_end = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    closed_by_peer.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        buffer.drain(..head_end);
        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
        let request = Seen {
            path,
            connection,
            index_on_connection,
        };
        index_on_connection += 1;
        let answer = reply(&request);
        seen.lock().unwrap().push(request);
        match answer {
            Reply::Send(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::SendAndClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
            Reply::SendAndReset(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.set_zero_linger();
                return;
            }
            Reply::Dribble(bytes) => {
                for byte in bytes {
                    if stream.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::task::yield_now().await;
                }
            }
            Reply::Close => return,
            Reply::Silent => {
                let mut rest = [0u8; 1024];
                while let Ok(n) = stream.read(&mut rest).await {
                    if n == 0 {
                        break;
                    }
                }
                closed_by_peer.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A complete, well-framed 200 whose body names the connection.
fn good(seen: &Seen) -> Vec<u8> {
    let body = format!("good {}", seen.connection);
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn proxy_to(host: &str, ports: &[u16], config: ProxyConfig) -> Proxy {
    Proxy::start_with(
        json!([app(
            "/faulty",
            free_port(),
            json!({"HAPROXY_0_VHOST": host}),
            ports
        )]),
        config,
    )
    .await
}

/// GET through the proxy: (status, body), or the body error's text when the body broke.
async fn fetch(
    client: &reqwest::Client,
    proxy: &Proxy,
    host: &str,
    path: &str,
) -> (u16, Result<String, String>) {
    let response = client
        .get(proxy.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string());
    (status, body)
}

async fn admin_text(proxy: &Proxy, path: &str) -> String {
    let url = format!("http://{}{path}", proxy.handle.admin_addr);
    reqwest::get(url).await.unwrap().text().await.unwrap()
}

/// D1: no answer within the server timeout → 504, no sooner than the timeout and not much
/// later, and the upstream connection is closed (not left to answer a later request).
#[tokio::test]
async fn d1_a_silent_backend_is_a_504_at_the_server_timeout_and_its_connection_closed() {
    let silent = RawBackend::start(|_| Reply::Silent).await;
    let timeout = Duration::from_millis(400);
    let config = ProxyConfig {
        server_timeout: timeout,
        ..ProxyConfig::default()
    };
    let proxy = proxy_to("d1.example.com", &[silent.port], config).await;
    let started = Instant::now();
    let (status, body) = fetch(&client(), &proxy, "d1.example.com", "/").await;
    let took = started.elapsed();
    assert_eq!(status, 504);
    assert_eq!(body.unwrap(), "504 Gateway Timeout\n");
    assert!(took >= timeout, "504 after {took:?}, before the timeout");
    assert!(
        took < timeout + Duration::from_secs(2),
        "504 after {took:?}"
    );
    guarded(
        "the upstream connection to close",
        silent.wait_closed_by_peer(1),
    )
    .await;
}

/// D2: a reset mid-body never reaches the client as a complete 200, and the connection is
/// not reused: the next request opens a new one and gets a clean answer.
#[tokio::test]
async fn d2_a_reset_mid_response_aborts_the_client_body_and_is_not_pooled() {
    let backend = RawBackend::start(|seen| {
        if seen.path == "/reset" {
            Reply::SendAndReset(
                b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n20 bytes of a body..".to_vec(),
            )
        } else {
            Reply::Send(good(seen))
        }
    })
    .await;
    let proxy = proxy_to("d2.example.com", &[backend.port], ProxyConfig::default()).await;
    let c = client();
    for _ in 0..3 {
        let (status, body) = fetch(&c, &proxy, "d2.example.com", "/reset").await;
        assert_eq!(status, 200, "the head came through");
        assert!(
            body.is_err(),
            "a truncated body is an error, never complete: {body:?}"
        );
        let (status, body) = fetch(&c, &proxy, "d2.example.com", "/next").await;
        assert_eq!(status, 200);
        let body = body.unwrap();
        let seen = backend.seen();
        let reset_on = seen
            .iter()
            .rev()
            .find(|s| s.path == "/reset")
            .unwrap()
            .connection;
        assert_ne!(
            body,
            format!("good {reset_on}"),
            "the reset connection was reused"
        );
        assert!(body.starts_with("good "), "{body}");
    }

    // The same over HTTP/2: the stream is reset (the client's body fails, never completes) and
    // the connection serves the next stream.
    let addr = proxy.handle.http_addr.unwrap();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .resolve("d2.example.com", addr)
        .build()
        .unwrap();
    let url = |path: &str| format!("http://d2.example.com:{}{path}", addr.port());
    for _ in 0..3 {
        let response = h2.get(url("/reset")).send().await.unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_2);
        assert_eq!(response.status(), 200, "the head came through");
        let body = response.text().await;
        assert!(
            body.is_err(),
            "a truncated HTTP/2 body is an error: {body:?}"
        );
        let response = h2.get(url("/next")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().starts_with("good "));
    }
}

/// D3: an endpoint that accepts but never answers is ejected after a few failures in a row
/// (counted in `switchyard_endpoint_ejections_total`, shown down in `/stats`); with two healthy
/// endpoints beside it, no request fails after that.
#[tokio::test]
async fn d3_a_blackholed_endpoint_is_ejected_and_then_costs_no_errors() {
    let silent = RawBackend::start(|_| Reply::Silent).await;
    let (a, b) = (Backend::start("a").await, Backend::start("b").await);
    let config = ProxyConfig {
        server_timeout: Duration::from_millis(200),
        ..ProxyConfig::default()
    };
    let proxy = proxy_to("d3.example.com", &[silent.port, a.port(), b.port()], config).await;
    let c = client();
    let mut errors_before = 0;
    let mut requests = 0;
    while metric(
        &admin_text(&proxy, "/metrics").await,
        "switchyard_endpoint_ejections_total",
    ) < 1.0
    {
        let (status, _) = fetch(&c, &proxy, "d3.example.com", "/").await;
        requests += 1;
        if status != 200 {
            assert_eq!(status, 504, "a silent endpoint times out");
            errors_before += 1;
        }
        assert!(requests < 50, "never ejected after {requests} requests");
    }
    assert_eq!(errors_before, 3, "ejected after three failures in a row");
    let stats: serde_json::Value =
        serde_json::from_str(&admin_text(&proxy, "/stats").await).unwrap();
    let silent_addr = format!("127.0.0.1:{}", silent.port);
    let endpoint = stats["backends"][0]["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["addr"] == silent_addr.as_str())
        .unwrap()
        .clone();
    assert_eq!(endpoint["down"], true, "{endpoint}");
    let reached = silent.seen().len();
    let mut served = Vec::new();
    for _ in 0..20 {
        let (status, body) = fetch(&c, &proxy, "d3.example.com", "/").await;
        assert_eq!(status, 200, "an error after the ejection: {body:?}");
        served.push(status);
    }
    assert_eq!(
        silent.seen().len(),
        reached,
        "no request reached it after the ejection"
    );
    assert!(
        a.hits() > 0 && b.hits() > 0,
        "both healthy endpoints share the load"
    );
}

/// D5: one app whose backend streams slowly never holds up another app: while its response is
/// still streaming, fifty requests to the other app complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn d5_a_slow_streaming_app_does_not_slow_another_app() {
    // The slow backend sends its body in steps, each only when the test allows it.
    let step = Arc::new(tokio::sync::Semaphore::new(0));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_port = listener.local_addr().unwrap().port();
    let gate = step.clone();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = s.read(&mut buf).await;
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 30\r\n\r\n")
            .await
            .unwrap();
        for _ in 0..3 {
            gate.acquire().await.unwrap().forget();
            s.write_all(b"0123456789").await.unwrap();
        }
        let _ = s.read(&mut buf).await;
    });
    let fast = Backend::start("fast").await;
    let proxy = Proxy::start(json!([
        app(
            "/slow",
            free_port(),
            json!({"HAPROXY_0_VHOST": "slow.example.com"}),
            &[slow_port]
        ),
        app(
            "/fast",
            free_port(),
            json!({"HAPROXY_0_VHOST": "fast.example.com"}),
            &[fast.port()]
        ),
    ]))
    .await;
    let mut slow = client()
        .get(proxy.url("/"))
        .header("host", "slow.example.com")
        .send()
        .await
        .unwrap();
    step.add_permits(1);
    let first = guarded("the first slow chunk", slow.chunk())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"0123456789");

    // The slow response is mid-stream (its backend waits for the next permit).
    let mut others = Vec::new();
    for _ in 0..50 {
        let url = proxy.url("/");
        others.push(tokio::spawn(async move {
            get(&fresh_client(), &url, "fast.example.com").await
        }));
    }
    for other in others {
        let (status, backend, _) = guarded("the fast app", other).await.unwrap();
        assert_eq!((status, backend.as_str()), (200, "fast"));
    }
    assert_eq!(
        step.available_permits(),
        0,
        "the slow stream was still going"
    );
    step.add_permits(2);
    let mut rest = Vec::new();
    while let Some(chunk) = guarded("the slow body", slow.chunk()).await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(
        rest, b"01234567890123456789",
        "the slow body completes intact"
    );
}

/// D6: a response with ambiguous framing is a 502 and its connection is never used again;
/// the next request goes on a new connection and gets a clean answer. Bytes after a complete
/// response (a smuggled second response) never reach any client.
#[tokio::test]
async fn d6_invalid_responses_are_502_and_their_connection_never_reused() {
    let backend = RawBackend::start(|seen| {
        let bad: &[u8] = match seen.path.as_str() {
            "/cl-te" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
            "/two-cl" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
            "/two-cl-differ" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
            "/cl-list" => b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
            "/bad-cl" => b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello",
            "/negative-cl" => b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\nhello",
            "/garbage" => b"HTTP/1.1 2OO OK\r\nContent-Length: 5\r\n\r\nhello",
            "/not-http" => b"this is not HTTP at all\r\n\r\n",
            "/smuggled" => b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloHTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nsmuggled",
            _ => return Reply::Send(good(seen)),
        };
        Reply::Send(bad.to_vec())
    })
    .await;
    let proxy = proxy_to("d6.example.com", &[backend.port], ProxyConfig::default()).await;
    let c = client();
    for path in [
        "/cl-te",
        "/two-cl",
        "/two-cl-differ",
        "/cl-list",
        "/bad-cl",
        "/negative-cl",
        "/garbage",
        "/not-http",
        "/smuggled",
    ] {
        let (status, body) = fetch(&c, &proxy, "d6.example.com", path).await;
        if path == "/smuggled" {
            // The first response is well-framed; what follows it is the fault.
            assert!(status == 200 || status == 502, "{path}: {status}");
        } else {
            assert_eq!(status, 502, "{path}: {body:?}");
            assert_eq!(body.as_deref(), Ok("502 Bad Gateway\n"), "{path}");
        }
        let bad_on = backend
            .seen()
            .iter()
            .rev()
            .find(|s| s.path == path)
            .unwrap()
            .connection;
        for _ in 0..3 {
            let (status, body) = fetch(&c, &proxy, "d6.example.com", "/next").await;
            let body = body.unwrap();
            assert_eq!(status, 200, "after {path}: {body}");
            assert!(
                body.starts_with("good "),
                "after {path}, a poisoned answer: {body}"
            );
            assert_ne!(
                body,
                format!("good {bad_on}"),
                "after {path}: the connection was reused"
            );
        }
    }
}

/// D7: a backend that writes its responses one byte per write is still proxied correctly,
/// both Content-Length and chunked, on one keep-alive connection.
#[tokio::test]
async fn d7_a_byte_at_a_time_backend_gives_correct_responses() {
    let body: String = (0..300)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    let (sized, chunked) = (body.clone(), body.clone());
    let backend = RawBackend::start(move |seen| {
        let response = if seen.path == "/chunked" {
            format!(
                "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Seen: {}\r\n\r\n{:x}\r\n{}\r\n{:x}\r\n{}\r\n0\r\n\r\n",
                seen.index_on_connection,
                100,
                &chunked[..100],
                200,
                &chunked[100..]
            )
        } else {
            format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{sized}", sized.len())
        };
        Reply::Dribble(response.into_bytes())
    })
    .await;
    let proxy = proxy_to("d7.example.com", &[backend.port], ProxyConfig::default()).await;
    let c = client();
    for i in 0..6 {
        let path = if i % 2 == 0 { "/sized" } else { "/chunked" };
        let (status, got) = fetch(&c, &proxy, "d7.example.com", path).await;
        assert_eq!(status, 200, "{path}");
        assert_eq!(got.unwrap(), body, "{path}");
    }
    assert_eq!(
        backend.connections(),
        1,
        "one upstream connection, kept alive throughout"
    );
}

/// The keep-alive race, made certain: the backend answers the first request on a connection
/// and closes it when the second arrives, without answering (its close crossed our request).
/// A bodiless request is sent once more on a fresh connection: no client sees a 502.
#[tokio::test]
async fn a_reused_connection_closed_by_the_backend_is_retried_on_a_fresh_one() {
    let backend = RawBackend::start(|seen| match seen.index_on_connection {
        0 => Reply::Send(good(seen)),
        _ => Reply::Close,
    })
    .await;
    let proxy = proxy_to("race.example.com", &[backend.port], ProxyConfig::default()).await;
    let c = client();
    for _ in 0..20 {
        let (status, body) = fetch(&c, &proxy, "race.example.com", "/").await;
        assert_eq!(status, 200, "{body:?}");
    }
    for method in [
        reqwest::Method::HEAD,
        reqwest::Method::DELETE,
        reqwest::Method::POST,
    ] {
        let response = c
            .request(method.clone(), proxy.url("/"))
            .header("host", "race.example.com")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{method} without a body");
    }
    let dropped = backend
        .seen()
        .iter()
        .filter(|s| s.index_on_connection > 0)
        .count();
    assert!(
        dropped > 0,
        "the race was exercised: a reused connection was closed on a request"
    );
}

/// The ordinary shape of the race: the backend closes every connection right after each
/// response, without `Connection: close`. Back-to-back requests never see a 502.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_closing_every_keep_alive_connection_causes_no_errors() {
    let backend = RawBackend::start(|seen| Reply::SendAndClose(good(seen))).await;
    let proxy = proxy_to("close.example.com", &[backend.port], ProxyConfig::default()).await;
    let c = client();
    let mut failed = 0;
    for _ in 0..200 {
        let (status, _) = fetch(&c, &proxy, "close.example.com", "/").await;
        if status != 200 {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "requests failed by the keep-alive race");
    assert!(
        backend.connections() >= 200,
        "each response closed its connection"
    );
}
