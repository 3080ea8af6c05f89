//! Service-port listeners reconciled live with the table, TCP mode (half close, a large stream,
//! a port that changes mode, an open connection at shutdown) and WebSocket tunnels.

use crate::support;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use support::proxy::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn service_port_listeners_open_and_close_with_the_table() {
    let web = Backend::start("web").await;
    let (port_a, port_b) = (free_port(), free_port());
    let proxy = Proxy::start(json!([app(
        "/a",
        port_a,
        json!({"HAPROXY_0_MODE": "http"}),
        &[web.port()]
    )]))
    .await;
    let c = client();
    assert_eq!(
        get(&c, &format!("http://127.0.0.1:{port_a}/"), "x").await.1,
        "web"
    );
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port_b))
        .await
        .is_err());

    proxy
        .set_apps(json!([app(
            "/b",
            port_b,
            json!({"HAPROXY_0_MODE": "http"}),
            &[web.port()]
        )]))
        .await;
    assert_eq!(
        get(&fresh_client(), &format!("http://127.0.0.1:{port_b}/"), "x")
            .await
            .1,
        "web"
    );
    // The removed port stops accepting.
    let refused = loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port_a)).await {
            Err(_) => break true,
            // The accept loop stops on its own task: give it its turn.
            Ok(_) => tokio::task::yield_now().await,
        }
    };
    assert!(refused);

    // A port someone else holds is an error for that app, not a crash; others still serve.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = squatter.local_addr().unwrap().port();
    proxy
        .set_apps(json!([
            app(
                "/b",
                port_b,
                json!({"HAPROXY_0_MODE": "http"}),
                &[web.port()]
            ),
            app(
                "/squatted",
                taken,
                json!({"HAPROXY_0_VHOST": "sq.example.com"}),
                &[web.port()]
            ),
        ]))
        .await;
    assert_eq!(
        get(&fresh_client(), &proxy.url("/"), "sq.example.com")
            .await
            .1,
        "web"
    );
    assert_eq!(
        get(&fresh_client(), &format!("http://127.0.0.1:{port_b}/"), "x")
            .await
            .1,
        "web"
    );
}

#[tokio::test]
async fn tcp_mode_echoes_through_a_service_port_with_half_close() {
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = echo.accept().await {
            tokio::spawn(async move {
                let mut all = Vec::new();
                // Read until the client half-closes, then answer and close.
                s.read_to_end(&mut all).await.unwrap();
                all.reverse();
                s.write_all(&all).await.unwrap();
            });
        }
    });
    let port = free_port();
    let _proxy = Proxy::start(json!([app(
        "/echo",
        port,
        json!({"HAPROXY_0_MODE": "tcp"}),
        &[closed_port(), echo_port]
    )]))
    .await;
    for _ in 0..3 {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        s.write_all(b"hello tcp").await.unwrap();
        s.shutdown().await.unwrap();
        let mut back = Vec::new();
        s.read_to_end(&mut back).await.unwrap();
        assert_eq!(back, b"pct olleh");
    }
}

#[tokio::test]
async fn websocket_echo_through_a_vhost() {
    let ws = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let ws_port = ws.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = ws.accept().await {
            tokio::spawn(async move {
                let mut socket = tokio_tungstenite::accept_async(s).await.unwrap();
                while let Some(Ok(message)) = socket.next().await {
                    if message.is_text() || message.is_binary() {
                        socket.send(message).await.unwrap();
                    }
                }
            });
        }
    });
    let proxy = Proxy::start(json!([app(
        "/ws",
        free_port(),
        json!({"HAPROXY_0_VHOST": "ws.example.com"}),
        &[ws_port]
    )]))
    .await;
    proxy.websocket_echoes("ws://ws.example.com/chat").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_mode_moves_a_large_stream_intact() {
    let echo_port = echo_server().await;
    let port = free_port();
    let _proxy = Proxy::start(json!([app(
        "/stream",
        port,
        json!({"HAPROXY_0_MODE": "tcp"}),
        &[echo_port]
    )]))
    .await;
    const LEN: usize = 32 << 20;
    let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
    let s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let (mut r, mut w) = s.into_split();
    let sent = data.clone();
    let writer = tokio::spawn(async move {
        w.write_all(&sent).await.unwrap();
        w.shutdown().await.unwrap();
    });
    let mut back = Vec::with_capacity(LEN);
    r.read_to_end(&mut back).await.unwrap();
    writer.await.unwrap();
    assert_eq!(back.len(), LEN);
    assert!(back == data, "bytes arrive intact and in order");
}

#[tokio::test]
async fn a_service_port_that_changes_mode_is_reopened() {
    let web = Backend::start("web").await;
    let port = free_port();
    let proxy = Proxy::start(json!([app(
        "/m",
        port,
        json!({"HAPROXY_0_MODE": "tcp"}),
        &[web.port()]
    )]))
    .await;
    // TCP mode: the backend's HTTP answer comes back byte for byte.
    let (status, backend, _) =
        get(&fresh_client(), &format!("http://127.0.0.1:{port}/"), "x").await;
    assert_eq!((status, backend.as_str()), (200, "web"));
    proxy
        .set_apps(json!([app(
            "/m",
            port,
            json!({"HAPROXY_0_MODE": "http"}),
            &[web.port()]
        )]))
        .await;
    let response = fresh_client()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-backend"], "web");
    let doc: serde_json::Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        doc["headers"]["x-forwarded-port"],
        port.to_string(),
        "now proxied as HTTP"
    );
}

#[tokio::test]
async fn shutdown_lets_an_open_tcp_connection_finish() {
    let echo_port = echo_server().await;
    let port = free_port();
    let proxy = Proxy::start(json!([app(
        "/echo",
        port,
        json!({"HAPROXY_0_MODE": "tcp"}),
        &[echo_port]
    )]))
    .await;
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(b"before").await.unwrap();
    let mut buf = [0u8; 6];
    s.read_exact(&mut buf).await.unwrap();

    let stopping = tokio::spawn(async move { proxy.handle.shutdown().await });
    // Once new connections are refused, the balancer is draining.
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_ok()
    {
        tokio::task::yield_now().await;
    }
    s.write_all(b"during").await.unwrap();
    s.read_exact(&mut buf).await.unwrap();
    assert_eq!(
        &buf, b"during",
        "the open connection still flows while draining"
    );
    s.shutdown().await.unwrap();
    let mut rest = Vec::new();
    s.read_to_end(&mut rest).await.unwrap();
    stopping.await.unwrap();
}
