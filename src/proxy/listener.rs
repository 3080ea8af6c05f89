//! Accept loops. Listeners are handed in already bound (tests bind port 0), connections are
//! capped, accept errors back off instead of spinning, and a stop signal ends accepting while
//! open connections finish (HTTP ones are told to close after their current request).

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{http, tcp, Frontend, ProxyContext};

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http(Frontend),
    Tcp { port: u16 },
}

/// Shared by every listener: the connection cap, the stop signal, the connection tracker.
#[derive(Debug, Clone)]
pub struct Connections {
    pub permits: Arc<Semaphore>,
    /// Fires when the balancer stops: open HTTP connections close after their request.
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

impl Connections {
    pub fn new(max: usize) -> Connections {
        Connections {
            permits: Arc::new(Semaphore::new(max)),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }
}

/// Accepts until `stop` fires (this listener removed) or the balancer shuts down. With `tls`,
/// HTTP connections are TLS (the handshake bounded by the header timeout).
pub async fn run(
    listener: TcpListener,
    protocol: Protocol,
    tls: Option<TlsAcceptor>,
    ctx: Arc<ProxyContext>,
    connections: Connections,
    stop: CancellationToken,
) {
    let builder = Arc::new(http_builder(&ctx));
    let mut accept_errors = 0u32;
    // Metric handles for this listener, resolved once.
    let open = ctx
        .metrics
        .listener(&listener_name(protocol, tls.is_some()));
    let tcp_accepted = match protocol {
        Protocol::Tcp { port } => Some(
            ctx.metrics
                .tcp_connections
                .with_label_values(&[&port.to_string()]),
        ),
        Protocol::Http(_) => None,
    };
    loop {
        // Waiting for a permit first leaves excess clients in the kernel's backlog.
        let permit = tokio::select! {
            permit = connections.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = stop.cancelled() => return,
            () = connections.shutdown.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => {
                    if accept_errors > 0 {
                        tracing::info!(failures = accept_errors, "accepting connections again");
                        accept_errors = 0;
                    }
                    accepted
                }
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning, and keep serving. One
                    // warning per run of failures, not one per failure.
                    accept_errors = accept_errors.saturating_add(1);
                    if accept_errors == 1 {
                        tracing::warn!(error = %err, "accept failed; backing off until it works again");
                    } else {
                        tracing::debug!(error = %err, "accept failed");
                    }
                    let backoff = 10 * u64::from(accept_errors.min(10));
                    tokio::time::sleep(Duration::from_millis(backoff)).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
            () = connections.shutdown.cancelled() => return,
        };
        let ctx = ctx.clone();
        let open = OpenConnection::new(&open);
        match protocol {
            Protocol::Tcp { port } => {
                if let Some(counter) = &tcp_accepted {
                    counter.inc();
                }
                // A TCP connection has no request boundary to stop at: on shutdown it keeps
                // flowing until it ends or the drain timeout does.
                connections.tracker.spawn(async move {
                    let _permit = permit;
                    let _open = open;
                    tcp::serve(ctx, port, stream, peer).await;
                });
            }
            Protocol::Http(frontend) => {
                let builder = builder.clone();
                let shutdown = connections.shutdown.clone();
                let first_byte = ctx.config.header_timeout;
                let tls = tls.clone();
                connections.tracker.spawn(async move {
                    let _permit = permit;
                    let _open = open;
                    let _ = stream.set_nodelay(true);
                    // hyper times out a request's head, but not a client that connects and
                    // sends nothing while the protocol is being detected: do it here.
                    let mut probe = [0u8; 1];
                    if !matches!(
                        tokio::time::timeout(first_byte, stream.peek(&mut probe)).await,
                        Ok(Ok(1..))
                    ) {
                        return;
                    }
                    let Some(acceptor) = tls else {
                        let io = TokioIo::new(stream);
                        serve_http(&builder, io, ctx, frontend, peer, None, shutdown).await;
                        return;
                    };
                    // A stalled or dribbled handshake must not hold a connection slot.
                    let stream =
                        match tokio::time::timeout(first_byte, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => stream,
                            Ok(Err(err)) => {
                                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let sni = stream.get_ref().1.server_name().map(Arc::from);
                    let io = TokioIo::new(stream);
                    serve_http(&builder, io, ctx, frontend, peer, sni, shutdown).await;
                });
            }
        }
    }
}

/// Serves one HTTP connection (HTTP/1.1, or HTTP/2 by prior knowledge or ALPN) until it ends;
/// on shutdown it closes after the request in flight.
pub async fn serve_http<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    ctx: Arc<ProxyContext>,
    frontend: Frontend,
    peer: std::net::SocketAddr,
    sni: Option<Arc<str>>,
    shutdown: CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    // X-Forwarded-* values are the connection's: formatted once here.
    let forwarded = Arc::new(super::headers::Forwarded::new(
        peer.ip(),
        frontend.scheme(),
        frontend.port(),
    ));
    let service = service_fn(move |request| {
        http::serve(
            ctx.clone(),
            frontend,
            peer,
            sni.clone(),
            forwarded.clone(),
            request,
        )
    });
    let connection = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => return,
        () = shutdown.cancelled() => {}
    }
    connection.as_mut().graceful_shutdown();
    let _ = connection.await;
}

/// The `listener` label of a listener's metrics.
fn listener_name(protocol: Protocol, tls: bool) -> String {
    match protocol {
        Protocol::Http(Frontend::Vhost { tls: false, .. }) => "http".to_owned(),
        Protocol::Http(Frontend::Vhost { tls: true, .. }) => "https".to_owned(),
        Protocol::Http(Frontend::AppId { .. }) => "app_id".to_owned(),
        Protocol::Http(Frontend::ServicePort { port, .. }) if tls => format!("https:{port}"),
        Protocol::Http(Frontend::ServicePort { port, .. }) => format!("http:{port}"),
        Protocol::Tcp { port } => format!("tcp:{port}"),
    }
}

/// Counts an open connection in its listener's gauge until dropped.
struct OpenConnection(prometheus::IntGauge);

impl OpenConnection {
    fn new(gauge: &prometheus::IntGauge) -> OpenConnection {
        gauge.inc();
        OpenConnection(gauge.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// HTTP/1.1 and HTTP/2 (prior knowledge) on one port, with explicit limits.
pub fn http_builder(ctx: &ProxyContext) -> auto::Builder<TokioExecutor> {
    let config = &ctx.config;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.max_concurrent_streams)
        .max_header_list_size(config.max_header_bytes as u32)
        .max_pending_accept_reset_streams(Some(32))
        .max_local_error_reset_streams(Some(256))
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}
