//! A watchdog per connection, which hyper does not provide: it closes a connection that sits
//! with no request for the idle timeout (HTTP/2 has no header timeout to do this) or whose
//! client stops accepting a response (slow read, an HTTP/2 window never opened). The request
//! path only touches this connection's atomics: no locks, no allocation. (The cap on
//! connections per client IP is `per_ip.rs`.)

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::time::Instant;

/// What one connection's requests are doing, for its watchdog.
#[derive(Debug)]
pub struct Activity {
    started: Instant,
    /// Requests whose response has not finished yet (HTTP/2: open streams).
    active: AtomicUsize,
    /// Milliseconds since `started` of the last time `active` dropped to zero (or the start).
    idle_since: AtomicU64,
    /// Response bodies that handed a frame to hyper and were not asked for the next one yet:
    /// hyper asks again as soon as the client has taken the data (socket writable, window open).
    waiting_on_client: AtomicUsize,
    /// Milliseconds since `started` of the last time a response body handed hyper a frame.
    last_progress: AtomicU64,
    /// Since when (ms) a write to the client's socket has been blocked; `NOT_BLOCKED` if not.
    write_blocked_since: AtomicU64,
    /// A request came over HTTP/2 (the connection speaks HTTP/2).
    http2: AtomicBool,
    /// The balancer is stopping: HTTP/1 responses close the connection after them.
    draining: AtomicBool,
}

const NOT_BLOCKED: u64 = u64::MAX;

/// Why a watchdog ended a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// No request in flight for the idle timeout: close politely (GOAWAY / after the request).
    Idle,
    /// A response waited on the client for the send timeout: drop the connection.
    SendStalled,
}

impl Activity {
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            started: Instant::now(),
            active: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            waiting_on_client: AtomicUsize::new(0),
            last_progress: AtomicU64::new(0),
            write_blocked_since: AtomicU64::new(NOT_BLOCKED),
            http2: AtomicBool::new(false),
            draining: AtomicBool::new(false),
        })
    }

    /// Notes that a request came over HTTP/2.
    pub fn saw_http2(&self) {
        if !self.http2.load(Ordering::Relaxed) {
            self.http2.store(true, Ordering::Relaxed);
        }
    }

    pub fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Relaxed)
    }

    /// From now on, HTTP/1 responses on this connection carry `Connection: close`.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// A request started; the guard ends it (with its response body, or when it is dropped).
    pub fn begin(self: &Arc<Self>) -> RequestGuard {
        self.active.fetch_add(1, Ordering::Relaxed);
        RequestGuard {
            activity: self.clone(),
            waiting: false,
        }
    }

    /// Resolves when the connection should end; `idle`: no request for this long; `send`: a
    /// response waiting on the client this long.
    pub async fn watch(&self, idle: Duration, send: Duration) -> Verdict {
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let (idle_ms, send_ms) = (millis(idle), millis(send));
        loop {
            let now = self.now_ms();
            // Check a little after each deadline could pass, not on a fixed tick.
            let mut next = u64::MAX;
            if self.active.load(Ordering::Acquire) == 0 {
                let due = self
                    .idle_since
                    .load(Ordering::Acquire)
                    .saturating_add(idle_ms);
                if now >= due {
                    return Verdict::Idle;
                }
                next = next.min(due);
            }
            if self.waiting_on_client.load(Ordering::Acquire) > 0 {
                let due = self
                    .last_progress
                    .load(Ordering::Acquire)
                    .saturating_add(send_ms);
                if now >= due {
                    return Verdict::SendStalled;
                }
                next = next.min(due);
            }
            let blocked = self.write_blocked_since.load(Ordering::Acquire);
            if blocked != NOT_BLOCKED {
                let due = blocked.saturating_add(send_ms);
                if now >= due {
                    return Verdict::SendStalled;
                }
                next = next.min(due);
            }
            // A request may start (or a write block) while we sleep: look again at least four
            // times per shorter timeout, so a verdict comes at most a quarter late.
            let tick = idle_ms.min(send_ms) / 4;
            let wait = next.saturating_sub(now).min(tick);
            tokio::time::sleep(Duration::from_millis(wait.max(1))).await;
        }
    }

    fn write_blocked(&self, blocked: bool) {
        let since = &self.write_blocked_since;
        if !blocked {
            since.store(NOT_BLOCKED, Ordering::Release);
        } else if since.load(Ordering::Relaxed) == NOT_BLOCKED {
            since.store(self.now_ms(), Ordering::Release);
        }
    }
}

/// The client's side of a connection, telling its [`Activity`] when writes block (a client
/// that stops reading: HTTP/1 slow read, or HTTP/2 below the window).
pub struct WatchedIo<I> {
    io: I,
    activity: Arc<Activity>,
}

impl<I> WatchedIo<I> {
    pub fn new(io: I, activity: Arc<Activity>) -> WatchedIo<I> {
        WatchedIo { io, activity }
    }

    fn note<T>(&self, poll: Poll<T>) -> Poll<T> {
        self.activity.write_blocked(poll.is_pending());
        poll
    }
}

impl<I: hyper::rt::Read + Unpin> hyper::rt::Read for WatchedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: hyper::rt::Write + Unpin> hyper::rt::Write for WatchedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write(cx, buf);
        this.note(poll)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.note(poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let poll = Pin::new(&mut this.io).poll_flush(cx);
        this.note(poll)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

/// Holds a request's place in its connection's [`Activity`] until dropped.
#[derive(Debug)]
pub struct RequestGuard {
    activity: Arc<Activity>,
    waiting: bool,
}

impl RequestGuard {
    /// Whether the connection this request came on is being drained.
    pub fn connection_draining(&self) -> bool {
        self.activity.draining.load(Ordering::Relaxed)
    }

    /// A frame was handed to hyper (`waiting`: now it is the client's turn), or hyper asked
    /// for the next one (the client took the last). The clock is read only when a wait on the
    /// client starts: that is the moment a stall is measured from.
    fn moved(&mut self, waiting: bool) {
        let activity = &self.activity;
        if waiting {
            activity
                .last_progress
                .store(activity.now_ms(), Ordering::Release);
        }
        if waiting != self.waiting {
            if waiting {
                activity.waiting_on_client.fetch_add(1, Ordering::AcqRel);
            } else {
                activity.waiting_on_client.fetch_sub(1, Ordering::AcqRel);
            }
            self.waiting = waiting;
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.moved(false);
        let activity = &self.activity;
        activity
            .idle_since
            .store(activity.now_ms(), Ordering::Release);
        activity.active.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A response body that reports its progress to the connection's [`Activity`].
pub struct Tracked<B> {
    body: B,
    guard: RequestGuard,
}

impl<B> Tracked<B> {
    /// The response is handed to hyper: until hyper asks for the body, it is the client's
    /// turn (an HTTP/2 client whose window is shut never lets hyper ask).
    pub fn new(body: B, mut guard: RequestGuard) -> Tracked<B> {
        guard.moved(true);
        Tracked { body, guard }
    }
}

impl<B> Body for Tracked<B>
where
    B: Body<Data = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.get_mut();
        let frame = Pin::new(&mut this.body).poll_frame(cx);
        // Asked again: the client took the last frame. Handed a frame: now it is the client's
        // turn. Pending: the upstream's turn (its own idle timeout covers it).
        this.guard.moved(matches!(frame, Poll::Ready(Some(Ok(_)))));
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The response as hyper sends it: tracked by the connection's activity until its body ends;
/// while the balancer drains, an HTTP/1 response closes its connection (see the shutdown
/// branch of `hyper_conn::drive`).
pub fn finish_response<B>(
    mut response: hyper::Response<B>,
    guard: RequestGuard,
    http2: bool,
) -> hyper::Response<Tracked<B>> {
    if !http2
        && guard.connection_draining()
        && response.status() != hyper::StatusCode::SWITCHING_PROTOCOLS
    {
        response.headers_mut().insert(
            hyper::header::CONNECTION,
            hyper::header::HeaderValue::from_static("close"),
        );
    }
    response.map(|body| Tracked::new(body, guard))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn idle_and_stalled_verdicts() {
        let activity = Activity::new();
        let idle = Duration::from_secs(10);
        let send = Duration::from_secs(30);
        assert_eq!(activity.watch(idle, send).await, Verdict::Idle);
        let started = Instant::now();
        let mut guard = activity.begin();
        guard.moved(true);
        assert_eq!(activity.watch(idle, send).await, Verdict::SendStalled);
        assert!(started.elapsed() >= send);
        guard.moved(false);
        let watch = activity.watch(idle, send);
        tokio::pin!(watch);
        assert!(
            tokio::time::timeout(Duration::from_secs(60), watch.as_mut())
                .await
                .is_err(),
            "a request waiting on its upstream is neither idle nor stalled"
        );
        drop(guard);
        assert_eq!(watch.await, Verdict::Idle);
    }
}
