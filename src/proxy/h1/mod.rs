//! Native HTTP/1.1 for client connections, plain or TLS (ALPN `http/1.1` or none): one task reads a request head, routes it,
//! writes it to a pooled upstream socket, reads the response head and relays the body, with no
//! per-request task, channel or header map, and no buffer held while a connection waits (one
//! is taken when bytes are there to read, and let go when the exchange is over).
//!
//! It forwards the common case only: HTTP/1.1, origin-form, no upgrade, no `Expect`, no
//! hop-by-hop headers but `Connection: keep-alive|close`, a body of at most
//! [`head::MAX_BUFFERED_BODY`] that arrived with its head, and a backend whose `plain` verdict
//! holds (decided at table build: no auth, ACL, redirects, sticky sessions or path rewriting).
//! At the first request that is anything else,
//! the connection goes to hyper (`conn::run`) with the bytes read so far, and hyper serves
//! it from there as it serves every other connection: what this path does not do, it never
//! half-does.

mod head;
mod io;
mod prefixed;
mod relay;
pub(crate) mod upstream;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::AsyncReadExt;
use tokio::time::Instant;

use super::{Frontend, ProxyContext};
use crate::proxy::conn::accepted::{Accepted, ClosedCounters, DRAIN_IDLE_GRACE};
use crate::proxy::conn::quickack::ack_now;
use crate::proxy::request::access_log::{self, RequestLog};
use crate::proxy::request::headers::Forwarded;
use crate::proxy::request::route::{self, RouteKey};
use crate::routing::Backend;
use head::{Parsed, RequestHead};
pub use io::Io;
pub use prefixed::Prefixed;

/// Bytes read at a time for a request head.
const HEAD_CHUNK: usize = 4096;

/// Serves a connection until it closes, or until hyper must take it over: at a
/// request this engine does not forward, or at once when the client starts with HTTP/2's
/// preface (which httparse refuses as a request line). Then it hands back the socket and the
/// bytes read and not answered, for the caller to serve with hyper.
pub async fn run<S: Io>(stream: S, accepted: &Accepted<'_>) -> Option<(S, Vec<u8>)> {
    let Accepted {
        ctx,
        frontend,
        peer,
        shutdown,
        closed,
    } = accepted;
    let (frontend, peer) = (*frontend, *peer);
    let flags = Flags::default();
    let mut conn = Conn {
        stream,
        buf: Vec::new(),
        forwarded: Forwarded::new(peer.ip(), frontend.scheme(), frontend.port()),
        ctx,
        frontend,
        peer,
        closed,
        flags: &flags,
        logged: None,
    };
    let outcome = {
        let run = conn.run();
        tokio::pin!(run);
        // Biased, the stop first: a request read in the same wake-up as the stop must already
        // see the drain (its response says `Connection: close`).
        tokio::select! {
            biased;
            () = shutdown.cancelled() => {
                // The next response says `Connection: close`; a connection that stays quiet
                // (idle, no new request) for a whole grace is closed. Closing one the moment
                // it is idle would race the client's next request on it.
                flags.draining.store(true, Ordering::Relaxed);
                let mut seen = flags.requests.load(Ordering::Relaxed);
                loop {
                    tokio::select! {
                        outcome = &mut run => break outcome,
                        () = tokio::time::sleep(DRAIN_IDLE_GRACE) => {
                            let now = flags.requests.load(Ordering::Relaxed);
                            if now == seen && flags.idle.load(Ordering::Relaxed) {
                                break Outcome::Close;
                            }
                            seen = now;
                        }
                    }
                }
            }
            outcome = &mut run => outcome,
        }
    };
    (outcome == Outcome::Hyper).then_some((conn.stream, conn.buf))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Close,
    /// Served by hyper from here: `Conn::buf` holds what was read and not answered.
    Hyper,
}

/// What the connection's loop and its watcher share.
#[derive(Default)]
struct Flags {
    /// The balancer is stopping: the next response closes the connection.
    draining: AtomicBool,
    /// Waiting for a request with nothing of it read.
    idle: AtomicBool,
    /// Requests read so far.
    requests: AtomicU64,
}

struct Conn<'a, S> {
    stream: S,
    /// Bytes read and not yet answered; empty (no allocation) between requests.
    buf: Vec<u8>,
    forwarded: Forwarded,
    ctx: &'a ProxyContext,
    frontend: Frontend,
    peer: std::net::SocketAddr,
    closed: &'a ClosedCounters,
    flags: &'a Flags,
    /// The request's side of its access-log line, with `--access-log` only.
    logged: Option<Box<RequestLog>>,
}

impl<S: Io> Conn<'_, S> {
    async fn run(&mut self) -> Outcome {
        let mut out = Vec::new();
        loop {
            let request = match self.next_request(&mut out).await {
                Next::Request(request) => request,
                Next::Close => return Outcome::Close,
                Next::Hyper => return Outcome::Hyper,
            };
            let Some(backend) = self.backend(&request) else {
                // No route, or a backend that needs more than this path does: hyper answers.
                out.clear();
                return Outcome::Hyper;
            };
            if self.ctx.config.access_log {
                let head = &self.buf[..request.len];
                let logged = request_log(head, &request, self.peer, self.frontend);
                self.logged = Some(Box::new(logged));
            }
            // The request is in `out` now; its bytes leave the buffer, and the buffer goes
            // while the upstream answers.
            self.buf.drain(..request.len);
            if self.buf.is_empty() {
                self.buf = Vec::new();
            }
            let keep = relay::forward(self, &request, &backend, &out).await;
            out = Vec::new();
            if !keep {
                return Outcome::Close;
            }
        }
    }

    /// Reads until a whole request is buffered (its upstream form then in `out`), the client
    /// leaves or idles out, or the request is one for hyper.
    async fn next_request(&mut self, out: &mut Vec<u8>) -> Next {
        let config = &self.ctx.config;
        let deadline = Instant::now() + config.header_timeout;
        let max_head = config.max_header_bytes;
        loop {
            if !self.buf.is_empty() {
                match head::request(&self.buf, max_head, &self.forwarded, out) {
                    Parsed::Request(request) => {
                        // Only this task writes it: no read-modify-write needed.
                        let requests = &self.flags.requests;
                        requests.store(requests.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                        return Next::Request(request);
                    }
                    Parsed::Unsupported => return Next::Hyper,
                    // hyper answers a head that is too long (431).
                    Parsed::Partial if self.buf.len() > max_head => return Next::Hyper,
                    Parsed::Partial => {}
                }
            }
            let idle = self.buf.is_empty();
            if !idle {
                // A head begun and not ended: ACK it now, or a client with Nagle on holds its
                // next bytes for our delayed ACK (see quickack.rs).
                ack_now(self.stream.tcp());
            }
            self.flags.idle.store(idle, Ordering::Relaxed);
            let read = read_more(&mut self.stream, &mut self.buf, HEAD_CHUNK);
            let read = tokio::time::timeout_at(deadline, read).await;
            self.flags.idle.store(false, Ordering::Relaxed);
            match read {
                Ok(Ok(n)) if n > 0 => {}
                // EOF, an error, or the header timeout (idle, or a head that never ends):
                // close, as hyper does.
                _ => return Next::Close,
            }
        }
    }

    /// The request's backend, if this path can forward to it.
    fn backend(&self, request: &RequestHead) -> Option<Arc<Backend>> {
        let key = RouteKey {
            host: &self.buf[request.host.clone()],
            path: std::str::from_utf8(&self.buf[request.path.clone()]).ok()?,
            app_id: request.app_id.clone().map(|id| &self.buf[id]),
        };
        let backend = route::backend(&self.ctx.table, self.frontend, key)?;
        // Decided when the table was built (`routing::Backend::plain`).
        backend.plain.then_some(backend)
    }
}

/// The access log's view of a request this engine parsed: its head parsed once more, with
/// `--access-log` only (the common path keeps no more than routing needs).
fn request_log(
    buf: &[u8],
    request: &RequestHead,
    client: std::net::SocketAddr,
    frontend: Frontend,
) -> RequestLog {
    let mut headers = [httparse::EMPTY_HEADER; head::MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut headers);
    let _ = parsed.parse(buf);
    let header = |name: &str| {
        parsed
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| access_log::lossy(h.value))
    };
    let target = parsed.path.unwrap_or("");
    RequestLog {
        client,
        frontend,
        started: std::time::Instant::now(),
        method: parsed
            .method
            .and_then(|m| http::Method::from_bytes(m.as_bytes()).ok())
            .unwrap_or_default(),
        host: Some(access_log::lossy(&buf[request.host.clone()])),
        path: access_log::lossy(&buf[request.path.clone()]),
        query: target.split_once('?').map(|(_, query)| query.to_owned()),
        // This engine forwards HTTP/1.1 only.
        protocol: access_log::protocol(http::Version::HTTP_11),
        user_agent: header("user-agent"),
        referer: header("referer"),
    }
}

enum Next {
    Request(RequestHead),
    Close,
    Hyper,
}

/// Reads what the socket has into `buf`, growing it by `chunk` only once bytes are there to
/// read: a connection waiting on its peer holds no buffer. `Ok(0)` at EOF.
///
/// The read itself goes through `AsyncRead`, which forgets the socket's readiness after a
/// short read: the next wait (for the next request, or an idle pooled connection's check)
/// then costs no `recv` that can only say "nothing yet".
async fn read_more<S: Io>(
    stream: &mut S,
    buf: &mut Vec<u8>,
    chunk: usize,
) -> std::io::Result<usize> {
    stream.readable().await?;
    if buf.capacity() - buf.len() < chunk / 4 {
        buf.reserve(chunk);
    }
    stream.read_buf(buf).await
}
