//! HTTPS connections that agree on HTTP/1.1 are served by the native engine, as plain ones
//! are: the bytes a raw upstream sees (the client's header names, `X-Forwarded-Proto: https`,
//! one reused upstream connection) tell which engine forwarded them.

use super::*;
use support::raw::{ok, path_of, read_answer, Reply};

/// A raw upstream behind the balancer's HTTPS port for `raw.test`, and a TLS connection to it
/// agreeing on HTTP/1.1.
async fn tls_session(
    script: impl Fn(usize, usize, &str) -> Reply + Send + Sync + 'static,
) -> (
    support::raw::RawUpstream,
    Tls,
    tokio_rustls::client::TlsStream<TcpStream>,
) {
    let upstream = support::raw::RawUpstream::start(script).await;
    let ca = Ca::new();
    let cert = ca.issue(&["raw.test"]);
    let apps = json!([app(
        "/raw",
        support::proxy::free_port(),
        json!({"HAPROXY_0_VHOST": "raw.test"}),
        &[upstream.port]
    )]);
    let tls = Tls::start(apps, &[("raw.pem", &cert)]).await;
    let (stream, _) = handshake(tls.https, Some("raw.test")).await.unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"http/1.1"[..]));
    (upstream, tls, stream)
}

#[tokio::test]
async fn https_keep_alive_requests_take_the_native_path_over_one_upstream_connection() {
    let (upstream, _tls, mut stream) =
        tls_session(|_, _, head| Reply::Send(ok(path_of(head)))).await;
    let mut buf = Vec::new();
    for i in 0..20 {
        let request =
            format!("GET /n/{i} HTTP/1.1\r\nHost: raw.test\r\nX-Custom-Case: {i}\r\n\r\n");
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_answer(&mut stream, &mut buf, false).await;
        assert_eq!(answer.status(), 200, "{}", answer.head);
        assert_eq!(answer.body, format!("/n/{i}").as_bytes());
    }
    assert_eq!(upstream.connections(), 1, "one upstream connection, reused");
    let last = &upstream.heads()[19];
    // Names as the client wrote them: the native engine (hyper's writes lowercase).
    assert!(last.contains("\r\nX-Custom-Case: 19\r\n"), "{last}");
    assert!(last.contains("\r\nx-forwarded-proto: https\r\n"), "{last}");
}

#[tokio::test]
async fn pipelined_https_requests_and_a_large_response_arrive_whole() {
    // Larger than a TLS record (16 KiB) many times over: every record must be flushed.
    let big = "x".repeat(1 << 20);
    let (_upstream, _tls, mut stream) = tls_session(move |_, _, head| {
        Reply::Send(ok(if path_of(head) == "/big" {
            &big
        } else {
            path_of(head)
        }))
    })
    .await;
    let three: String = ["/a", "/big", "/c"]
        .iter()
        .map(|p| format!("GET {p} HTTP/1.1\r\nHost: raw.test\r\n\r\n"))
        .collect();
    stream.write_all(three.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    assert_eq!(read_answer(&mut stream, &mut buf, false).await.body, b"/a");
    let large = read_answer(&mut stream, &mut buf, false).await;
    assert_eq!(large.body.len(), 1 << 20, "{}", large.head);
    assert!(large.body.iter().all(|&b| b == b'x'));
    assert_eq!(read_answer(&mut stream, &mut buf, false).await.body, b"/c");
}

#[tokio::test]
async fn an_https_connection_goes_on_with_hyper_at_a_request_the_native_engine_does_not_forward() {
    let (upstream, _tls, mut stream) =
        tls_session(|_, _, head| Reply::Send(ok(path_of(head)))).await;
    let mut buf = Vec::new();
    let first = "GET /native HTTP/1.1\r\nHost: raw.test\r\nX-Case: Kept\r\n\r\n";
    stream.write_all(first.as_bytes()).await.unwrap();
    assert_eq!(
        read_answer(&mut stream, &mut buf, false).await.body,
        b"/native"
    );
    // A chunked body: hyper's engine from here, on the same TLS connection.
    let second = "POST /hyper HTTP/1.1\r\nHost: raw.test\r\nX-Case: Kept\r\n\
                  Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    stream.write_all(second.as_bytes()).await.unwrap();
    assert_eq!(
        read_answer(&mut stream, &mut buf, false).await.body,
        b"/hyper"
    );
    let heads = upstream.heads();
    assert!(heads[0].contains("\r\nX-Case: Kept\r\n"), "{}", heads[0]);
    assert!(heads[1].contains("\r\nx-case: Kept\r\n"), "{}", heads[1]);
}

#[tokio::test]
async fn a_response_to_a_client_that_reads_slowly_arrives_whole() {
    // More than the sockets hold: the balancer's writes keep finding a full socket, and what
    // TLS kept back at the last of them must still be sent when the response ends.
    const SIZE: usize = 4 << 20;
    let big = "y".repeat(SIZE);
    let (_upstream, tls, _) = tls_session(move |_, _, _| Reply::Send(ok(&big))).await;
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(tls.https).await.unwrap();
    let name = ServerName::try_from("raw.test").unwrap();
    let mut stream = tokio_rustls::TlsConnector::from(Arc::new(client_config(true)))
        .connect(name, tcp)
        .await
        .unwrap();
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: raw.test\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 4096];
    let answer = loop {
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut chunk)).await;
        let n = read.expect("the rest of the response within 10 s").unwrap();
        assert!(n > 0, "closed early");
        buf.extend_from_slice(&chunk[..n]);
        if let Some(head) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            if buf.len() - (head + 4) == SIZE {
                break buf.split_off(head + 4);
            }
        }
    };
    assert!(answer.iter().all(|&b| b == b'y'));
}

#[tokio::test]
async fn requests_in_one_record_larger_than_a_read_are_all_answered() {
    let (upstream, _tls, mut stream) =
        tls_session(|_, _, head| Reply::Send(ok(path_of(head)))).await;
    // One write, one TLS record (under 16 KiB), more than one read of the engine takes: the
    // rest waits decrypted in the TLS session, not on the socket.
    let padding = "p".repeat(6000);
    let two = format!(
        "GET /one HTTP/1.1\r\nHost: raw.test\r\nX-Pad: {padding}\r\n\r\n\
         GET /two HTTP/1.1\r\nHost: raw.test\r\nX-Pad: {padding}\r\n\r\n"
    );
    stream.write_all(two.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    assert_eq!(
        read_answer(&mut stream, &mut buf, false).await.body,
        b"/one"
    );
    assert_eq!(
        read_answer(&mut stream, &mut buf, false).await.body,
        b"/two"
    );
    assert_eq!(upstream.heads().len(), 2);
}
