//! Backend faults (reliability matrix D1–D7 and the keep-alive race), each with a small
//! hand-written backend on loopback that misbehaves in one exact way. Tests wait on counters
//! and answers, never on sleeps; timeouts only bound a failure.
//!
//! The raw backend and the helpers are here; the tests are in `responses` and `connections`.

use crate::support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use support::metric;
use support::proxy::*;
use switchyard::proxy::ProxyConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

mod connections;
mod responses;

/// Guards against a hang; never a synchronisation point.
const GUARD: Duration = Duration::from_secs(10);

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    match tokio::time::timeout(GUARD, future).await {
        Ok(value) => value,
        Err(_) => panic!("timed out waiting for {what}"),
    }
}

/// What a raw backend does after it read one request.
enum Reply {
    /// Write these bytes, keep the connection for the next request.
    Send(Vec<u8>),
    /// Write these bytes, then close the connection.
    SendAndClose(Vec<u8>),
    /// Write these bytes, then reset the connection (RST, not FIN).
    SendAndReset(Vec<u8>),
    /// Write these bytes one at a time, each in its own write.
    Dribble(Vec<u8>),
    /// Close without answering.
    Close,
    /// Say nothing; keep the connection open until the peer closes it.
    Silent,
}

/// A request as a raw backend saw it: its path, and which of the backend's connections (in
/// accept order, from 1) it came on.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    connection: usize,
    /// Requests before it on the same connection.
    index_on_connection: usize,
}

/// A raw HTTP/1.1 backend: requests without bodies, answered by `reply(seen)`.
struct RawBackend {
    port: u16,
    connections: Arc<AtomicUsize>,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Connections the proxy closed on us (EOF while we waited for a request).
    closed_by_peer: Arc<AtomicUsize>,
    changed: Arc<Notify>,
}

impl RawBackend {
    async fn start(reply: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> RawBackend {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let backend = RawBackend {
            port,
            connections: Arc::default(),
            seen: Arc::default(),
            closed_by_peer: Arc::default(),
            changed: Arc::default(),
        };
        let reply = Arc::new(reply);
        let (connections, seen, closed, changed) = (
            backend.connections.clone(),
            backend.seen.clone(),
            backend.closed_by_peer.clone(),
            backend.changed.clone(),
        );
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let connection = connections.fetch_add(1, Ordering::SeqCst) + 1;
                let (reply, seen, closed, changed) =
                    (reply.clone(), seen.clone(), closed.clone(), changed.clone());
                tokio::spawn(async move {
                    serve_raw(stream, connection, &*reply, &seen, &closed).await;
                    changed.notify_waiters();
                });
            }
        });
        backend
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Waits until the proxy closed at least `n` connections to this backend.
    async fn wait_closed_by_peer(&self, n: usize) {
        loop {
            let changed = self.changed.notified();
            if self.closed_by_peer.load(Ordering::SeqCst) >= n {
                return;
            }
            changed.await;
        }
    }
}

async fn serve_raw(
    mut stream: TcpStream,
    connection: usize,
    reply: &(dyn Fn(&Seen) -> Reply + Send + Sync),
    seen: &Mutex<Vec<Seen>>,
    closed_by_peer: &AtomicUsize,
) {
    let _ = stream.set_nodelay(true);
    let mut buffer = Vec::new();
    let mut index_on_connection = 0;
    loop {
        // One request head (the tests send no bodies).
        let head_end = loop {
            if let Some(end) = find(&buffer, b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => {
                    closed_by_peer.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        buffer.drain(..head_end);
        let path = head.split(' ').nth(1).unwrap_or("").to_owned();
        let request = Seen {
            path,
            connection,
            index_on_connection,
        };
        index_on_connection += 1;
        let answer = reply(&request);
        seen.lock().unwrap().push(request);
        match answer {
            Reply::Send(bytes) => {
                if stream.write_all(&bytes).await.is_err() {
                    return;
                }
            }
            Reply::SendAndClose(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.shutdown().await;
                return;
            }
            Reply::SendAndReset(bytes) => {
                let _ = stream.write_all(&bytes).await;
                let _ = stream.set_zero_linger();
                return;
            }
            Reply::Dribble(bytes) => {
                for byte in bytes {
                    if stream.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::task::yield_now().await;
                }
            }
            Reply::Close => return,
            Reply::Silent => {
                let mut rest = [0u8; 1024];
                while let Ok(n) = stream.read(&mut rest).await {
                    if n == 0 {
                        break;
                    }
                }
                closed_by_peer.fetch_add(1, Ordering::SeqCst);
                return;
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// A complete, well-framed 200 whose body names the connection.
fn good(seen: &Seen) -> Vec<u8> {
    let body = format!("good {}", seen.connection);
    format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

async fn proxy_to(host: &str, ports: &[u16], config: ProxyConfig) -> Proxy {
    Proxy::start_with(
        json!([app(
            "/faulty",
            free_port(),
            json!({"HAPROXY_0_VHOST": host}),
            ports
        )]),
        config,
    )
    .await
}

/// GET through the proxy: (status, body), or the body error's text when the body broke.
async fn fetch(
    client: &reqwest::Client,
    proxy: &Proxy,
    host: &str,
    path: &str,
) -> (u16, Result<String, String>) {
    let response = client
        .get(proxy.url(path))
        .header("host", host)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body = response.text().await.map_err(|e| e.to_string());
    (status, body)
}
