//! One request to an HTTP/2 endpoint (`h2`, `h2-ssl`): a stream on one of the endpoint's
//! connections, or on a new one when all are full (`upstream/h2.rs`). A request the connection
//! never took (its GOAWAY, or its end, crossed our send) goes once more on a new connection,
//! then, if that cannot be had, to another endpoint; a stream the backend refused unprocessed
//! (a GOAWAY naming a lower stream, `REFUSED_STREAM`), or sent on a connection that ended
//! before the backend's first byte (never served), is sent again the same way when its body
//! could be kept (`upstream/replay.rs`).

use std::future::Future as _;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use http::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};

use super::upstream::{failed, timed_out, tls_handshake, Attempt, Dial};
use crate::balance::state::Failure;
use crate::proxy::h1::upstream::connect_tcp;
use crate::proxy::request::error::ProxyError;
use crate::upstream::body::RequestBody;
use crate::upstream::h2::{H2Conn, H2Conns, H2Sender, HeardIo, StreamSlot};
use crate::upstream::replay;
use crate::upstream::{Endpoint, Exchanged};

/// Per-stream and per-connection receive windows: what one slow client can make us hold of a
/// response (the backend then waits for the window to open: flow control end to end).
const STREAM_WINDOW: u32 = 256 * 1024;
const CONNECTION_WINDOW: u32 = 2 * 1024 * 1024;
/// Largest response head accepted from a backend.
const MAX_HEADER_LIST: u32 = 64 * 1024;

/// Sends `request` on a stream to `endpoint`. Opening a connection is boxed: this future is
/// boxed whole for every call, and the handshakes' states would make it several times larger.
pub async fn send(
    endpoint: &Arc<Endpoint>,
    request: Request<RequestBody>,
    dial: &Dial<'_>,
) -> Attempt {
    let stream = match conns(endpoint, dial).pick() {
        Some(stream) => stream,
        None => match Box::pin(open(endpoint, dial)).await {
            Ok(stream) => stream,
            Err(err) => return Attempt::NotSent(request, err),
        },
    };
    let request = match exchange(endpoint, stream, request, dial).await {
        Exchange::Done(attempt) => return attempt,
        Exchange::Again(request, why) => {
            tracing::debug!(endpoint = %endpoint.addr, error = %why, "the backend did not take the request; sending it on a new connection");
            request
        }
    };
    match Box::pin(open(endpoint, dial)).await {
        Ok(stream) => match exchange(endpoint, stream, request, dial).await {
            Exchange::Done(attempt) => attempt,
            Exchange::Again(request, err) => Attempt::NotSent(request, err),
        },
        Err(err) => Attempt::NotSent(request, err),
    }
}

/// What one try on one connection came to.
enum Exchange {
    Done(Attempt),
    /// Not taken, or refused unprocessed: the request, whole again.
    Again(Request<RequestBody>, ProxyError),
}

async fn exchange(
    endpoint: &Arc<Endpoint>,
    stream: StreamSlot,
    request: Request<RequestBody>,
    dial: &Dial<'_>,
) -> Exchange {
    let (request, replay) = replay::wrap(request);
    let mut sender: H2Sender = stream.conn().sender();
    let sent = sender.try_send_request(request);
    let addr = endpoint.addr;
    match tokio::time::timeout(dial.response_timeout, sent).await {
        Ok(Ok(response)) => {
            replay.answered();
            endpoint.mark_ok();
            Exchange::Done(Attempt::Response(
                response.map(http_body_util::Either::Left),
                Exchanged::Http2(stream),
            ))
        }
        Err(_) => Exchange::Done(timed_out(endpoint)),
        Ok(Err(mut err)) => {
            if let Some(unsent) = err.take_message() {
                let source = err.into_error();
                let error = ProxyError::Upstream { addr, source };
                return Exchange::Again(replay::unwrap(unsent), error);
            }
            let source = err.into_error();
            if let Some(err) = replay.client_failed() {
                // hyper reset the stream for it: the client's fault, not the endpoint's.
                return Exchange::Done(Attempt::Failed(ProxyError::ClientBody(err)));
            }
            let unheard = !stream.conn().heard_from_backend();
            if unheard {
                endpoint.record_failure(Failure::Connect);
            }
            if unheard || replay::refused(&source) {
                // Its place on the refusing connection goes first.
                drop(stream);
                if let Some(again) = replay.recover().await {
                    return Exchange::Again(again, ProxyError::Upstream { addr, source });
                }
            }
            Exchange::Done(failed(endpoint, source))
        }
    }
}

fn conns<'e>(endpoint: &'e Endpoint, dial: &Dial<'_>) -> &'e H2Conns {
    let pools = endpoint.idle().here();
    if dial.tls.is_some() {
        &pools.h2_tls
    } else {
        &pools.h2
    }
}

/// A stream on a new connection; when the endpoint has all the connections it may, a place in
/// the least busy one's queue instead.
async fn open(endpoint: &Arc<Endpoint>, dial: &Dial<'_>) -> Result<StreamSlot, ProxyError> {
    let conns = conns(endpoint, dial);
    if conns.is_full() {
        if let Some(stream) = conns.least_busy() {
            return Ok(stream);
        }
    }
    let tcp = connect_tcp(endpoint, dial.connect_timeout).await?;
    let conn = match dial.tls {
        None => handshake(HeardIo::new(tcp), endpoint, dial.h2_keep_alive).await?,
        Some((tls, check)) => {
            let stream = tls_handshake(endpoint, tcp, tls, true, check, dial).await?;
            handshake(HeardIo::new(stream), endpoint, dial.h2_keep_alive).await?
        }
    };
    conns.add(&conn);
    Ok(conn.take_stream().unwrap_or_else(|| conn.queue_stream()))
}

/// hyper's HTTP/2 client on a new connection, every limit set explicitly; its task keeps the
/// connection's stream limit up to date and counts a failed PING against the endpoint. A PING
/// goes `keep_alive` after the last frame from the backend, idle or not, and must be answered
/// within the same, else the connection is closed (a backend gone without a FIN).
async fn handshake<I>(
    (io, heard): (HeardIo<I>, Arc<AtomicBool>),
    endpoint: &Arc<Endpoint>,
    keep_alive: Duration,
) -> Result<Arc<H2Conn>, ProxyError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let addr = endpoint.addr;
    let io = TokioIo::new(io);
    let (sender, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .timer(TokioTimer::new())
        .initial_stream_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .adaptive_window(false)
        .max_frame_size(16 * 1024)
        .max_header_list_size(MAX_HEADER_LIST)
        // Request data queued per stream for a backend that does not read.
        .max_send_buf_size(64 * 1024)
        .keep_alive_interval(keep_alive)
        .keep_alive_timeout(keep_alive)
        .keep_alive_while_idle(true)
        .handshake(io)
        .await
        .map_err(|source| ProxyError::Upstream { addr, source })?;
    let limit = Arc::new(AtomicUsize::new(conn.current_max_send_streams()));
    let watched = limit.clone();
    // Weak: the endpoint's state holds the connection's sender, which keeps this task alive.
    let endpoint: Weak<Endpoint> = Arc::downgrade(endpoint);
    tokio::spawn(async move {
        let mut conn = Box::pin(conn);
        let ended = std::future::poll_fn(|cx| {
            let polled = conn.as_mut().poll(cx);
            watched.store(conn.current_max_send_streams(), Ordering::Relaxed);
            polled
        })
        .await;
        if let Err(err) = ended {
            if err.is_timeout() {
                tracing::debug!(endpoint = %addr, "an HTTP/2 connection's PING went unanswered");
                if let Some(endpoint) = endpoint.upgrade() {
                    endpoint.record_failure(Failure::Response);
                }
            }
        }
    });
    Ok(H2Conn::new(sender, limit, heard))
}
