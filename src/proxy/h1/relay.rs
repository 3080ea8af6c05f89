//! One request on the native path: pick an endpoint (retrying others while nothing was sent),
//! exchange heads, then relay the response body as it comes, counted on the backend's metric
//! handles as hyper's path counts it.

use std::sync::Arc;
use std::time::Instant;

use tokio::io::AsyncWriteExt;

use super::head::RequestHead;
use super::upstream::{self, Attempt};
use super::{read_more, Conn, Io};
use crate::balance::state::Failure;
use crate::proxy::request::access_log::{Answer, BytesIn, Pending};
use crate::proxy::request::account;
use crate::proxy::request::error::ProxyError;
use crate::routing::Backend;
use crate::upstream::chunked::Scanner;
use crate::upstream::h1_body::Framing;
use crate::upstream::Endpoint;

/// Bytes read at a time from a response body.
const BODY_CHUNK: usize = 32 * 1024;

/// Forwards `request` (its upstream bytes in `upstream_request`) and relays the answer.
/// Whether the client connection can take another request.
pub(super) async fn forward<S: Io>(
    conn: &mut Conn<'_, S>,
    request: &RequestHead,
    backend: &Arc<Backend>,
    upstream_request: &[u8],
) -> bool {
    let started = Instant::now();
    let config = &conn.ctx.config;
    let close_client = request.close
        || conn
            .flags
            .draining
            .load(std::sync::atomic::Ordering::Relaxed);
    let timeouts = (config.connect_timeout, config.server_timeout);
    let metrics = &backend.metrics;
    let client_ip = conn.peer.ip();
    let outgoing = upstream::Outgoing {
        bytes: upstream_request,
        head_request: request.head_method,
        close_client,
        replayable: request.body_len == 0,
    };
    let mut head_out = Vec::new();
    let mut attempts = crate::proxy::Attempts::new();
    let mut error = ProxyError::NoEndpoint;
    while let Some(target) = attempts.next(backend, client_ip, None) {
        let endpoint = &target.state;
        let in_flight = endpoint.begin();
        let exchange = upstream::exchange(endpoint, &outgoing, &mut head_out, timeouts);
        match exchange.await {
            Attempt::Answered(answer) => {
                if request.body_len > 0 {
                    metrics.bytes_in().inc_by(request.body_len as u64);
                }
                let exchange = Exchange {
                    backend,
                    endpoint,
                    started,
                    body_len: request.body_len,
                };
                let relayed = relay(conn, exchange, answer, head_out).await;
                drop(in_flight);
                return relayed && !close_client;
            }
            Attempt::NotSent(err) => {
                tracing::debug!(endpoint = %endpoint.addr, error = %err, "retrying on another endpoint");
                metrics.connect_errors().inc();
                error = err;
            }
            Attempt::Failed(err) => {
                error = err;
                break;
            }
        }
    }
    let status = error.status();
    let mut pending = account(
        conn,
        backend,
        status.as_u16(),
        started,
        None,
        request.body_len,
    );
    tracing::debug!(client = %conn.peer, error = %error, "request failed");
    write_error(conn, status, close_client, &mut pending).await && !close_client
}

/// Counts the answer (as hyper's engine does: one stage, `request::account`) and makes its
/// access-log line, written when the returned [`Pending`] is dropped.
fn account<S>(
    conn: &mut Conn<'_, S>,
    backend: &Arc<Backend>,
    status: u16,
    started: Instant,
    endpoint: Option<std::net::SocketAddr>,
    body_len: usize,
) -> Pending {
    account::account(conn.frontend, backend, status, started.elapsed());
    let line = conn.logged.take().map(|request| {
        let answer = Answer {
            status,
            backend: Some(backend.clone()),
            endpoint,
        };
        request.answered(answer, BytesIn::Read(body_len as u64))
    });
    Pending::new(line)
}

/// Sends the response head and body to the client (the answer counted once its first body
/// bytes are known good); the upstream connection goes back to its pool when the body ended
/// cleanly. Whether the client connection is still in step.
async fn relay<S: Io>(
    conn: &mut Conn<'_, S>,
    exchange: Exchange<'_>,
    answer: upstream::Answer,
    mut out: Vec<u8>,
) -> bool {
    let Exchange {
        backend,
        endpoint,
        started,
        body_len,
    } = exchange;
    let upstream::Answer {
        stream: mut upstream,
        mut buf,
        head,
    } = answer;
    let bytes_out = backend.metrics.bytes_out();
    let mut body = Body::new(head.framing);
    let first = match body.take(&buf[head.len..]) {
        Ok(n) => n,
        Err(why) => {
            // Nothing went to the client yet: it gets a 502, as for a broken head.
            endpoint.record_failure(Failure::Response);
            let error = ProxyError::InvalidResponse(endpoint.addr, why);
            tracing::debug!(client = %conn.peer, %error, "request failed");
            let status = error.status();
            let mut pending = account(conn, backend, status.as_u16(), started, None, body_len);
            write_error(conn, status, true, &mut pending).await;
            return false;
        }
    };
    let served_by = Some(endpoint.addr);
    let mut pending = account(conn, backend, head.status, started, served_by, body_len);
    let mut excess = head.len + first < buf.len();
    out.extend_from_slice(&buf[head.len..head.len + first]);
    if !write_client(conn, &out).await {
        return false;
    }
    drop(out);
    bytes_out.inc_by(first as u64);
    pending.sent(first);
    let idle = conn.ctx.config.server_timeout;
    while !body.is_done() {
        buf.clear();
        let read = tokio::time::timeout(idle, read_more(&mut upstream, &mut buf, BODY_CHUNK)).await;
        let n = match read {
            Ok(Ok(0)) if body.framing == Framing::Close => break,
            Ok(Ok(n)) if n > 0 => n,
            // Cut short, broken or stalled: the client's response ends unfinished.
            _ => {
                tracing::debug!(endpoint = %endpoint.addr, "response body ended early");
                return false;
            }
        };
        let taken = match body.take(&buf[..n]) {
            Ok(taken) => taken,
            Err(why) => {
                tracing::debug!(endpoint = %endpoint.addr, why, "response body broken");
                return false;
            }
        };
        excess = taken < n;
        if !write_client(conn, &buf[..taken]).await {
            return false;
        }
        bytes_out.inc_by(taken as u64);
        pending.sent(taken);
    }
    drop(buf);
    if head.reusable && !excess {
        upstream::release(endpoint, upstream);
    }
    body.framing != Framing::Close
}

/// The request being answered, as `relay` needs it.
struct Exchange<'a> {
    backend: &'a Arc<Backend>,
    endpoint: &'a Arc<Endpoint>,
    started: Instant,
    /// The request body's length (it came with the head).
    body_len: usize,
}

/// How much of a response body is left.
struct Body {
    framing: Framing,
    left: u64,
    chunks: Scanner,
}

impl Body {
    fn new(framing: Framing) -> Body {
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Body {
            framing,
            left,
            chunks: Scanner::default(),
        }
    }

    fn is_done(&self) -> bool {
        match self.framing {
            Framing::Empty => true,
            Framing::Length(_) => self.left == 0,
            Framing::Chunked => self.chunks.is_done(),
            Framing::Close => false,
        }
    }

    /// How many of `bytes` (the body's next ones) belong to it.
    fn take(&mut self, bytes: &[u8]) -> Result<usize, &'static str> {
        match self.framing {
            Framing::Empty => Ok(0),
            Framing::Length(_) => {
                let n = self.left.min(bytes.len() as u64);
                self.left -= n;
                Ok(n as usize)
            }
            Framing::Chunked => self.chunks.feed(bytes),
            Framing::Close => Ok(bytes.len()),
        }
    }
}

/// Writes to the client within the send timeout; a client that stops taking its response
/// is dropped (counted as on hyper's path).
async fn write_client<S: Io>(conn: &mut Conn<'_, S>, bytes: &[u8]) -> bool {
    let send = conn.ctx.config.client_send_timeout;
    // Flushed: TLS keeps what the socket did not take at once.
    let write = async {
        conn.stream.write_all(bytes).await?;
        conn.stream.flush().await
    };
    match tokio::time::timeout(send, write).await {
        Ok(Ok(())) => true,
        Ok(Err(_)) => false,
        Err(_) => {
            conn.closed.send_stalled.inc();
            tracing::debug!(peer = %conn.peer, "closed: the client stopped taking its response");
            false
        }
    }
}

/// Our own answer for a request that got no upstream response, as `error::status_response`
/// words it.
async fn write_error<S: Io>(
    conn: &mut Conn<'_, S>,
    status: http::StatusCode,
    close: bool,
    pending: &mut Pending,
) -> bool {
    let text = crate::proxy::request::error::status_text(status);
    let close = close || crate::proxy::request::error::closes_connection(status);
    let head = format!(
        "HTTP/1.1 {}\r\ncontent-type: text/plain; charset=utf-8\r\ncache-control: no-cache\r\ncontent-length: {}\r\n{}\r\n{text}",
        // The status line is the body's text: code and reason.
        text.trim_end(),
        text.len(),
        if close { "connection: close\r\n" } else { "" },
    );
    let written = write_client(conn, head.as_bytes()).await;
    if written {
        pending.sent(text.len());
    }
    written && !close
}
