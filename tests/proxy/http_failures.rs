//! HTTP failures through the proxy: a dead endpoint retried elsewhere (502 when all are dead),
//! a slow upstream (504), bad requests (400), silent and idle clients closed, and a backend that
//! stalls mid-body.

use crate::support;

use std::time::Duration;

use serde_json::json;
use support::proxy::*;
use switchyard::proxy::ProxyConfig;

#[tokio::test]
async fn a_dead_endpoint_is_retried_elsewhere_and_all_dead_is_502() {
    let web = Backend::start("web").await;
    let dead = closed_port();
    let proxy = Proxy::start(json!([app(
        "/web",
        free_port(),
        json!({"HAPROXY_0_VHOST": "r.example.com"}),
        &[dead, web.port()]
    )]))
    .await;
    let c = fresh_client();
    for _ in 0..10 {
        let (status, backend, _) = get(&c, &proxy.url("/"), "r.example.com").await;
        assert_eq!((status, backend.as_str()), (200, "web"));
    }
    proxy
        .set_apps(json!([app(
            "/web",
            free_port(),
            json!({"HAPROXY_0_VHOST": "r.example.com"}),
            &[closed_port(), closed_port()]
        )]))
        .await;
    let (status, _, body) = get(&c, &proxy.url("/"), "r.example.com").await;
    assert_eq!(status, 502);
    assert_eq!(
        body,
        serde_json::Value::Null,
        "a short text body, no internals"
    );
}

#[tokio::test]
async fn a_slow_upstream_is_a_504() {
    let slow = Backend::start_with("slow", true).await;
    let config = ProxyConfig {
        server_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start_with(
        json!([app(
            "/slow",
            free_port(),
            json!({"HAPROXY_0_VHOST": "s.example.com"}),
            &[slow.port()]
        )]),
        config,
    )
    .await;
    let response = client()
        .get(proxy.url("/"))
        .header("host", "s.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 504);
    let text = response.text().await.unwrap();
    assert_eq!(text, "504 Gateway Timeout\n");
    slow.release(1);
}

#[tokio::test]
async fn bad_requests_get_400() {
    let web = Backend::start("web").await;
    let proxy = Proxy::start(json!([app(
        "/web",
        free_port(),
        json!({"HAPROXY_0_VHOST": "b.example.com"}),
        &[web.port()]
    )]))
    .await;
    let raw = |request: &'static [u8]| {
        let addr = proxy.handle.http_addr.unwrap();
        async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(request).await.unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            String::from_utf8_lossy(&out).into_owned()
        }
    };
    let no_host = raw(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n").await;
    assert!(no_host.starts_with("HTTP/1.1 400"), "{no_host}");
    let two_hosts = raw(b"GET / HTTP/1.1\r\nHost: b.example.com\r\nHost: b.example.com\r\nConnection: close\r\n\r\n").await;
    assert!(two_hosts.starts_with("HTTP/1.1 400"), "{two_hosts}");
    assert_eq!(web.hits(), 0, "nothing ambiguous reached the backend");
}

#[tokio::test]
async fn silent_and_idle_client_connections_are_closed() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let web = Backend::start("web").await;
    let config = ProxyConfig {
        header_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start_with(
        json!([app(
            "/web",
            free_port(),
            json!({"HAPROXY_0_VHOST": "i.example.com"}),
            &[web.port()]
        )]),
        config,
    )
    .await;
    let bound = Duration::from_secs(10);

    // A client that connects and says nothing.
    let mut silent = tokio::net::TcpStream::connect(proxy.handle.http_addr.unwrap())
        .await
        .unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(bound, silent.read(&mut buf))
        .await
        .expect("closed by the proxy")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed without an answer");

    // A keep-alive client that goes idle after one request.
    let mut idle = tokio::net::TcpStream::connect(proxy.handle.http_addr.unwrap())
        .await
        .unwrap();
    idle.write_all(b"GET / HTTP/1.1\r\nHost: i.example.com\r\n\r\n")
        .await
        .unwrap();
    let mut seen = Vec::new();
    let closed = tokio::time::timeout(bound, async {
        loop {
            match idle.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => seen.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "idle keep-alive connection closed");
    assert!(
        String::from_utf8_lossy(&seen).starts_with("HTTP/1.1 200"),
        "the request was answered first"
    );
}

#[tokio::test]
async fn a_backend_that_stalls_mid_body_never_yields_a_complete_response() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let stalling = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = stalling.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = stalling.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello")
                    .await
                    .unwrap();
                // Then nothing, with the connection held open.
                let _ = s.read(&mut buf).await;
            });
        }
    });
    let config = ProxyConfig {
        server_timeout: Duration::from_millis(300),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start_with(
        json!([app(
            "/stall",
            free_port(),
            json!({"HAPROXY_0_VHOST": "st.example.com"}),
            &[port]
        )]),
        config,
    )
    .await;
    let response = client()
        .get(proxy.url("/"))
        .header("host", "st.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "the head came through");
    let body = tokio::time::timeout(Duration::from_secs(10), response.bytes())
        .await
        .expect("cut short, not hung");
    assert!(
        body.is_err(),
        "the client sees a broken body, not a complete one"
    );
}
