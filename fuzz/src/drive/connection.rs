//! A whole client connection (HTTP/1.1, or HTTP/2 by prior knowledge) written into a
//! `tokio::io::duplex` whose other end is served by the proxy's real hyper service, built as
//! `proxy::listener` builds it, over a small table: a live backend, a closed port, a path rule,
//! a redirect and an ACL. The response is read to the end; the connection must finish.
//! [`http_connection_native`] sends the same bytes over a loopback socket to the native
//! HTTP/1 path, which hands what it does not forward to the same hyper service.
//!
//! The first input byte picks the listener: `a` the app-id port (9091), `s` a service port,
//! anything else the vhost port (80). Upper case (`A`, `S`, `V`) also starts a graceful
//! shutdown once the bytes are written.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::json;
use switchyard::metrics::Metrics;
use switchyard::proxy::conn::accepted::{Accepted, ClosedCounters};
use switchyard::proxy::conn::builders::HttpBuilders;
use switchyard::proxy::conn::{self, hyper_conn};
use switchyard::proxy::{Frontend, ProxyConfig, ProxyContext};
use switchyard::routing::SharedTable;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::apps::build_table;
use super::events::runtime;

/// A connection that has not finished by then is a hang.
const CONNECTION_BOUND: Duration = Duration::from_secs(10);

/// The service port of `/live` (the `s` listener).
pub const LIVE_SERVICE_PORT: u16 = 10001;

struct Harness {
    ctx: Arc<ProxyContext>,
    builders: HttpBuilders,
    closed: ClosedCounters,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let live = runtime().block_on(start_backend());
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a loopback port")
            .port();
        let body = serde_json::to_vec(&apps(live, closed)).expect("JSON renders");
        let snapshot = switchyard::marathon::parse_apps(&body).expect("the apps parse");
        let table = build_table(&snapshot);
        assert!(table.problems().is_empty(), "{:?}", table.problems());
        let config = ProxyConfig {
            connect_timeout: Duration::from_secs(1),
            server_timeout: Duration::from_secs(2),
            header_timeout: Duration::from_secs(1),
            tunnel_timeout: Duration::from_secs(2),
            drain_timeout: Duration::from_secs(2),
            ..ProxyConfig::default()
        };
        let metrics = Arc::new(Metrics::new());
        let ctx = Arc::new(ProxyContext {
            table: SharedTable::new(table),
            config,
            unrouted: metrics.backend("unrouted"),
            metrics,
            tunnels: tokio_util::task::TaskTracker::new(),
            auth_failures: Default::default(),
            backend_tls: switchyard::upstream::tls::BackendTls::new(None).expect("no CA to read"),
        });
        let mut builders = HttpBuilders::new(&ctx);
        // The client below half-closes once its bytes are written. The real builders close on
        // an EOF mid-request (hyper's default), which would answer nothing; here the request in
        // flight is answered first. Everything else is the listener's builders as they are.
        builders.allow_half_close();
        let closed = ClosedCounters::new(&ctx.metrics);
        Harness {
            ctx,
            builders,
            closed,
        }
    })
}

fn apps(live: u16, closed: u16) -> serde_json::Value {
    let app = |id: &str, service_port: u16, task_port: u16, labels: serde_json::Value| {
        let mut labels = labels;
        labels["HAPROXY_GROUP"] = json!("external");
        json!({
            "id": id,
            "labels": labels,
            "portDefinitions": [{"port": service_port}],
            "tasks": [{"id": format!("{}.t1", &id[1..]), "host": "127.0.0.1",
                       "state": "TASK_RUNNING", "ports": [task_port]}],
        })
    };
    json!({"apps": [
        app("/live", LIVE_SERVICE_PORT, live, json!({"HAPROXY_0_VHOST": "live.example.test,*.wild.example.test"})),
        app("/down", 10002, closed, json!({"HAPROXY_0_VHOST": "down.example.test"})),
        app("/api", 10003, live, json!({"HAPROXY_0_VHOST": "live.example.test", "HAPROXY_0_PATH": "/api",
            "HAPROXY_0_HTTP_BACKEND_PROXYPASS_PATH": "/api", "HAPROXY_0_STICKY": "true"})),
        app("/secure", 10004, live, json!({"HAPROXY_0_VHOST": "secure.example.test", "HAPROXY_0_REDIRECT_TO_HTTPS": "true"})),
        app("/acl", 10005, live, json!({"HAPROXY_0_VHOST": "acl.example.test", "HAPROXY_0_BACKEND_NETWORK_ALLOWED_ACL": "10.0.0.0/8"})),
    ]})
}

/// An HTTP/1.1 backend on loopback that answers every request with a small 200.
async fn start_backend() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let port = listener.local_addr().expect("its address").port();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_request| async {
                    Ok::<_, Infallible>(hyper::Response::new(Full::new(Bytes::from_static(
                        b"live\n",
                    ))))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    port
}

/// Drives one client connection; returns the bytes the client read.
pub fn http_connection(data: &[u8]) -> Vec<u8> {
    let harness = harness();
    let (frontend, graceful, request) = split_input(data);
    runtime().block_on(async {
        let (client, server) = tokio::io::duplex(64 * 1024);
        let shutdown = CancellationToken::new();
        let accepted = Accepted {
            ctx: harness.ctx.clone(),
            frontend,
            peer: PEER,
            shutdown: shutdown.clone(),
            closed: &harness.closed,
        };
        let served = tokio::spawn(hyper_conn::run(
            // As the listener chooses, by the first bytes.
            harness.builders.for_first_bytes(request),
            TokioIo::new(server),
            accepted,
            None,
            None,
        ));
        let (read, write) = tokio::io::split(client);
        exchange(read, write, request, graceful, shutdown, served).await
    })
}

/// The same connection over a loopback socket pair, served as the listener serves a plain
/// connection: by the native HTTP/1 path (`proxy::h1`), and by hyper from the first request
/// that path hands over.
pub fn http_connection_native(data: &[u8]) -> Vec<u8> {
    let harness = harness();
    let (frontend, graceful, request) = split_input(data);
    runtime().block_on(async {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("its address");
        let client = tokio::net::TcpStream::connect(addr)
            .await
            .expect("a loopback connection");
        let (server, peer) = listener.accept().await.expect("the connection");
        let shutdown = CancellationToken::new();
        let accepted = Accepted {
            ctx: harness.ctx.clone(),
            frontend,
            peer,
            shutdown: shutdown.clone(),
            closed: &harness.closed,
        };
        // As the listener serves a plain connection (the harness's context has the native
        // engine on: the default).
        let served = tokio::spawn(conn::run(accepted, server, None, &harness.builders));
        let (read, write) = client.into_split();
        exchange(read, write, request, graceful, shutdown, served).await
    })
}

const PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 40000);

/// The listener the first byte picks, whether to shut down gracefully, and the bytes to send.
fn split_input(data: &[u8]) -> (Frontend, bool, &[u8]) {
    let (selector, request) = data.split_first().map_or((b'v', data), |(s, r)| (*s, r));
    let frontend = match selector.to_ascii_lowercase() {
        b'a' => Frontend::AppId { port: 9091 },
        b's' => Frontend::ServicePort {
            port: LIVE_SERVICE_PORT,
            tls: false,
        },
        _ => Frontend::Vhost {
            port: 80,
            tls: false,
        },
    };
    (frontend, selector.is_ascii_uppercase(), request)
}

/// Writes the request (then, if asked, starts a graceful shutdown) and half-closes; reads the
/// response to its end. The connection must finish within [`CONNECTION_BOUND`].
async fn exchange(
    mut read: impl AsyncRead + Unpin,
    mut write: impl AsyncWrite + Unpin,
    request: &[u8],
    graceful: bool,
    shutdown: CancellationToken,
    served: tokio::task::JoinHandle<()>,
) -> Vec<u8> {
    let send = async {
        // The server may close early (a 400): later writes fail, which is fine.
        let _ = write.write_all(request).await;
        if graceful {
            shutdown.cancel();
        }
        let _ = write.shutdown().await;
    };
    let mut response = Vec::new();
    let receive = read.read_to_end(&mut response);
    let finished = tokio::time::timeout(CONNECTION_BOUND, async {
        let ((), _) = tokio::join!(send, receive);
        served.await
    })
    .await;
    match finished {
        Ok(Ok(())) => {}
        Ok(Err(err)) => panic!("the connection task failed: {err}"),
        Err(_) => panic!("the connection did not finish within {CONNECTION_BOUND:?}"),
    }
    response
}
