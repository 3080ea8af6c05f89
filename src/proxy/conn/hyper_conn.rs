//! One HTTP connection served by hyper, from its connection future to its end: requests
//! tracked for the idle and send watchdog, HTTP/1 responses told to close while the balancer
//! drains, and a polite close (GOAWAY, or after the request in flight) on shutdown or when
//! idle.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use tokio_util::sync::CancellationToken;

use super::accepted::{Accepted, ClosedCounters, DRAIN_IDLE_GRACE};
use super::builders::HttpServer;
use super::limits::{Activity, Verdict, WatchedIo};
use super::quickack::BodyDue;
use crate::proxy::hyper_engine;

/// Serves one HTTP connection (HTTP/1.1, or HTTP/2 by prior knowledge or ALPN) until it ends;
/// on shutdown, or when idle for the header timeout, it closes after the request in flight; a
/// client that stops taking its response for the send timeout is dropped. `sni` is the name
/// of a TLS handshake; `body_due` arms the quick ACK when a request body is due.
pub async fn run<I>(
    server: HttpServer<'_>,
    io: I,
    accepted: Accepted<'_>,
    sni: Option<Arc<str>>,
    body_due: Option<BodyDue>,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let Accepted {
        ctx,
        frontend,
        peer,
        shutdown,
        closed,
    } = accepted;
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
    // hold `hyper_engine::proxy_request`'s future twice over, and it is copied as each request starts).
    let service = service_fn(move |request: hyper::Request<hyper::body::Incoming>| {
        if request.version() == hyper::Version::HTTP_2 {
            requests.saw_http2();
        }
        if let Some(due) = &body_due {
            if !hyper::body::Body::is_end_stream(request.body()) {
                due.expect();
            }
        }
        hyper_engine::proxy_request(down.clone(), requests.begin(), request)
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
    // Biased, the stop first: a request read in the same wake-up as the stop must already see
    // the drain (its response says `Connection: close`).
    tokio::select! {
        biased;
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
        _ = connection.as_mut() => return,
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

async fn sleep_or_forever(duration: Duration) {
    match tokio::time::Instant::now().checked_add(duration) {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
