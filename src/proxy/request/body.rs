//! The response body the proxy sends: the upstream's body streamed through as it arrives (no
//! buffering, no copy into new buffers), or a small body of our own.

use std::future::Future as _;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::Full;
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// Errors end the response early: the client sees a truncated body, never a complete one.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// Either an upstream body (holding the endpoint's in-flight count until it ends) or ours.
pub enum ProxyBody {
    Upstream(UpstreamBody),
    Local(Full<Bytes>),
}

/// An upstream's response body: `Left` from hyper's client, `Right` read from a native HTTP/1
/// socket.
pub type Upstream = http_body_util::Either<Incoming, crate::upstream::h1_body::H1Body>;

/// What a response body holds until it ends: its endpoint's in-flight count, and on HTTP/2 its
/// stream's place on the upstream connection.
pub type Held = (
    crate::upstream::EndpointInFlight,
    Option<crate::upstream::h2::StreamSlot>,
);

/// An upstream body with an idle timeout: a backend that stops sending mid-body does not hold
/// the client forever. The timer is armed when the body makes hyper wait, not per frame: a
/// body that is ready when asked (most small responses) never touches the timer wheel.
pub struct UpstreamBody {
    body: Upstream,
    idle: Duration,
    /// Made on the first wait; `armed` while it runs for the current wait.
    timer: Option<Pin<Box<Sleep>>>,
    armed: bool,
    _held: Held,
    /// The backend's response-bytes counter.
    bytes: prometheus::IntCounter,
    /// For a gRPC response whose status comes in its trailers: where the status is counted.
    grpc: Option<std::sync::Arc<crate::metrics::BackendMetrics>>,
}

impl UpstreamBody {
    pub fn new(
        body: Upstream,
        idle: Duration,
        held: Held,
        bytes: prometheus::IntCounter,
    ) -> UpstreamBody {
        UpstreamBody {
            body,
            idle,
            timer: None,
            armed: false,
            _held: held,
            bytes,
            grpc: None,
        }
    }

    /// Counts the status in the trailers into `metrics` (a gRPC response).
    pub fn count_grpc_status(&mut self, metrics: std::sync::Arc<crate::metrics::BackendMetrics>) {
        self.grpc = Some(metrics);
    }
}

impl From<Full<Bytes>> for ProxyBody {
    fn from(body: Full<Bytes>) -> Self {
        ProxyBody::Local(body)
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        // Every field is `Unpin` (the timer is boxed).
        match self.get_mut() {
            ProxyBody::Upstream(upstream) => match Pin::new(&mut upstream.body).poll_frame(cx) {
                Poll::Ready(frame) => {
                    // The wait is over; a timer still registered for it may wake this task
                    // once more, which only polls again.
                    upstream.armed = false;
                    if let Some(Ok(frame)) = &frame {
                        match frame.trailers_ref() {
                            Some(trailers) => {
                                let code = super::grpc::status(trailers);
                                if let (Some(metrics), Some(code)) = (&upstream.grpc, code) {
                                    metrics.grpc_status(code);
                                }
                            }
                            None => {
                                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                                upstream.bytes.inc_by(len);
                            }
                        }
                    }
                    Poll::Ready(frame)
                }
                Poll::Pending => {
                    if !upstream.armed {
                        let deadline = Instant::now() + upstream.idle;
                        match &mut upstream.timer {
                            Some(timer) => timer.as_mut().reset(deadline),
                            None => {
                                upstream.timer = Some(Box::pin(tokio::time::sleep_until(deadline)))
                            }
                        }
                        upstream.armed = true;
                    }
                    match upstream.timer.as_mut().map(|timer| timer.as_mut().poll(cx)) {
                        Some(Poll::Ready(())) => {
                            Poll::Ready(Some(Err("upstream body idle".into())))
                        }
                        _ => Poll::Pending,
                    }
                }
            },
            ProxyBody::Local(body) => match Pin::new(body).poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(Some(Err(never))) => match never {},
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ProxyBody::Upstream(upstream) => upstream.body.is_end_stream(),
            ProxyBody::Local(body) => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            ProxyBody::Upstream(upstream) => upstream.body.size_hint(),
            ProxyBody::Local(body) => body.size_hint(),
        }
    }
}
