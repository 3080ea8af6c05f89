//! HTTP/2 clients in front of a plain HTTP/1 backend (bodiless requests go over the native
//! path's sockets): a scripted raw upstream behind, so that framing, reuse and the bytes a
//! backend should not have sent are checked exactly.

use crate::support;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use support::raw::*;

/// One request's answer as an HTTP/2 client read it.
struct H2Answer {
    status: u16,
    headers: http::HeaderMap,
    body: Result<Bytes, String>,
    trailers: Option<http::HeaderMap>,
}

type H2Sender = hyper::client::conn::http2::SendRequest<Empty<Bytes>>;

/// An HTTP/2 (prior knowledge) connection to the session's proxy.
async fn h2_client(session: &Session) -> H2Sender {
    let addr = session.proxy.handle.http_addr.unwrap();
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

async fn h2_send(sender: &mut H2Sender, method: &str, path: &str) -> H2Answer {
    let request = http::Request::builder()
        .method(method)
        .uri(format!("http://raw.test{path}"))
        .body(Empty::new())
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let (body, trailers) = match response.into_body().collect().await {
        Ok(collected) => {
            let trailers = collected.trailers().cloned();
            (Ok(collected.to_bytes()), trailers)
        }
        Err(err) => (Err(err.to_string()), None),
    };
    H2Answer {
        status,
        headers,
        body,
        trailers,
    }
}

#[tokio::test]
async fn http1_and_http2_clients_share_one_upstream_connection() {
    let upstream = RawUpstream::start(|_, _, head| Reply::Send(ok(path_of(head)))).await;
    let mut session = Session::to(upstream.port).await;
    let answer = session
        .send("GET /h1 HTTP/1.1\r\nHost: raw.test\r\n\r\n")
        .await;
    assert_eq!(answer.body, b"/h1");
    let mut h2 = h2_client(&session).await;
    for i in 0..3 {
        let answer = h2_send(&mut h2, "GET", &format!("/h2/{i}")).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body.unwrap(), format!("/h2/{i}"));
    }
    assert_eq!(
        upstream.connections(),
        1,
        "the HTTP/2 streams took the connection the HTTP/1 request left"
    );
    let heads = upstream.heads();
    let last = &heads[3];
    assert!(last.starts_with("GET /h2/2 HTTP/1.1\r\n"), "{last}");
    assert!(last.contains("\r\nhost: raw.test\r\n"), "{last}");
    assert!(
        last.contains("\r\nx-forwarded-for: 127.0.0.1\r\n"),
        "{last}"
    );
}

#[tokio::test]
async fn a_chunked_response_reaches_an_http2_client_decoded_with_its_trailers() {
    const CHUNKED: &str = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
    let upstream = RawUpstream::start(|_, _, _| {
        let head = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: x-trailer\r\n\r\n";
        Reply::Send(format!("{head}{CHUNKED}").into_bytes())
    })
    .await;
    let session = Session::to(upstream.port).await;
    let mut h2 = h2_client(&session).await;
    for _ in 0..2 {
        let answer = h2_send(&mut h2, "GET", "/").await;
        assert_eq!(answer.status, 200);
        assert!(!answer.headers.contains_key("transfer-encoding"));
        assert_eq!(answer.body.unwrap(), "hello world");
        let trailers = answer.trailers.expect("the trailers");
        assert_eq!(trailers.get("x-trailer").unwrap(), "1");
    }
    assert_eq!(upstream.connections(), 1, "reused after the chunked body");
}

#[tokio::test]
async fn bytes_after_a_response_never_reach_an_http2_client() {
    let upstream = RawUpstream::start(|_, _, head| {
        let mut reply = ok(path_of(head));
        reply.extend_from_slice(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nstray!");
        Reply::Send(reply)
    })
    .await;
    let session = Session::to(upstream.port).await;
    let mut h2 = h2_client(&session).await;
    for path in ["/one", "/two", "/three"] {
        let answer = h2_send(&mut h2, "GET", path).await;
        assert_eq!(answer.body.unwrap(), path, "never the stray response");
    }
    assert_eq!(upstream.connections(), 3, "no such connection is reused");
}

#[tokio::test]
async fn a_body_until_close_head_and_no_content_responses_reach_an_http2_client() {
    let upstream = RawUpstream::start(|_, _, head| match path_of(head) {
        "/close" => Reply::SendAndClose(b"HTTP/1.1 200 OK\r\n\r\nuntil the end".to_vec()),
        "/none" => Reply::Send(b"HTTP/1.1 204 No Content\r\nX-A: 1\r\n\r\n".to_vec()),
        // A HEAD's answer has no body whatever its length says.
        _ => Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec()),
    })
    .await;
    let session = Session::to(upstream.port).await;
    let mut h2 = h2_client(&session).await;
    let answer = h2_send(&mut h2, "GET", "/close").await;
    assert_eq!(answer.body.unwrap(), "until the end");
    let answer = h2_send(&mut h2, "GET", "/none").await;
    assert_eq!(answer.status, 204);
    assert_eq!(answer.headers.get("x-a").unwrap(), "1");
    assert_eq!(answer.body.unwrap(), "");
    let answer = h2_send(&mut h2, "HEAD", "/head").await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers.get("content-length").unwrap(), "5");
    assert_eq!(answer.body.unwrap(), "");
    let answer = h2_send(&mut h2, "GET", "/none").await;
    assert_eq!(answer.status, 204);
    assert_eq!(
        upstream.connections(),
        2,
        "a new connection after the one closed; the rest reused"
    );
}

#[tokio::test]
async fn a_broken_chunked_body_fails_the_http2_client_s_stream() {
    let upstream = RawUpstream::start(|_, _, head| match path_of(head) {
        "/broken" => Reply::Send(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhelloXX".to_vec(),
        ),
        path => Reply::Send(ok(path)),
    })
    .await;
    let session = Session::to(upstream.port).await;
    let mut h2 = h2_client(&session).await;
    let request = http::Request::builder()
        .uri("http://raw.test/broken")
        .body(Empty::new())
        .unwrap();
    // The reset may overtake the head (a reset stream's queued frames are dropped).
    if let Ok(response) = h2.send_request(request).await {
        let body = response.into_body().collect().await;
        assert!(body.is_err(), "never a complete body");
    }
    let answer = h2_send(&mut h2, "GET", "/next").await;
    assert_eq!(
        answer.body.unwrap(),
        "/next",
        "the connection serves the next stream"
    );
    assert_eq!(upstream.connections(), 2, "the broken one is not reused");
}
