//! A client's request body on its way to an HTTP/2 backend: one that stalls is the client's
//! fault, answered 408, and the backend's stream is reset, not left waiting.

use std::time::Duration;

use serde_json::json;
use switchyard::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use crate::support::proxy::{app, Proxy};

/// An HTTP/2 server that reads each request body to its end; tells how each ended: the bytes
/// read, or the reason of the reset that cut it.
async fn reading_server() -> (u16, mpsc::UnboundedReceiver<Result<usize, h2::Reason>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (ended, on_ended) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let ended = ended.clone();
            tokio::spawn(async move {
                let Ok(mut conn) = h2::server::handshake(stream).await else {
                    return;
                };
                while let Some(Ok((request, mut respond))) = conn.accept().await {
                    let ended = ended.clone();
                    tokio::spawn(async move {
                        let mut body = request.into_body();
                        let mut read = 0;
                        while let Some(data) = body.data().await {
                            match data {
                                Ok(data) => {
                                    read += data.len();
                                    let _ = body.flow_control().release_capacity(data.len());
                                }
                                Err(err) => {
                                    let _ = ended.send(Err(err.reason().unwrap()));
                                    return;
                                }
                            }
                        }
                        let _ = ended.send(Ok(read));
                        let _ = respond.send_response(http::Response::new(()), true);
                    });
                }
            });
        }
    });
    (port, on_ended)
}

#[tokio::test]
async fn a_stalled_request_body_is_a_408_and_the_backends_stream_is_reset() {
    let (port, mut ended) = reading_server().await;
    let timeout = Duration::from_millis(500);
    let config = ProxyConfig {
        client_body_timeout: timeout,
        ..ProxyConfig::default()
    };
    let labels = json!({"HAPROXY_0_VHOST": "upload.test", "HAPROXY_0_BACKEND_PROTOCOL": "h2"});
    let proxy = Proxy::start_with(json!([app("/upload", 10_504, labels, &[port])]), config).await;
    let mut client = TcpStream::connect(proxy.handle.http_addr.unwrap())
        .await
        .unwrap();
    client
        .write_all(
            b"POST /up HTTP/1.1\r\nHost: upload.test\r\nContent-Length: 1000\r\n\r\n0123456789",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(timeout * 10, client.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "answered and closed");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let how = tokio::time::timeout(timeout * 10, ended.recv()).await;
    let how = how.expect("the backend's stream ended").unwrap();
    assert!(
        how.is_err(),
        "the backend's stream reset, its body cut: {how:?}"
    );
}
