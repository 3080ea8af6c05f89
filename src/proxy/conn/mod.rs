//! One client HTTP connection, from hyper's connection future to its end: requests tracked for
//! the idle and send watchdog, HTTP/1 responses told to close while the balancer drains, and a
//! polite close (GOAWAY, or after the request in flight) on shutdown or when idle.

pub mod limits;
pub mod quickack;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use tokio_util::sync::CancellationToken;

use crate::proxy::conn::limits::{Activity, RequestGuard, Tracked, Verdict, WatchedIo};
use crate::proxy::conn::quickack::BodyDue;
use crate::proxy::hyper_engine;
use crate::proxy::request::body::ProxyBody;
use crate::proxy::Frontend;
use crate::proxy::ProxyContext;

/// How a connection's protocol is chosen.
#[derive(Clone, Copy)]
pub enum HttpServer<'a> {
    /// HTTP/1, known from the first bytes: served without detection. The detecting builder
    /// reads the first 24 bytes apart and hands them over; that short first read made hyper
    /// double its read buffer to 16 KiB for the life of the connection.
    Http1(&'a http1::Builder),
    /// HTTP/1.1 or HTTP/2 by the first bytes (prior knowledge), or HTTP/2 only (ALPN `h2`).
    Detect(&'a auto::Builder<TokioExecutor>),
}

/// Serves one HTTP connection (HTTP/1.1, or HTTP/2 by prior knowledge or ALPN) until it ends;
/// on shutdown, or when idle for the header timeout, it closes after the request in flight; a
/// client that stops taking its response for the send timeout is dropped.
#[allow(clippy::too_many_arguments)]
pub async fn serve_http<I>(
    server: HttpServer<'_>,
    io: I,
    ctx: Arc<ProxyContext>,
    frontend: Frontend,
    peer: std::net::SocketAddr,
    sni: Option<Arc<str>>,
    body_due: Option<BodyDue>,
    shutdown: CancellationToken,
    closed: &ClosedCounters,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let idle = ctx.config.header_timeout;
    let send = ctx.config.client_send_timeout;
    let activity = Activity::new();
    let requests = activity.clone();
    let down = Arc::new(hyper_engine::Downstream {
        // X-Forwarded-* values are the connection's: formatted once here.
        forwarded: crate::proxy::request::headers::Forwarded::new(
            peer.ip(),
            frontend.scheme(),
            frontend.port(),
        ),
        ctx,
        frontend,
        client: peer,
        sni,
    });
    // hyper keeps the future returned here as it is: no wrapping future around it (one would
    // hold `http::serve`'s future twice over, and it is copied as each request starts).
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        if request.version() == hyper::Version::HTTP_2 {
            requests.saw_http2();
        }
        if let Some(due) = &body_due {
            if !hyper::body::Body::is_end_stream(request.body()) {
                due.expect();
            }
        }
        hyper_engine::serve(down.clone(), requests.begin(), request)
    });
    let io = WatchedIo::new(io, activity.clone());
    let watch = Watch {
        activity: &activity,
        idle,
        send,
        closed,
        peer,
    };
    match server {
        HttpServer::Http1(builder) => {
            let connection = builder.serve_connection(io, service).with_upgrades();
            drive(connection, |c| c.graceful_shutdown(), &watch, &shutdown).await;
        }
        HttpServer::Detect(builder) if builder.is_http1_available() => {
            let connection = builder.serve_connection_with_upgrades(io, service);
            drive(connection, |c| c.graceful_shutdown(), &watch, &shutdown).await;
        }
        // A builder without HTTP/1 is for a connection that agreed on h2 by ALPN: served as
        // HTTP/2 only (no protocol detection, and no HTTP/1 upgrades to offer).
        HttpServer::Detect(builder) => {
            activity.saw_http2();
            let connection = builder.serve_connection(io, service);
            drive(connection, |c| c.graceful_shutdown(), &watch, &shutdown).await;
        }
    }
}

/// The response as hyper sends it: tracked by the connection's activity until its body ends;
/// while the balancer drains, an HTTP/1 response closes its connection (see the shutdown
/// branch of [`drive`]).
pub fn finish_response(
    mut response: hyper::Response<ProxyBody>,
    guard: RequestGuard,
    http2: bool,
) -> hyper::Response<Tracked<ProxyBody>> {
    if !http2
        && guard.connection_draining()
        && response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS
    {
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    response.map(|body| Tracked::new(body, guard))
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
pub(in crate::proxy) const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);

async fn sleep_or_forever(duration: Duration) {
    match tokio::time::Instant::now().checked_add(duration) {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Connections the proxy closed on a client, by reason; resolved once per listener.
#[derive(Clone)]
pub struct ClosedCounters {
    pub(in crate::proxy) per_ip_limit: prometheus::IntCounter,
    idle: prometheus::IntCounter,
    pub(in crate::proxy) send_stalled: prometheus::IntCounter,
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
