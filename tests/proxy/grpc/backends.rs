//! How backends are spoken to: `proto h2` in Marathon-LB's server-line template, TLS with ALPN h2
//! (checked against `--backend-ca` or not), an HTTP/1.1 client to an HTTP/2-only backend; and the
//! balancer's own answers to a call as gRPC statuses.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;
use switchyard::proxy::ProxyConfig;
use tokio::net::TcpListener;
use tonic::{Code, Request};

use super::HOST;
use crate::support::grpc::{self, GrpcBackend};
use crate::support::proxy::{self, app, client, get, Proxy};

#[tokio::test]
async fn proto_h2_on_the_server_line_template_speaks_http2() {
    let backend = GrpcBackend::start("a").await;
    let line = "  server {serverName} {host_ipv4}:{port}{cookieOptions}{healthCheckOptions}{otherOptions} proto h2\n";
    let labels = json!({"HAPROXY_0_VHOST": HOST, "HAPROXY_0_BACKEND_SERVER_OPTIONS": line});
    let proxy = Proxy::start(json!([app("/grpc", 10_500, labels, &[backend.port()])])).await;
    let channel = grpc::channel(proxy.handle.http_addr.unwrap(), HOST).await;
    let response = grpc::unary(&channel, Request::new(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    assert_eq!(response.into_inner(), "hi");
    let table = proxy.handle.table.load_full();
    assert!(
        table.problems().is_empty(),
        "the template is read, not reported: {:?}",
        table.problems()
    );
}

#[tokio::test]
async fn an_h2_ssl_backend_is_spoken_to_over_tls() {
    let (cert, key) = grpc::certificate();
    let backend = GrpcBackend::start_with("tls", Some((cert.clone(), key))).await;
    let apps = json!([app(
        "/grpc",
        10_500,
        grpc::labels(HOST, "h2-ssl"),
        &[backend.port()]
    )]);
    let call = |proxy: &Proxy| {
        let addr = proxy.handle.http_addr.unwrap();
        async move {
            let channel = grpc::channel(addr, HOST).await;
            grpc::unary(&channel, Request::new(Bytes::from_static(b"sealed"))).await
        }
    };
    // Without --backend-ca any certificate is accepted.
    let proxy = Proxy::start(apps.clone()).await;
    assert_eq!(call(&proxy).await.unwrap().into_inner(), "sealed");
    // With it, the backend's must chain to it...
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &cert).unwrap();
    let config = ProxyConfig {
        backend_ca: Some(ca.clone()),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start_with(apps.clone(), config).await;
    assert_eq!(call(&proxy).await.unwrap().into_inner(), "sealed");
    // ...and one that does not is refused: the call is UNAVAILABLE.
    let (other, _) = grpc::certificate();
    std::fs::write(&ca, other).unwrap();
    let config = ProxyConfig {
        backend_ca: Some(ca),
        ..ProxyConfig::default()
    };
    let proxy = Proxy::start_with(apps, config).await;
    let status = call(&proxy).await.unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        status.message(),
        "the TLS handshake with the backend failed"
    );
    assert_eq!(backend.calls(), 2);
}

/// A plain REST server that speaks HTTP/2 only (prior knowledge), as gRPC servers do.
async fn http2_only_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let text = format!(
                            "{} {} over {:?}",
                            req.method(),
                            req.uri().path(),
                            req.version()
                        );
                        Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from(text))))
                    },
                );
                let _ = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

#[tokio::test]
async fn an_http1_client_reaches_an_h2_backend() {
    let port = http2_only_server().await;
    let labels = json!({"HAPROXY_0_VHOST": "rest.test", "HAPROXY_0_BACKEND_PROTOCOL": "h2"});
    let proxy = Proxy::start(json!([app("/rest", 10_501, labels, &[port])])).await;
    let client = client();
    for _ in 0..3 {
        let response = client
            .get(proxy.url("/items/1"))
            .header("host", "rest.test")
            .send()
            .await
            .unwrap();
        assert_eq!(response.version(), reqwest::Version::HTTP_11);
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "GET /items/1 over HTTP/2.0");
    }
    // Not routed: 503 as today, an error page, for a client that is not a gRPC one.
    let (status, _, _) = get(&client, &proxy.url("/"), "nowhere.test").await;
    assert_eq!(status, 503);
}

#[tokio::test]
async fn the_balancer_answers_a_call_with_a_grpc_status() {
    // One task, whose port refuses connections.
    let refused = app(
        "/grpc",
        10_500,
        grpc::labels(HOST, "h2"),
        &[proxy::closed_port()],
    );
    let proxy = Proxy::start(json!([refused])).await;
    let addr = proxy.handle.http_addr.unwrap();
    let call = |host: &'static str| async move {
        let channel = grpc::channel(addr, host).await;
        grpc::unary(&channel, Request::new(Bytes::from_static(b"x")))
            .await
            .unwrap_err()
    };
    let status = call("nowhere.test").await;
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "no backend for this host and path");
    let status = call(HOST).await;
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "the backend refused the connection");
    // The refusal backs the task off: now nothing can take the call.
    let status = call(HOST).await;
    assert_eq!(status.code(), Code::Unavailable);
    assert_eq!(status.message(), "the backend has no routable task");
}

#[tokio::test]
async fn each_backend_s_protocol_is_shown() {
    let labels = json!({"HAPROXY_0_VHOST": HOST, "HAPROXY_0_BACKEND_PROTOCOL": "h2-ssl"});
    let proxy = Proxy::start(json!([
        app("/grpc", 10_500, labels, &[9]),
        app(
            "/web",
            10_501,
            json!({"HAPROXY_0_VHOST": "web.test"}),
            &[10]
        )
    ]))
    .await;
    let admin = proxy.handle.admin_addr;
    let read = |path: &'static str| async move {
        reqwest::get(format!("http://{admin}{path}"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let protocols = |doc: &serde_json::Value| -> Vec<(String, String)> {
        doc["backends"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                (
                    b["name"].as_str().unwrap().to_owned(),
                    b["protocol"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    };
    let expected = vec![
        ("grpc_10500".to_owned(), "h2-ssl".to_owned()),
        ("web_10501".to_owned(), "h1".to_owned()),
    ];
    let routes: serde_json::Value = serde_json::from_str(&read("/routes").await).unwrap();
    assert_eq!(protocols(&routes), expected);
    let stats: serde_json::Value = serde_json::from_str(&read("/stats").await).unwrap();
    assert_eq!(protocols(&stats), expected);
    let page = read("/").await;
    assert!(
        page.contains("· http · h2-ssl · roundrobin"),
        "the status page"
    );
    let table = proxy.handle.table.load_full();
    let text = switchyard::routing::report::RoutesReport::new(&table).to_text();
    assert!(text.contains("[h2-ssl] 127.0.0.1:9"), "{text}");
    assert!(!text.contains("[h1]"), "{text}");
}
