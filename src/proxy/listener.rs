//! Accept loops. Listeners are handed in already bound (tests bind port 0), connections are
//! capped, accept errors back off instead of spinning, and a stop signal ends accepting while
//! open connections finish (HTTP ones are told to close after their current request).

use std::future::Future;
use std::pin::Pin;
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

use super::limits::{Activity, PerIp, Tracked, Verdict, WatchedIo};
use super::{http, tcp, Frontend, ProxyContext};

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
    let builder = Arc::new(Builders::new(http_builder(&ctx)));
    // Handed to a successor on a binary upgrade while this loop runs.
    let listener = Arc::new(listener);
    let _offered = crate::upgrade::offer(&listener);
    tokio::select! {
        () = crate::upgrade::until_accepting() => {}
        () = stop.cancelled() => return,
        () = connections.shutdown.cancelled() => return,
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
                        serve_http(
                            &builder.any,
                            io,
                            ctx,
                            frontend,
                            peer,
                            None,
                            shutdown,
                            &closed,
                        )
                        .await;
                        return;
                    };
                    // A stalled or dribbled handshake must not hold a connection slot.
                    let stream =
                        match tokio::time::timeout(first_byte, acceptor.accept(stream)).await {
                            Ok(Ok(stream)) => {
                                ctx.metrics.tls_handshakes.inc();
                                stream
                            }
                            Ok(Err(err)) => {
                                ctx.metrics.tls_handshake_failures.inc();
                                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                ctx.metrics.tls_handshake_failures.inc();
                                tracing::debug!(%peer, "TLS handshake timed out");
                                return;
                            }
                        };
                    let session = stream.get_ref().1;
                    let sni = session.server_name().map(Arc::from);
                    let builder = builder.for_alpn(session.alpn_protocol());
                    let io = TokioIo::new(stream);
                    serve_http(builder, io, ctx, frontend, peer, sni, shutdown, &closed).await;
                });
            }
        }
    }
}

/// Serves one HTTP connection (HTTP/1.1, or HTTP/2 by prior knowledge or ALPN) until it ends;
/// on shutdown, or when idle for the header timeout, it closes after the request in flight; a
/// client that stops taking its response for the send timeout is dropped.
#[allow(clippy::too_many_arguments)]
pub async fn serve_http<I>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    ctx: Arc<ProxyContext>,
    frontend: Frontend,
    peer: std::net::SocketAddr,
    sni: Option<Arc<str>>,
    shutdown: CancellationToken,
    closed: &ClosedCounters,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let idle = ctx.config.header_timeout;
    let send = ctx.config.client_send_timeout;
    let activity = Activity::new();
    let requests = activity.clone();
    // X-Forwarded-* values are the connection's: formatted once here.
    let forwarded = Arc::new(super::headers::Forwarded::new(
        peer.ip(),
        frontend.scheme(),
        frontend.port(),
    ));
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        let http2 = request.version() == hyper::Version::HTTP_2;
        if http2 {
            requests.saw_http2();
        }
        let guard = requests.begin();
        let served = http::serve(
            ctx.clone(),
            frontend,
            peer,
            sni.clone(),
            forwarded.clone(),
            request,
        );
        async move {
            let mut response = served.await?;
            // Draining: HTTP/1 closes after this response (see `serve_http`'s shutdown).
            if !http2
                && guard.connection_draining()
                && response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS
            {
                response.headers_mut().insert(
                    hyper::header::CONNECTION,
                    hyper::header::HeaderValue::from_static("close"),
                );
            }
            Ok::<_, std::convert::Infallible>(response.map(|body| Tracked::new(body, guard)))
        }
    });
    let io = WatchedIo::new(io, activity.clone());
    let watch = Watch {
        activity: &activity,
        idle,
        send,
        closed,
        peer,
    };
    // A builder without HTTP/1 is for a connection that agreed on h2 by ALPN: served as HTTP/2
    // only (no protocol detection, and no HTTP/1 upgrades to offer).
    if builder.is_http1_available() {
        let connection = builder.serve_connection_with_upgrades(io, service);
        drive(connection, |c| c.graceful_shutdown(), &watch, &shutdown).await;
    } else {
        activity.saw_http2();
        let connection = builder.serve_connection(io, service);
        drive(connection, |c| c.graceful_shutdown(), &watch, &shutdown).await;
    }
}

/// What watches one connection, for [`drive`].
struct Watch<'a> {
    activity: &'a Activity,
    /// No request for this long: close politely.
    idle: Duration,
    /// A response waiting on the client this long: drop the connection.
    send: Duration,
    closed: &'a ClosedCounters,
    peer: std::net::SocketAddr,
}

/// Runs a connection until it ends: on shutdown, or when idle, it is closed politely
/// (`close_politely`: hyper's graceful shutdown), within a grace; a client that stops taking
/// its response is dropped.
async fn drive<C: Future>(
    connection: C,
    close_politely: impl Fn(Pin<&mut C>),
    watch: &Watch<'_>,
    shutdown: &CancellationToken,
) {
    let Watch {
        activity,
        idle,
        send,
        closed,
        peer,
    } = *watch;
    tokio::pin!(connection);
    let watchdog = activity.watch(idle, send);
    tokio::pin!(watchdog);
    // How long a polite close may take: unbounded on shutdown (the drain timeout bounds it),
    // a short grace after an idle GOAWAY (HTTP/2 waits for a PING answer before it closes,
    // which a client that stopped reading never sends; one that reads answers at once).
    let mut grace = Duration::MAX;
    // What the watchdog's verdict means: close politely within a grace, or drop now (`None`).
    let judged = |verdict: Verdict| match verdict {
        // HTTP/1 closes itself at the header timeout; this is for HTTP/2 with no streams.
        Verdict::Idle => {
            closed.idle.inc();
            Some(IDLE_GOAWAY_GRACE.min(idle))
        }
        Verdict::SendStalled => {
            closed.send_stalled.inc();
            tracing::debug!(%peer, "closed: the client stopped taking its response");
            None
        }
    };
    tokio::select! {
        _ = connection.as_mut() => return,
        () = shutdown.cancelled() => {
            // HTTP/1 has no way to tell a client "go away" but closing, and closing an idle
            // keep-alive connection races a client sending its next request on it (the errors
            // HAProxy's `idle-close-on-response` avoids). So the next response says
            // `Connection: close` instead; a connection in use sends one within the grace,
            // and one left quiet that long is closed then. HTTP/2 gets its GOAWAY at once.
            if !activity.is_http2() {
                activity.start_draining();
                let quiet = async {
                    tokio::time::sleep(DRAIN_IDLE_GRACE).await;
                    activity.watch(DRAIN_IDLE_GRACE.min(idle), send).await
                };
                tokio::select! {
                    _ = connection.as_mut() => return,
                    verdict = watchdog.as_mut() => match judged(verdict) {
                        Some(polite) => grace = polite,
                        None => return,
                    },
                    verdict = quiet => match judged(verdict) {
                        Some(polite) => grace = polite,
                        None => return,
                    },
                }
            }
        }
        verdict = watchdog.as_mut() => match judged(verdict) {
            Some(polite) => grace = polite,
            None => return,
        },
    }
    close_politely(connection.as_mut());
    // Closing politely still must not wait on a client that stopped reading.
    let stalled = async {
        let watchdog = activity.watch(Duration::MAX, send);
        if watchdog.await == Verdict::SendStalled {
            closed.send_stalled.inc();
        }
    };
    tokio::select! {
        _ = connection => {}
        () = stalled => {}
        () = sleep_or_forever(grace) => {}
    }
}

/// How long an idle connection told to close (HTTP/2: GOAWAY) may take to go.
const IDLE_GOAWAY_GRACE: Duration = Duration::from_secs(1);

/// How long an idle HTTP/1 connection stays open once the balancer starts draining, for a
/// client about to reuse it to send one more request (answered with `Connection: close`).
const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);

async fn sleep_or_forever(duration: Duration) {
    match tokio::time::Instant::now().checked_add(duration) {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Connections the proxy closed on a client, by reason; resolved once per listener.
#[derive(Clone)]
pub struct ClosedCounters {
    per_ip_limit: prometheus::IntCounter,
    idle: prometheus::IntCounter,
    send_stalled: prometheus::IntCounter,
}

impl ClosedCounters {
    pub fn new(metrics: &crate::metrics::Metrics) -> ClosedCounters {
        let reason = |r: &str| metrics.connections_closed.with_label_values(&[r]);
        ClosedCounters {
            per_ip_limit: reason("per_ip_limit"),
            idle: reason("idle"),
            send_stalled: reason("send_stalled"),
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

/// HTTP/1.1 and HTTP/2 (prior knowledge) on one port, every limit set explicitly so that a
/// dependency upgrade cannot loosen one silently (reliability spec §3).
/// One listener's connection builders: by protocol detection, and for HTTP/2 agreed by ALPN
/// (which the client must then speak: bytes other than the preface get a GOAWAY, not an
/// HTTP/1 400).
struct Builders {
    any: auto::Builder<TokioExecutor>,
    http2: auto::Builder<TokioExecutor>,
}

impl Builders {
    fn new(any: auto::Builder<TokioExecutor>) -> Builders {
        Builders {
            http2: any.clone().http2_only(),
            any,
        }
    }

    fn for_alpn(&self, alpn: Option<&[u8]>) -> &auto::Builder<TokioExecutor> {
        match alpn {
            Some(b"h2") => &self.http2,
            _ => &self.any,
        }
    }
}

pub fn http_builder(ctx: &ProxyContext) -> auto::Builder<TokioExecutor> {
    let config = &ctx.config;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        // Without a timer hyper's header timeout is silently off.
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        // The request head plus pipelined bytes; a longer head is a 431.
        .max_buf_size(config.max_header_bytes.max(8192))
        // Header lines: hyper's default of 100 (more is a 431; `tests/hostile_h1.rs` sends 500
        // and checks the 431), not set here: setting it makes hyper fill a 100-slot vector on
        // every request it parses instead of using an uninitialised array, ~6,000 instructions.
        .keep_alive(true);
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
