//! A new HTTP/2 connection to an endpoint, on the h2 crate directly (streams are opened from
//! the requests' own tasks, with no hop through a client task), and the task that drives it:
//! it keeps the backend's stream limit up to date, and PINGs the backend every `keep_alive`,
//! closing the connection when a PING goes unanswered that long (a backend gone without a FIN).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::client::Connection;
use h2::{Ping, PingPong};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{Instant, Sleep};

use super::upstream::{tls_handshake, Dial};
use crate::balance::state::Failure;
use crate::proxy::h1::upstream::connect_tcp;
use crate::proxy::request::error::ProxyError;
use crate::upstream::h2::{ConnState, H2Conn, HeardIo};
use crate::upstream::Endpoint;

/// Per-stream and per-connection receive windows: what one slow client can make us hold of a
/// response (the backend then waits for the window to open: flow control end to end).
const STREAM_WINDOW: u32 = 256 * 1024;
const CONNECTION_WINDOW: u32 = 2 * 1024 * 1024;
/// Largest response head accepted from a backend.
const MAX_HEADER_LIST: u32 = 64 * 1024;
/// Request data queued per stream for a backend that does not read.
const MAX_SEND_BUFFER: usize = 64 * 1024;

/// Connects (TLS when the backend's protocol says so) and starts HTTP/2 on the connection.
pub async fn open(endpoint: &Arc<Endpoint>, dial: &Dial<'_>) -> Result<Arc<H2Conn>, ProxyError> {
    let tcp = connect_tcp(endpoint, dial.connect_timeout).await?;
    let state = Arc::new(ConnState::default());
    match dial.tls {
        None => handshake(HeardIo::new(tcp, state.clone()), state, endpoint, dial).await,
        Some((tls, check)) => {
            let stream = tls_handshake(endpoint, tcp, tls, true, check, dial).await?;
            handshake(HeardIo::new(stream, state.clone()), state, endpoint, dial).await
        }
    }
}

/// Every limit set explicitly; the connection's task is spawned here.
async fn handshake<I>(
    io: HeardIo<I>,
    state: Arc<ConnState>,
    endpoint: &Arc<Endpoint>,
    dial: &Dial<'_>,
) -> Result<Arc<H2Conn>, ProxyError>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let addr = endpoint.addr;
    let (sender, mut conn) = h2::client::Builder::new()
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(16 * 1024)
        .max_header_list_size(MAX_HEADER_LIST)
        .max_send_buffer_size(MAX_SEND_BUFFER)
        .enable_push(false)
        .handshake::<_, Bytes>(io)
        .await
        .map_err(|source| ProxyError::UpstreamStream { addr, source })?;
    state
        .limit
        .store(conn.max_concurrent_send_streams(), Ordering::Relaxed);
    let pings = conn.ping_pong().expect("a new connection's PING handle");
    let driven = Driven {
        conn,
        pings,
        keep_alive: dial.h2_keep_alive,
        next_ping: Box::pin(tokio::time::sleep(dial.h2_keep_alive)),
        awaiting_pong: false,
        state: state.clone(),
    };
    // Weak: the endpoint's state holds the connection, which keeps this task alive.
    let endpoint: Weak<Endpoint> = Arc::downgrade(endpoint);
    tokio::spawn(async move {
        let ended = driven.await;
        if let Ended::PingUnanswered = ended {
            tracing::debug!(endpoint = %addr, "an HTTP/2 connection's PING went unanswered");
            if let Some(endpoint) = endpoint.upgrade() {
                endpoint.record_failure(Failure::Response);
            }
        }
    });
    Ok(H2Conn::new(sender, state))
}

/// How a connection's task ended.
enum Ended {
    /// Closed, or broken by an error its streams see.
    Closed,
    PingUnanswered,
}

/// A connection and its keep-alive, polled as one future on the connection's task.
struct Driven<I> {
    conn: Connection<HeardIo<I>, Bytes>,
    pings: PingPong,
    keep_alive: Duration,
    next_ping: Pin<Box<Sleep>>,
    awaiting_pong: bool,
    state: Arc<ConnState>,
}

impl<I: AsyncRead + AsyncWrite + Unpin> Future for Driven<I> {
    type Output = Ended;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Ended> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.conn).poll(cx);
        this.state
            .limit
            .store(this.conn.max_concurrent_send_streams(), Ordering::Relaxed);
        if polled.is_ready() {
            this.state.close();
            return Poll::Ready(Ended::Closed);
        }
        loop {
            if this.awaiting_pong {
                match this.pings.poll_pong(cx) {
                    Poll::Ready(Ok(_)) => {
                        this.awaiting_pong = false;
                        let next = Instant::now() + this.keep_alive;
                        this.next_ping.as_mut().reset(next);
                    }
                    Poll::Ready(Err(_)) => {
                        this.state.close();
                        return Poll::Ready(Ended::Closed);
                    }
                    Poll::Pending => {}
                }
            }
            if this.next_ping.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if this.awaiting_pong {
                // Dropping the connection fails its streams; the endpoint is charged.
                this.state.close();
                return Poll::Ready(Ended::PingUnanswered);
            }
            if this.pings.send_ping(Ping::opaque()).is_err() {
                this.state.close();
                return Poll::Ready(Ended::Closed);
            }
            this.awaiting_pong = true;
            let deadline = Instant::now() + this.keep_alive;
            this.next_ping.as_mut().reset(deadline);
        }
    }
}
