//! Accept loops. Listeners are handed in already bound (tests bind port 0), connections are
//! capped, accept errors back off instead of spinning, and a stop signal ends accepting while
//! open connections finish (HTTP ones are told to close after their current request; each is
//! served by `connection.rs`).

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use super::connection::{serve_http, ClosedCounters, HttpServer};
use super::per_ip::PerIp;
use super::quickack::AckWhenWaiting;
use super::{tcp, Frontend, ProxyContext};

/// Connections the kernel completes and queues for a listener before it accepts them (capped
/// by `net.core.somaxconn`). At the connection cap accepting pauses, and a flood waits here
/// instead of in SYN retries; 128 (what a plain bind gave) filled at once.
const BACKLOG: u32 = 4096;

/// Binds a listening socket with the balancer's backlog (`SO_REUSEADDR`, as a plain bind), or
/// takes the one a predecessor handed over for `addr`.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    // Handed over by the process this one replaces (binary upgrade): already listening.
    if let Some(inherited) = crate::upgrade::take(addr) {
        return inherited;
    }
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

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
    /// Open connections by client address (capped by `max_connections_per_ip`).
    pub per_ip: Arc<PerIp>,
    /// Fires when the balancer stops: open HTTP connections close after their request.
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

impl Connections {
    pub fn new(max: usize) -> Connections {
        Connections {
            permits: Arc::new(Semaphore::new(max)),
            per_ip: Arc::default(),
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
    let builder = Arc::new(HttpBuilders::new(&ctx));
    // Handed to a successor on a binary upgrade while this loop runs.
    let listener = Arc::new(listener);
    let _offered = crate::upgrade::offer(&listener);
    tokio::select! {
        () = crate::upgrade::until_accepting() => {}
        () = stop.cancelled() => return,
        () = connections.shutdown.cancelled() => return,
    }
    // Accepted sockets start with the listener's TCP_NODELAY: set once here, not per client.
    if let Err(err) = socket2::SockRef::from(&*listener).set_tcp_nodelay(true) {
        tracing::warn!(error = %err, "cannot set TCP_NODELAY on a listener; its replies may wait for ACKs");
    }
    #[cfg(target_os = "linux")]
    if let Protocol::Http(_) = protocol {
        // HTTP and TLS clients speak first: a connection reaches accept with its request, one
        // wakeup and no empty read per new connection. A client that sends nothing is handed
        // over after about a second, and the header timeout runs from there.
        if let Err(err) = super::sockopt::set_defer_accept(&*listener, 1) {
            tracing::debug!(error = %err, "TCP_DEFER_ACCEPT unavailable; accepting at once");
        }
    }
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
    let closed = ClosedCounters::new(&ctx.metrics);
    let max_per_ip = ctx.config.max_connections_per_ip;
    loop {
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
        // One client address may not take every slot.
        let Some(per_ip) = connections.per_ip.admit(peer.ip(), max_per_ip) else {
            closed.per_ip_limit.inc();
            tracing::debug!(%peer, "closed: too many connections from this address");
            continue;
        };
        // At the cap, this accepted client waits (unread) for a slot and the rest stay in the
        // kernel's backlog. The permit is taken after accept so that a listener waiting for
        // clients holds no slot.
        let permit = match connections.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => tokio::select! {
                permit = connections.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => return,
                },
                () = stop.cancelled() => return,
                () = connections.shutdown.cancelled() => return,
            },
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
                    let _per_ip = per_ip;
                    let _open = open;
                    tcp::serve(ctx, port, stream, peer).await;
                });
            }
            Protocol::Http(frontend) => {
                let builder = builder.clone();
                let shutdown = connections.shutdown.clone();
                let first_byte = ctx.config.header_timeout;
                let tls = tls.clone();
                let closed = closed.clone();
                connections.tracker.spawn(async move {
                    let _permit = permit;
                    let _per_ip = per_ip;
                    let _open = open;
                    // Plain: the native path reads the first bytes itself (no peek; HTTP/2's
                    // preface goes on to hyper) under the header timeout.
                    if tls.is_none() && ctx.config.native_http1 {
                        let serve = super::h1::serve(
                            stream, ctx, frontend, peer, shutdown, &closed, &builder,
                        );
                        return Box::pin(serve).await;
                    }
                    // hyper times out a request's head, but not a client that connects and
                    // sends nothing while the protocol is being detected: do it here.
                    let mut probe = [0u8; H2_PREFACE.len()];
                    let seen = match tokio::time::timeout(first_byte, stream.peek(&mut probe)).await
                    {
                        Ok(Ok(seen @ 1..)) => seen,
                        _ => return,
                    };
                    match tls {
                        // Boxed, like the TLS branch: the connection's state is kilobytes, and
                        // tokio copies a task's whole future when it spawns it and twice more
                        // when it ends (5 % of the CPU of a new connection per request).
                        None => {
                            let server = builder.for_first_bytes(&probe[..seen]);
                            let stream = AckWhenWaiting::new(stream);
                            let due = Some(stream.body_due());
                            let io = TokioIo::new(stream);
                            let serve = serve_http(
                                server, io, ctx, frontend, peer, None, due, shutdown, &closed,
                            );
                            Box::pin(serve).await
                        }
                        // Boxed: a TLS session's state is kilobytes, and inline it would make
                        // every plain connection's task as big (memory per connection, and a
                        // larger copy at each spawn).
                        Some(acceptor) => {
                            let tls = super::handshake::TlsConnection {
                                acceptor,
                                stream,
                                peer,
                                first_byte,
                            };
                            Box::pin(tls.serve(&builder, ctx, frontend, shutdown, &closed)).await
                        }
                    }
                });
            }
        }
    }
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

/// The HTTP/1 settings, for hyper's own builder and the detecting builder's HTTP/1 part
/// alike (two types with the same methods).
macro_rules! http1_settings {
    ($builder:expr, $config:expr) => {
        $builder
            // Without a timer hyper's header timeout is silently off.
            .timer(TokioTimer::new())
            .header_read_timeout($config.header_timeout)
            // The request head plus pipelined bytes; a longer head is a 431.
            .max_buf_size($config.max_header_bytes.max(8192))
            // Header lines: hyper's default of 100 (more is a 431; `tests/hostile/hostile_h1.rs` sends
            // 500 and checks the 431), not set here: setting it makes hyper fill a 100-slot
            // vector on every request it parses instead of using an uninitialised array,
            // ~6,000 instructions.
            .keep_alive(true)
    };
}

/// What every HTTP/2 connection starts with (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One listener's connection builders: by protocol detection, for HTTP/1 known from the first
/// bytes, and for HTTP/2 agreed by ALPN (which the client must then speak: bytes other than
/// the preface get a GOAWAY, not an HTTP/1 400).
pub struct HttpBuilders {
    any: auto::Builder<TokioExecutor>,
    http1: http1::Builder,
    http2: auto::Builder<TokioExecutor>,
}

impl HttpBuilders {
    pub fn new(ctx: &ProxyContext) -> HttpBuilders {
        let any = http_builder(ctx);
        let mut http1 = http1::Builder::new();
        http1_settings!(http1, ctx.config);
        // `max_buf_size` alone is a soft bound: one read may fill the whole buffer, and a head
        // past it that arrives complete is parsed. This one is checked on every head (a 431).
        // The detecting builder has no such setting; there the bound stays soft.
        http1.max_header_size(ctx.config.max_header_bytes);
        HttpBuilders {
            http2: any.clone().http2_only(),
            http1,
            any,
        }
    }

    /// For a plain connection, by its first bytes (peeked; only the preface's length counts):
    /// what may still become HTTP/2's preface is left to detection.
    pub fn for_first_bytes(&self, first: &[u8]) -> HttpServer<'_> {
        if H2_PREFACE.starts_with(&first[..first.len().min(H2_PREFACE.len())]) {
            HttpServer::Detect(&self.any)
        } else {
            HttpServer::Http1(&self.http1)
        }
    }

    /// Keeps serving after the client half-closes (hyper's default is to close on an EOF
    /// mid-request). For a driver whose client half-closes once its bytes are written.
    pub fn allow_half_close(&mut self) {
        self.any.http1().half_close(true);
        self.http1.half_close(true);
    }

    /// A client that agreed on a protocol by ALPN speaks it (RFC 7301); one that named none
    /// may still send HTTP/2's preface.
    pub(super) fn for_alpn(&self, alpn: Option<&[u8]>) -> HttpServer<'_> {
        match alpn {
            Some(b"h2") => HttpServer::Detect(&self.http2),
            Some(b"http/1.1") => HttpServer::Http1(&self.http1),
            _ => HttpServer::Detect(&self.any),
        }
    }
}

/// HTTP/1.1 and HTTP/2 (prior knowledge) on one port, every limit set explicitly so that a
/// dependency upgrade cannot loosen one silently (reliability spec §3).
fn http_builder(ctx: &ProxyContext) -> auto::Builder<TokioExecutor> {
    let config = &ctx.config;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    http1_settings!(builder.http1(), config);
    builder
        .http2()
        .timer(TokioTimer::new())
        // Rapid reset (CVE-2023-44487): fewer streams to cancel at once (hyper's default 200).
        .max_concurrent_streams(config.max_concurrent_streams)
        // CONTINUATION floods and HPACK bombs end at the same head size HTTP/1 allows.
        .max_header_list_size(config.max_header_bytes as u32)
        // HEADERS+RST_STREAM before we accept the stream (RUSTSEC-2023-0034): GOAWAY past 20.
        .max_pending_accept_reset_streams(Some(20))
        // Streams we had to reset for the client's errors (MadeYouReset); never unlimited.
        .max_local_error_reset_streams(Some(256))
        // Upload buffering per stream and per connection while the upstream is slow: the
        // connection window caps what one client can make us hold.
        .initial_stream_window_size(Some(256 * 1024))
        .initial_connection_window_size(Some(1024 * 1024))
        .adaptive_window(false)
        .max_frame_size(Some(16 * 1024))
        // Response data queued per stream for a client that does not read.
        .max_send_buf_size(64 * 1024)
        // A dead peer (no PING answer) is noticed within 40 s; idle connections with no
        // streams are closed by the connection watchdog at the header timeout.
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}
