//! Upstream HTTP/1.1 connections: a lock-free idle pool per endpoint (carried across table
//! swaps with the endpoint's state), connect with a timeout, and a send that hands the request
//! back when it was never sent, so that it can be retried on another endpoint. Responses with
//! ambiguous framing are refused (502) and their connection closed.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{header, Request, Response};
use http_body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::Notify;

use crate::balance::state::Failure;
use crate::proxy::h1::upstream::{connect_tcp, MAX_INTERIM_RESPONSES, TOO_MANY_INTERIM};
use crate::proxy::request::body::Upstream;
use crate::proxy::request::error::ProxyError;
use crate::upstream::body::RequestBody;
use crate::upstream::h2::StreamSlot;
use crate::upstream::tls::BackendTls;
use crate::upstream::{Endpoint, Exchanged, UpstreamConn};

/// How one request reaches its backend's endpoints: decided by the backend's protocol (a
/// WebSocket upgrade to an HTTP/2 backend goes over HTTP/1.1) and the proxy's settings.
#[derive(Clone, Copy)]
pub struct Dial<'a> {
    pub http2: bool,
    /// A plain HTTP/1 backend and no upgrade: a bodiless request goes over the native path's
    /// sockets (`upstream_native.rs`).
    pub native_h1: bool,
    /// TLS to the endpoint, with whether its certificate is checked.
    pub tls: Option<(&'a BackendTls, bool)>,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
    /// HTTP/2 connections' PING interval and timeout.
    pub h2_keep_alive: Duration,
}

/// What happened to one attempt.
pub enum Attempt {
    /// The upstream answered (any status).
    Response(Response<Upstream>, Exchanged),
    /// The request never left: try another endpoint with it.
    NotSent(Request<RequestBody>, ProxyError),
    /// The request was (maybe partly) sent: it cannot be replayed.
    Failed(ProxyError),
}

/// Sends `request` to `endpoint`: on an HTTP/2 stream, over the native HTTP/1 sockets
/// (bodiless, plain backend), or on hyper's HTTP/1 client.
///
/// Every path is boxed, and only the box is held: the request's future is copied whole as
/// hyper spawns the stream's task and again as the task ends, so each byte it holds costs
/// every request.
pub fn send<'a>(
    endpoint: &'a Arc<Endpoint>,
    request: Request<RequestBody>,
    dial: &'a Dial<'a>,
) -> Pin<Box<dyn Future<Output = Attempt> + Send + 'a>> {
    if dial.http2 {
        Box::pin(super::upstream_h2::send(endpoint, request, dial))
    } else if super::upstream_native::takes(&request, dial) {
        Box::pin(super::upstream_native::send(endpoint, request, dial))
    } else {
        Box::pin(send_http1(endpoint, request, dial))
    }
}

/// [`send`] on hyper's HTTP/1 client, on a pooled connection when one is idle, else a new one.
///
/// A pooled connection the backend closed while it sat idle (its close and our request
/// crossed) fails before any response byte: a bodiless request is then sent once more on a
/// fresh connection, since the backend cannot have acted on it. Timeouts, resets and broken
/// responses count toward the endpoint's passive ejection.
async fn send_http1(
    endpoint: &Arc<Endpoint>,
    request: Request<RequestBody>,
    dial: &Dial<'_>,
) -> Attempt {
    let tls = dial.tls.is_some();
    let response_timeout = dial.response_timeout;
    let Some(mut conn) = pooled(endpoint, tls) else {
        return send_on_new(endpoint, request, dial).await;
    };
    let replay = replayable(&request);
    let mut request = request;
    let interim = count_interim(&mut request);
    let sent = capped(conn.try_send_request(request), &interim);
    let again = match tokio::time::timeout(response_timeout, sent).await {
        Ok(Some(Ok(response))) => return answered(endpoint, response, conn, tls),
        Err(_) => return timed_out(endpoint),
        Ok(None) => return too_many_interim(endpoint),
        Ok(Some(Err(mut err))) => match (err.take_message(), replay) {
            // The pooled connection closed before our request went out: the request is
            // intact, so open a fresh connection and send it there.
            (Some(unsent), _) => unsent,
            (None, Some(again)) if closed_before_answering(err.error()) => {
                tracing::debug!(endpoint = %endpoint.addr, error = %err.error(), "reused connection was closed; sending again on a new one");
                again
            }
            (None, _) => return failed(endpoint, err.into_error()),
        },
    };
    send_on_new(endpoint, again, dial).await
}

/// [`send`] on a connection opened for this request.
async fn send_on_new(
    endpoint: &Arc<Endpoint>,
    request: Request<RequestBody>,
    dial: &Dial<'_>,
) -> Attempt {
    let mut conn = match connect(endpoint, dial).await {
        Ok(conn) => conn,
        Err(err) => return Attempt::NotSent(request, err),
    };
    let mut request = request;
    let interim = count_interim(&mut request);
    let sent = capped(conn.try_send_request(request), &interim);
    match tokio::time::timeout(dial.response_timeout, sent).await {
        Ok(Some(Ok(response))) => answered(endpoint, response, conn, dial.tls.is_some()),
        Err(_) => timed_out(endpoint),
        Ok(None) => too_many_interim(endpoint),
        Ok(Some(Err(mut err))) => match err.take_message() {
            // A fresh connection that closed at once: try another endpoint.
            Some(unsent) => {
                let source = err.into_error();
                let addr = endpoint.addr;
                Attempt::NotSent(unsent, ProxyError::Upstream { addr, source })
            }
            None => failed(endpoint, err.into_error()),
        },
    }
}

/// The upstream answered: its response, unless the framing is ambiguous.
fn answered(
    endpoint: &Endpoint,
    response: Response<Incoming>,
    conn: UpstreamConn,
    tls: bool,
) -> Attempt {
    if let Err(why) = check_framing(response.headers()) {
        endpoint.record_failure(Failure::Response);
        // Dropping the response and the sender closes the connection: whatever follows on it
        // is never read as another response.
        return Attempt::Failed(ProxyError::InvalidResponse(endpoint.addr, why));
    }
    endpoint.mark_ok();
    let response = response.map(Upstream::Left);
    Attempt::Response(response, Exchanged::Http1 { conn, tls })
}

/// One request's interim responses, counted by hyper's client as they arrive.
#[derive(Default)]
struct InterimCount {
    seen: AtomicU32,
    /// Notified once, when the count passes [`MAX_INTERIM_RESPONSES`].
    over: Notify,
}

fn count_interim(request: &mut Request<RequestBody>) -> Arc<InterimCount> {
    let count = Arc::new(InterimCount::default());
    let counter = count.clone();
    hyper::ext::on_informational(request, move |_| {
        if counter.seen.fetch_add(1, Ordering::Relaxed) == MAX_INTERIM_RESPONSES {
            counter.over.notify_one();
        }
    });
    count
}

/// `exchange`'s outcome, or `None` once the upstream sent too many interim responses (the
/// exchange, and with it the connection, is dropped).
async fn capped<F: std::future::Future>(exchange: F, count: &InterimCount) -> Option<F::Output> {
    tokio::select! {
        biased;
        out = exchange => Some(out),
        () = count.over.notified() => None,
    }
}

fn too_many_interim(endpoint: &Endpoint) -> Attempt {
    endpoint.record_failure(Failure::Response);
    Attempt::Failed(ProxyError::InvalidResponse(endpoint.addr, TOO_MANY_INTERIM))
}

pub(super) fn timed_out(endpoint: &Endpoint) -> Attempt {
    endpoint.record_failure(Failure::Response);
    Attempt::Failed(ProxyError::UpstreamTimeout(endpoint.addr))
}

/// The request was (maybe partly) sent and the exchange broke.
pub(super) fn failed(endpoint: &Endpoint, source: hyper::Error) -> Attempt {
    // A client's broken request body is not the endpoint's fault.
    if !(source.is_user() || source.is_body_write_aborted()) {
        endpoint.record_failure(Failure::Response);
    }
    let addr = endpoint.addr;
    Attempt::Failed(ProxyError::Upstream { addr, source })
}

/// A copy of a request that has no body, to send again if its reused connection turns out to
/// be closed (one header-map copy; only for reused connections).
fn replayable(request: &Request<RequestBody>) -> Option<Request<RequestBody>> {
    if !request.body().is_end_stream() {
        return None;
    }
    let mut again = Request::new(request.body().empty());
    *again.method_mut() = request.method().clone();
    *again.uri_mut() = request.uri().clone();
    *again.version_mut() = request.version();
    *again.headers_mut() = request.headers().clone();
    Some(again)
}

/// Whether the connection ended before the upstream sent anything back: EOF or a reset while
/// writing the request or waiting for the head. A parse error means it did answer.
fn closed_before_answering(error: &hyper::Error) -> bool {
    if error.is_incomplete_message() || error.is_closed() || error.is_canceled() {
        return true;
    }
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            use std::io::ErrorKind::*;
            return matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
            );
        }
        source = cause.source();
    }
    false
}

/// Rejects responses whose length is ambiguous (RFC 9112 §6.3): a proxy that picked one
/// reading could be desynchronised from the backend, and the connection must not be reused.
/// hyper refuses differing Content-Lengths and unparsable ones itself.
fn check_framing(headers: &http::HeaderMap) -> Result<(), &'static str> {
    let mut lengths = headers.get_all(header::CONTENT_LENGTH).iter();
    let first = lengths.next();
    if lengths.next().is_some() || first.is_some_and(|v| v.as_bytes().contains(&b',')) {
        return Err("more than one Content-Length");
    }
    if first.is_some() && headers.contains_key(header::TRANSFER_ENCODING) {
        return Err("both Content-Length and Transfer-Encoding");
    }
    Ok(())
}

/// Puts an HTTP/1 connection back for the next request to this endpoint (a connection still
/// busy with a response body becomes ready later; [`pooled`] skips it until then); an HTTP/2
/// stream's place comes back, for the response body to hold.
pub fn release(endpoint: &Endpoint, exchanged: Exchanged) -> Option<StreamSlot> {
    match exchanged {
        Exchanged::Http1 { conn, tls } => {
            if !conn.is_closed() {
                let pools = endpoint.idle().here();
                let pool = if tls { &pools.hyper_tls } else { &pools.hyper };
                // A full pool drops the connection, which closes it.
                let _ = pool.push(conn);
            }
            None
        }
        Exchanged::Http2(stream) => Some(stream),
        // The socket goes back to its pool when the body ends.
        Exchanged::Native => None,
    }
}

/// Busy pooled connections skipped for one request before it opens a new one instead.
const MAX_BUSY_SKIPPED: usize = 8;

/// An idle, ready connection from the endpoint's pool. Closed ones met on the way are dropped;
/// busy ones (a response body still coming) go back to the end, a few at most.
fn pooled(endpoint: &Endpoint, tls: bool) -> Option<UpstreamConn> {
    let pools = endpoint.idle().here();
    pools.expire_one();
    let pool = if tls { &pools.hyper_tls } else { &pools.hyper };
    let mut busy = 0;
    for _ in 0..pool.len() {
        let conn = pool.pop()?;
        if conn.is_closed() {
            // Closed by the backend, or by hyper when bytes nobody asked for arrived while
            // it sat idle: never reused.
            endpoint.discarded_idle();
            continue;
        }
        if conn.is_ready() {
            return Some(conn);
        }
        let _ = pool.push(conn);
        busy += 1;
        if busy == MAX_BUSY_SKIPPED {
            break;
        }
    }
    None
}

/// A new HTTP/1.1 connection (over TLS when `dial` says so); a failure marks the endpoint
/// down for a back-off.
async fn connect(endpoint: &Endpoint, dial: &Dial<'_>) -> Result<UpstreamConn, ProxyError> {
    let addr = endpoint.addr;
    let stream = connect_tcp(endpoint, dial.connect_timeout).await?;
    let mut sender = match dial.tls {
        None => handshake_http1(TokioIo::new(stream), addr).await?,
        Some((tls, check)) => {
            let stream = tls_handshake(endpoint, stream, tls, false, check, dial).await?;
            handshake_http1(TokioIo::new(stream), addr).await?
        }
    };
    sender
        .ready()
        .await
        .map_err(|source| ProxyError::Upstream { addr, source })?;
    Ok(sender)
}

/// hyper's HTTP/1.1 client on a connection, its task spawned.
async fn handshake_http1<I>(io: I, addr: std::net::SocketAddr) -> Result<UpstreamConn, ProxyError>
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(io)
        .await
        .map_err(|source| ProxyError::Upstream { addr, source })?;
    tokio::spawn(async move {
        // Ends when either side closes; errors were already reported to the request.
        let _ = connection.with_upgrades().await;
    });
    Ok(sender)
}

/// The TLS handshake with an endpoint, within the connect timeout; a failure marks the
/// endpoint down for a back-off, as a refused connect does.
pub(super) async fn tls_handshake(
    endpoint: &Endpoint,
    stream: TcpStream,
    tls: &BackendTls,
    http2: bool,
    check: bool,
    dial: &Dial<'_>,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, ProxyError> {
    let addr = endpoint.addr;
    let handshake = tls.connect(stream, addr, http2, check);
    match tokio::time::timeout(dial.connect_timeout, handshake).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(source)) => {
            endpoint.mark_failed();
            Err(ProxyError::Tls { addr, source })
        }
        Err(_) => {
            endpoint.mark_failed();
            Err(ProxyError::ConnectTimeout(addr))
        }
    }
}
