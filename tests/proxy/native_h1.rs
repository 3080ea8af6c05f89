//! The native HTTP/1.1 path over real sockets: a raw client in front, a scripted raw upstream
//! behind, so that the bytes each side sees (framing, reuse, pipelining, the hand-over to
//! hyper) are checked exactly.

use crate::support;

use serde_json::json;
use support::proxy::*;
use support::raw::*;

#[tokio::test]
async fn keep_alive_requests_share_one_upstream_connection_with_the_clients_header_names() {
    let upstream = RawUpstream::start(|_, _, head| Reply::Send(ok(path_of(head)))).await;
    let mut session = Session::to(upstream.port).await;
    for i in 0..20 {
        let request = format!(
            "GET /n/{i} HTTP/1.1\r\nHost: raw.test\r\nConnection: keep-alive\r\n\
             X-Custom-Case: {i}\r\nX-Forwarded-Port: 1\r\n\r\n"
        );
        session.write(&request).await;
        let answer = session.answer().await;
        assert_eq!(answer.status(), 200, "{}", answer.head);
        assert_eq!(answer.body, format!("/n/{i}").as_bytes());
    }
    assert_eq!(upstream.connections(), 1, "one upstream connection, reused");
    let heads = upstream.heads();
    assert_eq!(heads.len(), 20);
    let port = session.proxy.handle.http_addr.unwrap().port();
    let last = &heads[19];
    // Names as the client wrote them: this is the native path (hyper's writes lowercase).
    assert!(last.contains("\r\nX-Custom-Case: 19\r\n"), "{last}");
    assert!(
        last.contains("\r\nx-forwarded-for: 127.0.0.1\r\n"),
        "{last}"
    );
    assert!(
        last.contains(&format!("\r\nx-forwarded-port: {port}\r\n")),
        "ours replaces the client's: {last}"
    );
    assert!(!last.to_ascii_lowercase().contains("connection:"), "{last}");
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let upstream = RawUpstream::start(|_, _, head| Reply::Send(ok(path_of(head)))).await;
    let mut session = Session::to(upstream.port).await;
    let three: String = ["/a", "/b", "/c"]
        .iter()
        .map(|p| format!("GET {p} HTTP/1.1\r\nHost: raw.test\r\n\r\n"))
        .collect();
    session.write(&three).await;
    for path in ["/a", "/b", "/c"] {
        let answer = session.answer().await;
        assert_eq!(answer.body, path.as_bytes());
    }
}

#[tokio::test]
async fn a_chunked_response_goes_through_as_sent_and_its_connection_is_reused() {
    const CHUNKED: &str = "5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
    let upstream = RawUpstream::start(|_, _, _| {
        Reply::Send(
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n{CHUNKED}").into_bytes(),
        )
    })
    .await;
    let mut session = Session::to(upstream.port).await;
    for _ in 0..3 {
        session
            .write("GET / HTTP/1.1\r\nHost: raw.test\r\n\r\n")
            .await;
        let answer = session.answer().await;
        assert!(
            answer.head.contains("Transfer-Encoding: chunked"),
            "{}",
            answer.head
        );
        assert_eq!(String::from_utf8_lossy(&answer.body), CHUNKED);
    }
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test]
async fn a_body_that_ends_with_its_connection_ends_the_clients_too() {
    let upstream = RawUpstream::start(|_, _, _| {
        Reply::SendAndClose(b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nuntil close".to_vec())
    })
    .await;
    let mut session = Session::to(upstream.port).await;
    session
        .write("GET / HTTP/1.1\r\nHost: raw.test\r\n\r\n")
        .await;
    let answer = session.answer().await;
    assert!(answer.head.contains("connection: close"), "{}", answer.head);
    assert_eq!(answer.body, b"until close", "read to EOF");
}

#[tokio::test]
async fn a_head_response_has_no_body_and_the_next_request_follows() {
    let upstream = RawUpstream::start(|_, _, head| {
        if head.starts_with("HEAD") {
            Reply::Send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n".to_vec())
        } else {
            Reply::Send(ok("after"))
        }
    })
    .await;
    let mut session = Session::to(upstream.port).await;
    let answer = session
        .send("HEAD / HTTP/1.1\r\nHost: raw.test\r\n\r\n")
        .await;
    assert!(answer.head.contains("Content-Length: 5"), "{}", answer.head);
    let answer = session.send(GET).await;
    assert_eq!(answer.body, b"after");
    assert_eq!(upstream.connections(), 1);
}

#[tokio::test]
async fn a_reused_connection_closed_under_a_request_is_replaced_without_an_error() {
    // The first connection answers once, then drops the next request unanswered (its close
    // crossed our request): that request is sent again on a new connection.
    let upstream = RawUpstream::start(answers_once_then_hangs_up).await;
    let mut session = Session::to(upstream.port).await;
    for path in ["/first", "/second"] {
        let request = format!("GET {path} HTTP/1.1\r\nHost: raw.test\r\n\r\n");
        let answer = session.send(&request).await;
        assert_eq!(answer.status(), 200, "{path}: {}", answer.head);
        assert_eq!(answer.body, path.as_bytes());
    }
    assert_eq!(upstream.connections(), 2);
    assert_eq!(upstream.paths(), ["/first", "/second", "/second"]);
}

#[tokio::test]
async fn a_request_with_a_body_is_not_sent_twice() {
    // As above, but the dropped request carries a body: the backend may have acted on it, so
    // it is a 502 and the backend sees it once.
    let upstream = RawUpstream::start(answers_once_then_hangs_up).await;
    let mut session = Session::to(upstream.port).await;
    let first = session
        .send("GET /first HTTP/1.1\r\nHost: raw.test\r\n\r\n")
        .await;
    assert_eq!(first.status(), 200);
    let pay = "POST /pay HTTP/1.1\r\nHost: raw.test\r\nContent-Length: 3\r\n\r\nabc";
    let answer = session.send(pay).await;
    assert_eq!(answer.status(), 502, "{}", answer.head);
    assert_eq!(upstream.paths(), ["/first", "/pay"]);
}

#[tokio::test]
async fn an_unusable_response_is_a_502_and_the_client_connection_goes_on() {
    let upstream = RawUpstream::start(|conn, _, _| match conn {
        0 => Reply::Send(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nxx".to_vec(),
        ),
        _ => Reply::Send(ok("fine")),
    })
    .await;
    let mut session = Session::to(upstream.port).await;
    let answer = session.send(GET).await;
    assert_eq!(answer.status(), 502, "{}", answer.head);
    assert_eq!(answer.body, b"502 Bad Gateway\n");
    let answer = session.send(GET).await;
    assert_eq!((answer.status(), &answer.body[..]), (200, &b"fine"[..]));
    assert_eq!(upstream.connections(), 2, "the broken one was not reused");
}

#[tokio::test]
async fn a_chunked_body_broken_before_anything_was_sent_is_a_502() {
    let upstream = RawUpstream::start(|_, _, _| {
        Reply::Send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nZZ\r\n".to_vec())
    })
    .await;
    let mut session = Session::to(upstream.port).await;
    let answer = session.send(GET).await;
    assert_eq!(answer.status(), 502, "{}", answer.head);
    assert!(answer.head.contains("connection: close"), "{}", answer.head);
    assert_eq!(answer.body, b"502 Bad Gateway\n");
}

#[tokio::test]
async fn a_request_this_path_does_not_forward_goes_to_hyper_on_the_same_connection() {
    let backend = Backend::start("echo").await;
    let mut session = Session::to(backend.port()).await;
    // A chunked upload: streamed by hyper; the connection is hyper's from then on.
    let requests = [
        "GET /one HTTP/1.1\r\nHost: raw.test\r\n\r\n",
        "POST /two HTTP/1.1\r\nHost: raw.test\r\nTransfer-Encoding: chunked\r\n\r\n\
         3\r\nabc\r\n4\r\ndefg\r\n0\r\n\r\n",
        "GET /three HTTP/1.1\r\nHost: raw.test\r\n\r\n",
    ];
    let mut answers = Vec::new();
    for request in requests {
        session.write(request).await;
        let answer = session.answer().await;
        assert_eq!(answer.status(), 200, "{}", answer.head);
        let doc: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
        answers.push((doc["path"].clone(), doc["body_len"].clone()));
    }
    assert_eq!(
        answers,
        [
            (json!("/one"), json!(0)),
            (json!("/two"), json!(7)),
            (json!("/three"), json!(0))
        ]
    );
    assert_eq!(backend.hits(), 3);
}
