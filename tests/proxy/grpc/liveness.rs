//! A backend that stops answering without closing (a host gone, a network partition): the
//! HTTP/2 PING keep-alive finds it, the connection is closed, and the next call goes on a new
//! one.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;
use switchyard::proxy::ProxyConfig;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tonic::Request;

use super::HOST;
use crate::support::grpc::{self, GrpcBackend};
use crate::support::proxy::{app, Proxy};

/// A TCP relay in front of a backend. [`Relay::freeze`] turns the connections open at that
/// moment into black holes: bytes are still read from both sides (so that a close is seen) but
/// go nowhere, and nothing is closed. Connections made later are relayed as usual.
struct Relay {
    port: u16,
    connections: Arc<AtomicUsize>,
    /// Relayed connections whose client (the proxy) closed its side.
    closed_by_client: Arc<AtomicUsize>,
    frozen: Arc<std::sync::Mutex<Vec<Arc<AtomicBool>>>>,
}

impl Relay {
    async fn start(backend: u16) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let relay = Relay {
            port,
            connections: Arc::default(),
            closed_by_client: Arc::default(),
            frozen: Arc::default(),
        };
        let (connections, closed, frozen) = (
            relay.connections.clone(),
            relay.closed_by_client.clone(),
            relay.frozen.clone(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", backend)).await else {
                    continue;
                };
                connections.fetch_add(1, Ordering::SeqCst);
                let freeze = Arc::new(AtomicBool::new(false));
                frozen.lock().unwrap().push(freeze.clone());
                let closed = closed.clone();
                tokio::spawn(async move {
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    let back = tokio::spawn(pipe(server_read, client_write, freeze.clone()));
                    pipe(client_read, server_write, freeze).await;
                    // The client's side ended: that is what the test waits for.
                    closed.fetch_add(1, Ordering::SeqCst);
                    back.abort();
                });
            }
        });
        relay
    }

    /// Every connection open now stops carrying bytes, both ways, without closing.
    fn freeze(&self) {
        for freeze in self.frozen.lock().unwrap().iter() {
            freeze.store(true, Ordering::SeqCst);
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    fn closed_by_client(&self) -> usize {
        self.closed_by_client.load(Ordering::SeqCst)
    }
}

/// Copies `from` to `to` until `from` ends; once `frozen`, what is read is dropped.
async fn pipe(
    mut from: impl AsyncRead + Unpin,
    mut to: impl AsyncWrite + Unpin,
    frozen: Arc<AtomicBool>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if frozen.load(Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Polls `done` until it holds, panicking with `what` past a generous deadline.
async fn wait_until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_backend_that_stops_answering_is_found_by_its_ping() {
    let backend = GrpcBackend::start("silent").await;
    let relay = Relay::start(backend.port()).await;
    let config = ProxyConfig {
        backend_h2_keep_alive: Duration::from_secs(1),
        ..ProxyConfig::default()
    };
    let apps = json!([app(
        "/grpc",
        10_500,
        grpc::labels(HOST, "h2"),
        &[relay.port]
    )]);
    let proxy = Proxy::start_with(apps, config).await;
    let channel = grpc::channel(proxy.handle.http_addr.unwrap(), HOST).await;
    let call = || grpc::unary(&channel, Request::new(Bytes::from_static(b"are you there")));
    call().await.unwrap();
    assert_eq!(relay.connections(), 1);
    relay.freeze();
    wait_until(
        "the proxy closes the connection whose PING went unanswered",
        || relay.closed_by_client() == 1,
    )
    .await;
    let response = call()
        .await
        .expect("the next call goes on a new connection");
    assert_eq!(response.into_inner(), "are you there");
    assert_eq!(relay.connections(), 2);
    assert_eq!(backend.calls(), 2);
}
