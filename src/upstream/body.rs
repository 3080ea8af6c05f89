//! A client's request body on its way upstream, with its own stall watchdog: the body both
//! engines hand to an upstream connection.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

/// Why a client's request body did not arrive whole. Carried through the upstream client's
/// error so that the answer is the client's fault (400/408), never a 502.
/// Cloned (the hyper error shared) so that the request can learn why its body broke after
/// the upstream client took it (`replay.rs`).
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientBodyError {
    #[error("request body stalled for {0:?}")]
    Timeout(Duration),
    #[error("reading the request body failed: {0}")]
    Read(#[source] std::sync::Arc<hyper::Error>),
}

/// Least a request body must bring in every `client_body_timeout` window once it has had to
/// wait for the client: a body dribbled a few bytes at a time (R-U-D-Y) is cut like a stalled
/// one, while any real upload moves far more.
pub const MIN_BODY_BYTES_PER_WINDOW: u64 = 1024;

/// A client's request body on its way upstream, counted into the backend's request-bytes
/// counter as it passes (no copy). Once it has had to wait for the client, it must bring
/// [`MIN_BODY_BYTES_PER_WINDOW`] per `timeout`, else it ends in [`ClientBodyError::Timeout`],
/// which aborts the upstream request.
pub struct RequestBody {
    /// `None`: empty (a bodiless request sent again after a keep-alive race).
    body: Option<Incoming>,
    bytes: prometheus::IntCounter,
    /// This request's bytes, for its access-log line (with `--access-log` only).
    logged: Option<Arc<AtomicU64>>,
    timeout: Duration,
    /// Armed only once the body has to wait for the client: bodiless requests allocate nothing.
    timer: Option<Pin<Box<Sleep>>>,
    /// Bytes received in the current window.
    window_bytes: u64,
    /// What an earlier try already read, given out again before the rest (`replay.rs`).
    again: Option<Box<Again>>,
}

/// A request body's start, read by a try that the backend refused unprocessed.
#[derive(Debug, Default)]
pub struct Again {
    pub data: std::collections::VecDeque<Bytes>,
    pub trailers: Option<http::HeaderMap>,
    /// The body had ended: nothing follows what is here.
    pub ended: bool,
}

impl RequestBody {
    pub fn new(body: Incoming, bytes: prometheus::IntCounter, timeout: Duration) -> RequestBody {
        RequestBody {
            body: Some(body),
            bytes,
            logged: None,
            timeout,
            timer: None,
            window_bytes: 0,
            again: None,
        }
    }

    /// This body with `again` given out before what is left of it.
    pub fn with_again(mut self, again: Again) -> RequestBody {
        self.again = Some(Box::new(again));
        self
    }

    /// An empty body counted into the same counter.
    pub fn empty(&self) -> RequestBody {
        RequestBody {
            body: None,
            bytes: self.bytes.clone(),
            logged: self.logged.clone(),
            timeout: self.timeout,
            timer: None,
            window_bytes: 0,
            again: None,
        }
    }

    /// Also counts the bytes into `logged`.
    pub fn logged_into(mut self, logged: Arc<AtomicU64>) -> RequestBody {
        self.logged = Some(logged);
        self
    }

    /// At the end of a window: start the next one if this one brought enough.
    fn next_window(&mut self) -> Result<(), ClientBodyError> {
        if self.window_bytes < MIN_BODY_BYTES_PER_WINDOW {
            return Err(ClientBodyError::Timeout(self.timeout));
        }
        self.window_bytes = 0;
        if let Some(timer) = &mut self.timer {
            timer.as_mut().reset(Instant::now() + self.timeout);
        }
        Ok(())
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = self.get_mut();
        if let Some(again) = &mut this.again {
            // Counted when first read.
            if let Some(data) = again.data.pop_front() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
            if let Some(trailers) = again.trailers.take() {
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
            if again.ended {
                return Poll::Ready(None);
            }
            this.again = None;
        }
        loop {
            let Some(body) = &mut this.body else {
                return Poll::Ready(None);
            };
            match Pin::new(body).poll_frame(cx) {
                Poll::Ready(frame) => {
                    if let Some(Ok(data)) = frame.as_ref().map(|f| f.as_ref().map(Frame::data_ref))
                    {
                        let len = data.map_or(0, |d| d.len() as u64);
                        this.bytes.inc_by(len);
                        if let Some(logged) = &this.logged {
                            logged.fetch_add(len, Ordering::Relaxed);
                        }
                        this.window_bytes += len;
                    }
                    if this.timer.as_ref().is_some_and(|t| t.is_elapsed()) && frame.is_some() {
                        if let Err(err) = this.next_window() {
                            return Poll::Ready(Some(Err(err)));
                        }
                    }
                    return Poll::Ready(
                        frame.map(|f| f.map_err(|err| ClientBodyError::Read(err.into()))),
                    );
                }
                Poll::Pending => {
                    let timeout = this.timeout;
                    let timer = this
                        .timer
                        .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                    match timer.as_mut().poll(cx) {
                        // The window is over: cut, or start the next and wait on it.
                        Poll::Ready(()) => {
                            if let Err(err) = this.next_window() {
                                return Poll::Ready(Some(Err(err)));
                            }
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        if let Some(again) = &self.again {
            if !again.data.is_empty() || again.trailers.is_some() {
                return false;
            }
            if again.ended {
                return true;
            }
        }
        self.body.as_ref().is_none_or(Incoming::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        if self.again.is_some() {
            return SizeHint::default();
        }
        self.body
            .as_ref()
            .map_or(SizeHint::with_exact(0), Incoming::size_hint)
    }
}
