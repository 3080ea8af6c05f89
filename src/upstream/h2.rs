//! An endpoint's HTTP/2 connections, lock-free: each carries calls up to the backend's
//! `SETTINGS_MAX_CONCURRENT_STREAMS`, and when every one is full another is opened, up to
//! [`CONNECTIONS`]; past that, calls wait in the least busy connection's queue. Calls are
//! balanced per call (the endpoint is picked per request), so a connection is only a pipe.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use arc_swap::ArcSwapOption;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::replay::ReplayBody;

/// hyper's side of one HTTP/2 connection.
pub type H2Sender = hyper::client::conn::http2::SendRequest<ReplayBody>;

/// HTTP/2 connections kept per endpoint and per transport (cleartext, TLS).
pub const CONNECTIONS: usize = 8;

/// One HTTP/2 connection and its streams.
#[derive(Debug)]
pub struct H2Conn {
    sender: H2Sender,
    /// Our streams open on it: from the send to the end (or drop) of the response body.
    streams: AtomicUsize,
    /// The backend's `SETTINGS_MAX_CONCURRENT_STREAMS`, as the connection's task last saw it.
    limit: Arc<AtomicUsize>,
    /// Set by the connection's [`HeardIo`] at the first byte from the backend.
    heard: Arc<AtomicBool>,
}

impl H2Conn {
    /// `limit` is kept up to date by the connection's task; `heard` by its [`HeardIo`].
    pub fn new(sender: H2Sender, limit: Arc<AtomicUsize>, heard: Arc<AtomicBool>) -> Arc<H2Conn> {
        Arc::new(H2Conn {
            sender,
            streams: AtomicUsize::new(0),
            limit,
            heard,
        })
    }

    /// Whether the backend ever sent a byte on this connection. Its SETTINGS must be its first
    /// frame (RFC 9113 §3.4), so a connection that ends unheard was never served: a listener
    /// that stopped accepting (a task going away) left it in the kernel's queue.
    pub fn heard_from_backend(&self) -> bool {
        self.heard.load(Ordering::Relaxed)
    }

    /// A place for one more stream, if the backend allows it.
    pub fn take_stream(self: &Arc<Self>) -> Option<StreamSlot> {
        let limit = self.limit.load(Ordering::Relaxed).max(1);
        if self.streams.fetch_add(1, Ordering::Relaxed) < limit {
            return Some(StreamSlot(self.clone()));
        }
        self.streams.fetch_sub(1, Ordering::Relaxed);
        None
    }

    /// A place for one more stream whatever the limit: it waits in hyper's queue for one.
    pub fn queue_stream(self: &Arc<Self>) -> StreamSlot {
        self.streams.fetch_add(1, Ordering::Relaxed);
        StreamSlot(self.clone())
    }

    pub fn sender(&self) -> H2Sender {
        self.sender.clone()
    }

    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    pub fn streams(&self) -> usize {
        self.streams.load(Ordering::Relaxed)
    }
}

/// One stream's place on its connection, given back when dropped (with the response body).
#[derive(Debug)]
pub struct StreamSlot(Arc<H2Conn>);

impl StreamSlot {
    pub fn conn(&self) -> &Arc<H2Conn> {
        &self.0
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::Relaxed);
    }
}

/// An endpoint's HTTP/2 connections of one transport.
#[derive(Debug, Default)]
pub struct H2Conns {
    slots: [ArcSwapOption<H2Conn>; CONNECTIONS],
}

impl H2Conns {
    /// A connection with room for one more stream, and that stream's place. Closed connections
    /// met on the way are forgotten (a GOAWAY, a failed PING, the backend gone).
    pub fn pick(&self) -> Option<StreamSlot> {
        for slot in &self.slots {
            let current = slot.load();
            let Some(conn) = current.as_ref() else {
                continue;
            };
            if conn.is_closed() {
                slot.compare_and_swap(&*current, None);
                continue;
            }
            if let Some(stream) = conn.take_stream() {
                return Some(stream);
            }
        }
        None
    }

    /// Keeps a new connection for later calls, in a free slot; `false` when every slot holds
    /// an open connection (this one then serves its own call and goes).
    pub fn add(&self, conn: &Arc<H2Conn>) -> bool {
        for slot in &self.slots {
            let current = slot.load();
            if current.as_ref().is_some_and(|c| !c.is_closed()) {
                continue;
            }
            let previous = slot.compare_and_swap(&*current, Some(conn.clone()));
            if ptr(&previous) == ptr(&current) {
                return true;
            }
        }
        false
    }

    /// Every slot holds an open connection.
    pub fn is_full(&self) -> bool {
        self.slots
            .iter()
            .all(|s| s.load().as_ref().is_some_and(|c| !c.is_closed()))
    }

    /// When every connection is full and no more may be opened: the least busy one, where the
    /// call waits for a stream.
    pub fn least_busy(&self) -> Option<StreamSlot> {
        let mut best: Option<Arc<H2Conn>> = None;
        for slot in &self.slots {
            let Some(conn) = slot.load_full() else {
                continue;
            };
            if !conn.is_closed() && best.as_ref().is_none_or(|b| conn.streams() < b.streams()) {
                best = Some(conn);
            }
        }
        best.map(|conn| conn.queue_stream())
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.slots
            .iter()
            .filter(|s| s.load().as_ref().is_some_and(|c| !c.is_closed()))
            .count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn ptr(conn: &Option<Arc<H2Conn>>) -> *const H2Conn {
    conn.as_ref().map_or(std::ptr::null(), Arc::as_ptr)
}

/// A backend connection's transport, noting its first byte read into a shared flag.
pub struct HeardIo<T> {
    io: T,
    heard: Arc<AtomicBool>,
}

impl<T> HeardIo<T> {
    pub fn new(io: T) -> (HeardIo<T>, Arc<AtomicBool>) {
        let heard = Arc::new(AtomicBool::new(false));
        let io = HeardIo {
            io,
            heard: heard.clone(),
        };
        (io, heard)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for HeardIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before && !self.heard.load(Ordering::Relaxed) {
            self.heard.store(true, Ordering::Relaxed);
        }
        polled
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for HeardIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
