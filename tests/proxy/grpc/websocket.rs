//! A WebSocket upgrade to an `h2` or `h2-ssl` backend: it goes over an HTTP/1.1 connection
//! opened for it (TLS with ALPN `http/1.1`), while the backend's other requests go over HTTP/2.
//! The backend is one server speaking both on one port, as servers taking gRPC and WebSocket do.

use std::convert::Infallible;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http::{Request, Response, Version};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use serde_json::json;
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::WebSocketStream;

use crate::support::proxy::{app, client, Proxy};

const WS_HOST: &str = "ws.test";

/// What the backend saw: each request's HTTP version, each TLS connection's ALPN protocol.
#[derive(Default)]
struct Seen {
    versions: Mutex<Vec<Version>>,
    alpn: Mutex<Vec<Option<Vec<u8>>>>,
}

/// A server taking HTTP/2 by prior knowledge and HTTP/1.1 on one port (TLS with ALPN `h2` and
/// `http/1.1` when `tls`): a WebSocket upgrade echoes messages, any other request is answered
/// with its HTTP version.
async fn both_protocols_server(tls: bool) -> (u16, Arc<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Seen::default());
    let acceptor = tls.then(|| tokio_rustls::TlsAcceptor::from(tls_config()));
    let serving = seen.clone();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let (seen, acceptor) = (serving.clone(), acceptor.clone());
            tokio::spawn(async move {
                let answering = seen.clone();
                let service = hyper::service::service_fn(move |req| answer(req, answering.clone()));
                let builder = auto::Builder::new(TokioExecutor::new());
                match acceptor {
                    None => {
                        let io = TokioIo::new(tcp);
                        let _ = builder.serve_connection_with_upgrades(io, service).await;
                    }
                    Some(acceptor) => {
                        let Ok(stream) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let alpn = stream.get_ref().1.alpn_protocol().map(<[u8]>::to_vec);
                        seen.alpn.lock().unwrap().push(alpn);
                        let io = TokioIo::new(stream);
                        let _ = builder.serve_connection_with_upgrades(io, service).await;
                    }
                }
            });
        }
    });
    (port, seen)
}

async fn answer(
    mut req: Request<Incoming>,
    seen: Arc<Seen>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    seen.versions.lock().unwrap().push(req.version());
    let websocket = req
        .headers()
        .get("upgrade")
        .is_some_and(|u| u.as_bytes().eq_ignore_ascii_case(b"websocket"));
    let key = req.headers().get("sec-websocket-key").cloned();
    let (true, Some(key)) = (websocket, key) else {
        let version = format!("{:?}", req.version());
        return Ok(Response::new(Full::new(Bytes::from(version))));
    };
    let upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = upgrade.await else {
            return;
        };
        let io = TokioIo::new(upgraded);
        let mut socket = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
        while let Some(Ok(message)) = socket.next().await {
            if (message.is_text() || message.is_binary()) && socket.send(message).await.is_err() {
                return;
            }
        }
    });
    Ok(Response::builder()
        .status(101)
        .header("connection", "upgrade")
        .header("upgrade", "websocket")
        .header("sec-websocket-accept", derive_accept_key(key.as_bytes()))
        .body(Full::default())
        .unwrap())
}

/// A self-signed certificate, ALPN `h2` and `http/1.1`.
fn tls_config() -> Arc<rustls::ServerConfig> {
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(cert.key_pair.serialize_der()));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Arc::new(config)
}

/// Through a proxy speaking `protocol` to `port`: a plain request (over HTTP/2), then a
/// WebSocket echoing three messages (over HTTP/1.1).
async fn plain_request_then_websocket(protocol: &str, port: u16, seen: &Seen) {
    let labels = json!({"HAPROXY_0_VHOST": WS_HOST, "HAPROXY_0_BACKEND_PROTOCOL": protocol});
    let proxy = Proxy::start(json!([app("/ws", 10_502, labels, &[port])])).await;
    let response = client()
        .get(proxy.url("/"))
        .header("host", WS_HOST)
        .send()
        .await
        .unwrap();
    assert_eq!(response.text().await.unwrap(), "HTTP/2.0");

    proxy
        .websocket_echoes(&format!("ws://{WS_HOST}/chat"))
        .await;
    assert_eq!(
        *seen.versions.lock().unwrap(),
        [Version::HTTP_2, Version::HTTP_11],
        "the plain request over HTTP/2, the upgrade over HTTP/1.1"
    );
}

#[tokio::test]
async fn a_websocket_to_an_h2_backend_goes_over_http1() {
    let (port, seen) = both_protocols_server(false).await;
    plain_request_then_websocket("h2", port, &seen).await;
}

#[tokio::test]
async fn a_websocket_to_an_h2_ssl_backend_goes_over_http1_on_tls() {
    let (port, seen) = both_protocols_server(true).await;
    plain_request_then_websocket("h2-ssl", port, &seen).await;
    assert_eq!(
        *seen.alpn.lock().unwrap(),
        [Some(b"h2".to_vec()), Some(b"http/1.1".to_vec())],
        "each connection's ALPN says what it speaks"
    );
}
