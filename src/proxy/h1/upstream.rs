//! The native path's upstream side: plain sockets pooled per endpoint between exchanges, a
//! request written whole (its body is in the same bytes), the response head read back. hyper's
//! engine sends its bodiless requests to plain HTTP/1 backends this way too
//! (`hyper_engine/upstream_native.rs`), so both engines share the sockets.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

pub(in crate::proxy) use super::head::line as header_line;
pub use super::head::ResponseOut;
use super::head::{self, ParsedResponse, ResponseHead};
use super::read_more;
use crate::balance::state::Failure;
use crate::proxy::request::error::ProxyError;
use crate::upstream::{Endpoint, UpstreamStream};

/// The most interim (1xx, other than 101) responses one request may get before its final
/// response, on both HTTP/1 paths: past it the exchange is given up (502), as a backend may
/// send them without end (hyper's client would skip them until the response timeout).
pub const MAX_INTERIM_RESPONSES: u32 = 16;
/// Why such an exchange was given up.
pub const TOO_MANY_INTERIM: &str = "too many interim (1xx) responses";

/// A response head received; its first body bytes may follow the head in `buf`.
pub struct Answer {
    pub stream: TcpStream,
    pub buf: Vec<u8>,
    pub head: ResponseHead,
}

pub enum Attempt {
    Answered(Answer),
    /// The request never reached the endpoint: try another one.
    NotSent(ProxyError),
    Failed(ProxyError),
}

/// Bytes read at a time for a response head.
const HEAD_CHUNK: usize = 4096;
/// The largest response head accepted, and the most bytes of interim responses before it
/// (502 past either).
const MAX_RESPONSE_HEAD: usize = 64 * 1024;

/// What one exchange sends, and how it may be sent again.
pub struct Outgoing<'a> {
    /// The request's head and body, whole.
    pub bytes: &'a [u8],
    /// A HEAD request: its response has no body.
    pub head_request: bool,
    /// The client asked to close: its response head says so.
    pub close_client: bool,
    /// Bodiless: sent again on a new connection if a reused one closes without a byte back.
    pub replayable: bool,
}

/// Sends the request to `endpoint` and reads the response head, whose client form goes to
/// `out`. On a pooled connection first; one the backend closed while it sat idle is replaced
/// by a new connection, once, when the request never left whole, or left without a body
/// and nothing came back (the backend's close and our request crossed; hyper's path replays
/// bodiless requests alike).
pub async fn exchange(
    endpoint: &Arc<Endpoint>,
    request: &Outgoing<'_>,
    out: &mut impl ResponseOut,
    timeouts: (Duration, Duration),
) -> Attempt {
    let (connect_timeout, response_timeout) = timeouts;
    if let Some(stream) = pooled(endpoint) {
        let trip = round_trip(stream, request, out);
        match tokio::time::timeout(response_timeout, trip).await {
            Err(_) => return timed_out(endpoint),
            Ok(Ok(answer)) => return answered(endpoint, answer),
            Ok(Err(Trip::Unsent(err))) => {
                tracing::debug!(endpoint = %endpoint.addr, error = %err, "reused connection was closed; sending on a new one");
            }
            Ok(Err(Trip::Unanswered(err))) if request.replayable => {
                tracing::debug!(endpoint = %endpoint.addr, error = %err, "reused connection was closed; sending again on a new one");
            }
            Ok(Err(Trip::Unanswered(err))) => return failed(endpoint, Broken::Io(err)),
            Ok(Err(Trip::Broken(err))) => return failed(endpoint, err),
        }
    }
    let stream = match connect_tcp(endpoint, connect_timeout).await {
        Ok(stream) => stream,
        Err(err) => return Attempt::NotSent(err),
    };
    let trip = round_trip(stream, request, out);
    match tokio::time::timeout(response_timeout, trip).await {
        Err(_) => timed_out(endpoint),
        Ok(Ok(answer)) => answered(endpoint, answer),
        Ok(Err(
            Trip::Unsent(source) | Trip::Unanswered(source) | Trip::Broken(Broken::Io(source)),
        )) => failed(endpoint, Broken::Io(source)),
        Ok(Err(Trip::Broken(err))) => failed(endpoint, err),
    }
}

/// Puts a connection whose exchange ended cleanly back in its endpoint's pool.
pub fn release(endpoint: &Endpoint, stream: TcpStream) {
    // A full pool hands it back; dropped, it closes.
    let _ = endpoint
        .idle()
        .here()
        .native
        .push(UpstreamStream::new(stream));
}

fn pooled(endpoint: &Endpoint) -> Option<TcpStream> {
    let pools = endpoint.idle().here();
    pools.expire_one();
    let pool = &pools.native;
    for _ in 0..pool.len() {
        let conn = pool.pop()?;
        if conn.is_usable() {
            return Some(conn.into_inner());
        }
        // Closed by the backend, or holding bytes it sent while idle: never reused.
        endpoint.discarded_idle();
    }
    None
}

enum Broken {
    Io(std::io::Error),
    Response(&'static str),
}

enum Trip {
    /// The request could not be written whole: the backend never had all of it.
    Unsent(std::io::Error),
    /// Nothing came back: the connection was closed or reset before any response byte.
    Unanswered(std::io::Error),
    Broken(Broken),
}

async fn round_trip(
    mut stream: TcpStream,
    request: &Outgoing<'_>,
    out: &mut impl ResponseOut,
) -> Result<Answer, Trip> {
    let (head_request, close_client) = (request.head_request, request.close_client);
    stream
        .write_all(request.bytes)
        .await
        .map_err(Trip::Unsent)?;
    let mut buf = Vec::new();
    // Interim (1xx) responses so far, and their bytes: bounded, as a backend may send them
    // without end.
    let (mut interim, mut interim_bytes) = (0, 0);
    loop {
        // Nothing came back yet (an interim response is an answer: never replayed after one).
        let silent = buf.is_empty() && interim == 0;
        match read_more(&mut stream, &mut buf, HEAD_CHUNK).await {
            Ok(0) if silent => {
                return Err(Trip::Unanswered(std::io::ErrorKind::UnexpectedEof.into()))
            }
            Ok(0) => {
                return Err(Trip::Broken(Broken::Response(
                    "closed before its response head ended",
                )))
            }
            Ok(_) => {}
            Err(err) if silent => return Err(Trip::Unanswered(err)),
            Err(err) => return Err(Trip::Broken(Broken::Io(err))),
        }
        loop {
            match head::response(&buf, head_request, close_client, out) {
                Ok(ParsedResponse::Final(head)) => return Ok(Answer { stream, buf, head }),
                Ok(ParsedResponse::Interim(len)) => {
                    interim += 1;
                    interim_bytes += len;
                    if interim > MAX_INTERIM_RESPONSES || interim_bytes > MAX_RESPONSE_HEAD {
                        return Err(Trip::Broken(Broken::Response(TOO_MANY_INTERIM)));
                    }
                    // Skipped, as hyper's client skips them; their bytes go at once.
                    buf.drain(..len);
                }
                Ok(ParsedResponse::Partial) if buf.len() > MAX_RESPONSE_HEAD => {
                    return Err(Trip::Broken(Broken::Response("response head too large")))
                }
                Ok(ParsedResponse::Partial) => break,
                Err(why) => return Err(Trip::Broken(Broken::Response(why))),
            }
        }
    }
}

fn answered(endpoint: &Endpoint, answer: Answer) -> Attempt {
    endpoint.mark_ok();
    Attempt::Answered(answer)
}

fn timed_out(endpoint: &Endpoint) -> Attempt {
    endpoint.record_failure(Failure::Response);
    Attempt::Failed(ProxyError::UpstreamTimeout(endpoint.addr))
}

fn failed(endpoint: &Endpoint, err: Broken) -> Attempt {
    endpoint.record_failure(Failure::Response);
    let addr = endpoint.addr;
    Attempt::Failed(match err {
        Broken::Io(source) => ProxyError::UpstreamIo { addr, source },
        Broken::Response(why) => ProxyError::InvalidResponse(addr, why),
    })
}

/// A TCP connection to `endpoint` (no delay); a failure marks the endpoint down for a
/// back-off.
pub async fn connect_tcp(endpoint: &Endpoint, timeout: Duration) -> Result<TcpStream, ProxyError> {
    let addr = endpoint.addr;
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => {
            endpoint.mark_failed();
            return Err(ProxyError::Connect { addr, source });
        }
        Err(_) => {
            endpoint.mark_failed();
            return Err(ProxyError::ConnectTimeout(addr));
        }
    };
    let _ = stream.set_nodelay(true);
    Ok(stream)
}
