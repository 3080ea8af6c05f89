//! One request to an HTTP/2 endpoint (`h2`, `h2-ssl`): a stream on one of the endpoint's
//! connections, or on a new one when all are full (`upstream/h2.rs`). A request the connection
//! never took (its GOAWAY, or its end, crossed our send) goes once more on a new connection,
//! then, if that cannot be had, to another endpoint; a stream the backend refused unprocessed
//! (a GOAWAY naming a lower stream, `REFUSED_STREAM`), or sent on a connection that ended
//! before the backend's first byte (never served), is sent again the same way when its body
//! could be kept (`upstream/replay.rs`).

use std::future::{poll_fn, Future as _};
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;

use http::{header, HeaderMap, Request};
use http_body::Body as _;

use super::upstream::{timed_out, Attempt, Dial};
use crate::balance::state::Failure;
use crate::proxy::request::error::ProxyError;
use crate::upstream::body::RequestBody;
use crate::upstream::h2::{H2Conns, StreamSlot};
use crate::upstream::h2_body::{H2Body, SendBody, SendFailure};
use crate::upstream::replay;
use crate::upstream::{Endpoint, Exchanged};

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
    let addr = endpoint.addr;
    let (request, replay) = replay::wrap(request);
    let (mut head, body) = request.into_parts();
    strip_connection_headers(&mut head.headers);
    let end = body.is_end_stream();
    let mut sender = stream.conn().sender();
    let opened = match poll_fn(|cx| sender.poll_ready(cx)).await {
        Ok(()) => sender.send_request(Request::from_parts(head, ()), end),
        Err(err) => Err(err),
    };
    let (mut response, send) = match opened {
        Ok(opened) => opened,
        // The connection takes no new streams (its GOAWAY, its end): the request is whole.
        // An error of ours (a head h2 will not send) leaves the connection as it is.
        Err(source) => {
            if source.is_io() || source.reason().is_some() {
                stream.conn().close();
            }
            drop(body);
            return again(replay, ProxyError::UpstreamStream { addr, source }).await;
        }
    };
    let mut pump = (!end).then(|| SendBody::new(body, send));
    let mut client_failed = None;
    let head = poll_fn(|cx| {
        if let Some(sending) = &mut pump {
            if let Poll::Ready(sent) = Pin::new(sending).poll(cx) {
                if let Err(SendFailure::Client(err)) = sent {
                    client_failed = Some(err);
                }
                pump = None;
            }
        }
        Pin::new(&mut response).poll(cx)
    });
    match tokio::time::timeout(dial.response_timeout, head).await {
        Ok(Ok(response)) => {
            replay.answered();
            endpoint.mark_ok();
            if let Some(rest) = pump {
                rest.finish_on_its_own();
            }
            let response = response.map(|recv| http_body_util::Either::Right(H2Body::new(recv)));
            Exchange::Done(Attempt::Response(
                response.map(http_body_util::Either::Left),
                Exchanged::Http2(stream),
            ))
        }
        Err(_) => Exchange::Done(timed_out(endpoint)),
        Ok(Err(source)) => {
            if let Some(err) = client_failed {
                // A client's broken request body is not the endpoint's fault.
                return Exchange::Done(Attempt::Failed(ProxyError::ClientBody(err)));
            }
            drop(pump);
            let unheard = !stream.conn().heard_from_backend();
            if unheard {
                endpoint.record_failure(Failure::Connect);
            }
            if unheard || replay::refused(&source) {
                // Its place on the refusing connection goes first.
                drop(stream);
                return again(replay, ProxyError::UpstreamStream { addr, source }).await;
            }
            endpoint.record_failure(Failure::Response);
            Exchange::Done(Attempt::Failed(ProxyError::UpstreamStream { addr, source }))
        }
    }
}

/// The request back whole, to send again; a failure when too much of its body went out.
async fn again(replay: replay::Replay, err: ProxyError) -> Exchange {
    match replay.recover().await {
        Some(request) => Exchange::Again(request, err),
        None => Exchange::Done(Attempt::Failed(err)),
    }
}

/// Headers HTTP/2 forbids (RFC 9113 §8.2.2), which h2 refuses to send; a request from an
/// HTTP/1 client may still carry them after the hop-by-hop ones were stripped.
fn strip_connection_headers(headers: &mut HeaderMap) {
    for name in [
        header::CONNECTION,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
    ] {
        headers.remove(name);
    }
    headers.remove("keep-alive");
    headers.remove("proxy-connection");
    if headers.get(header::TE).is_some_and(|te| te != "trailers") {
        headers.remove(header::TE);
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
    let conn = super::upstream_h2_conn::open(endpoint, dial).await?;
    conns.add(&conn);
    Ok(conn.take_stream().unwrap_or_else(|| conn.queue_stream()))
}
