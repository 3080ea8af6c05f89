//! Sending a request again after an HTTP/2 backend refused its stream unprocessed (a GOAWAY
//! naming a lower stream, `REFUSED_STREAM`: RFC 9113 §8.7 says such a request may be retried).
//! hyper has taken the request by then: [`ReplayBody`] keeps the start of the body it gives out
//! (up to [`KEPT_BYTES`]), and hands the body back when hyper drops it; the head is copied
//! before the send. Once the response head is in, nothing more is kept.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;

use super::body::{Again, ClientBodyError, RequestBody};

/// Most request body bytes kept for a try again: a request refused past them fails (502).
pub const KEPT_BYTES: usize = 64 * 1024;
/// How long a refused request waits for hyper to let go of its body.
const RETURN_WAIT: Duration = Duration::from_secs(1);

/// A request body on its way to an HTTP/2 backend, keeping its start.
pub struct ReplayBody {
    body: Option<RequestBody>,
    kept: Again,
    kept_bytes: usize,
    /// More than [`KEPT_BYTES`] went out, or the response came: nothing kept any more.
    unkept: bool,
    shared: Arc<Shared>,
}

/// What a [`ReplayBody`] and its [`Replay`] share.
#[derive(Default)]
struct Shared {
    /// The response head came: the body need not come back.
    answered: AtomicBool,
    back: Mutex<Option<RequestBody>>,
    /// Why the client's body broke on its way, if it did: the client's fault, not the backend's.
    client_failed: Mutex<Option<ClientBodyError>>,
    returned: Notify,
}

/// The sender's side: the request's head, and where its body comes back.
pub struct Replay {
    method: Method,
    uri: Uri,
    version: Version,
    headers: HeaderMap,
    shared: Arc<Shared>,
}

/// The request with a keeping body, and what it takes to send it again.
pub fn wrap(request: Request<RequestBody>) -> (Request<ReplayBody>, Replay) {
    let shared = Arc::new(Shared::default());
    let replay = Replay {
        method: request.method().clone(),
        uri: request.uri().clone(),
        version: request.version(),
        headers: request.headers().clone(),
        shared: shared.clone(),
    };
    let request = request.map(|body| ReplayBody {
        body: Some(body),
        kept: Again::default(),
        kept_bytes: 0,
        unkept: false,
        shared,
    });
    (request, replay)
}

/// A request hyper handed back untouched (its connection never took it).
pub fn unwrap(request: Request<ReplayBody>) -> Request<RequestBody> {
    request.map(|mut body| {
        body.body
            .take()
            .expect("a body is only taken when dropped or unwrapped")
    })
}

/// Whether hyper's error says the backend never processed the stream.
pub fn refused(error: &hyper::Error) -> bool {
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            // Only these two: a GOAWAY with an error code may also end streams the backend
            // had begun.
            let go_away = h2.is_go_away() && h2.reason() == Some(h2::Reason::NO_ERROR);
            let refused = h2.is_reset() && h2.reason() == Some(h2::Reason::REFUSED_STREAM);
            return h2.is_remote() && (go_away || refused);
        }
        source = cause.source();
    }
    false
}

impl Replay {
    /// Why the client's request body broke on its way to the backend, if it did.
    pub fn client_failed(&self) -> Option<ClientBodyError> {
        lock(&self.shared.client_failed).take()
    }

    /// The response head came: the body stops keeping what it sends.
    pub fn answered(&self) {
        self.shared.answered.store(true, Ordering::Relaxed);
    }

    /// The request again, once hyper has let go of its body; `None` when more than
    /// [`KEPT_BYTES`] of it went out (or hyper kept it).
    pub async fn recover(self) -> Option<Request<RequestBody>> {
        let wait = async {
            loop {
                let returned = self.shared.returned.notified();
                if let Some(body) = lock(&self.shared.back).take() {
                    return body;
                }
                returned.await;
            }
        };
        let body = tokio::time::timeout(RETURN_WAIT, wait).await.ok()?;
        let mut request = Request::new(body);
        *request.method_mut() = self.method;
        *request.uri_mut() = self.uri;
        *request.version_mut() = self.version;
        *request.headers_mut() = self.headers;
        Some(request)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl ReplayBody {
    fn keep(&mut self, frame: &Frame<Bytes>) {
        if self.unkept {
            return;
        }
        if self.shared.answered.load(Ordering::Relaxed) {
            self.unkeep();
            return;
        }
        if let Some(data) = frame.data_ref() {
            self.kept_bytes += data.len();
            if self.kept_bytes > KEPT_BYTES {
                self.unkeep();
                return;
            }
            self.kept.data.push_back(data.clone());
        } else if let Some(trailers) = frame.trailers_ref() {
            self.kept.trailers = Some(trailers.clone());
        }
    }

    fn unkeep(&mut self) {
        self.unkept = true;
        self.kept = Again::default();
    }
}

impl Drop for ReplayBody {
    fn drop(&mut self) {
        if self.unkept || self.shared.answered.load(Ordering::Relaxed) {
            return;
        }
        let Some(body) = self.body.take() else {
            return;
        };
        let kept = std::mem::take(&mut self.kept);
        *lock(&self.shared.back) = Some(body.with_again(kept));
        self.shared.returned.notify_one();
    }
}

impl Body for ReplayBody {
    type Data = Bytes;
    type Error = ClientBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, ClientBodyError>>> {
        let this = self.get_mut();
        let Some(body) = &mut this.body else {
            return Poll::Ready(None);
        };
        let polled = Pin::new(body).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => this.keep(frame),
            Poll::Ready(None) => this.kept.ended = true,
            // A broken body is not sent again.
            Poll::Ready(Some(Err(err))) => {
                this.unkeep();
                *lock(&this.shared.client_failed) = Some(err.clone());
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(RequestBody::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or(SizeHint::with_exact(0), RequestBody::size_hint)
    }
}
