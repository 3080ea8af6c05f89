//! Backends that answer badly: silence (504 at the server timeout), a reset mid-response, invalid
//! responses (502) and a byte at a time; no such connection is reused.

use super::*;

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

    // The same over HTTP/2: the stream is reset, the client's response or its body fails,
    // never completes (the reset may overtake the head: a reset stream's queued frames are
    // dropped), and the connection serves the next stream.
    let addr = proxy.handle.http_addr.unwrap();
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .resolve("d2.example.com", addr)
        .build()
        .unwrap();
    let url = |path: &str| format!("http://d2.example.com:{}{path}", addr.port());
    for _ in 0..3 {
        if let Ok(response) = h2.get(url("/reset")).send().await {
            assert_eq!(response.version(), reqwest::Version::HTTP_2);
            assert_eq!(response.status(), 200, "the head came through");
            let body = response.text().await;
            assert!(
                body.is_err(),
                "a truncated HTTP/2 body is an error: {body:?}"
            );
        }
        let response = h2.get(url("/next")).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(response.text().await.unwrap().starts_with("good "));
    }
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
