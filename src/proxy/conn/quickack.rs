//! A client socket that acknowledges at once when a request's body is due and not there.
//!
//! Linux delays an ACK while it expects to piggyback it on an answer (its "ping-pong" mode,
//! entered after the first exchange). A client with Nagle's algorithm on, which writes a head
//! and then its body, holds the body until the head is acknowledged: such a request waited
//! ~40 ms for the delayed-ACK timer. HAProxy turns `TCP_QUICKACK` on whenever it needs more of
//! a request; so does this wrapper, once per request whose body is due ([`BodyDue`], set by
//! the service when hyper hands it a request with a body), at the first read that finds nothing.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// Sends the delayed ACK of what was read now, for a reader about to wait for more of a message.
pub fn ack_now(stream: &TcpStream) {
    let _ = socket2::SockRef::from(stream).set_tcp_quickack(true);
}

/// Set when a request with a body starts; the socket's next empty read acknowledges at once.
#[derive(Clone, Default)]
pub struct BodyDue(Arc<AtomicBool>);

impl BodyDue {
    pub fn expect(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        self.0.load(Ordering::Relaxed) && self.0.swap(false, Ordering::Relaxed)
    }
}

pub struct AckWhenWaiting {
    stream: TcpStream,
    body_due: BodyDue,
}

impl AckWhenWaiting {
    pub fn new(stream: TcpStream) -> AckWhenWaiting {
        AckWhenWaiting {
            stream,
            body_due: BodyDue::default(),
        }
    }

    /// The handle the connection's service sets.
    pub fn body_due(&self) -> BodyDue {
        self.body_due.clone()
    }

    /// The socket, for a reader that acknowledges by itself (the native engine).
    pub fn tcp(&self) -> &TcpStream {
        &self.stream
    }
}

impl AsyncRead for AckWhenWaiting {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
        if polled.is_pending() && this.body_due.take() {
            ack_now(&this.stream);
        }
        polled
    }
}

/// The body of an `AsyncWrite` impl for a read-side wrapper: every call goes to `$field`
/// unchanged (also used by `h1::prefixed`).
macro_rules! forward_async_write {
    ($field:ident) => {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            buf: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.get_mut().$field).poll_write(cx, buf)
        }

        fn poll_write_vectored(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
            bufs: &[std::io::IoSlice<'_>],
        ) -> std::task::Poll<std::io::Result<usize>> {
            std::pin::Pin::new(&mut self.get_mut().$field).poll_write_vectored(cx, bufs)
        }

        fn is_write_vectored(&self) -> bool {
            self.$field.is_write_vectored()
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.get_mut().$field).poll_flush(cx)
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::pin::Pin::new(&mut self.get_mut().$field).poll_shutdown(cx)
        }
    };
}
pub(crate) use forward_async_write;

impl AsyncWrite for AckWhenWaiting {
    forward_async_write!(stream);
}

#[cfg(test)]
mod tests {
    use std::future::poll_fn;

    use super::*;

    /// A connected pair; the server's end in the kernel's delayed-ACK ("ping-pong") mode, as it
    /// is after a first exchange. `getsockopt(TCP_QUICKACK)` reads 1 outside that mode.
    async fn pair() -> (TcpStream, AckWhenWaiting) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let (server, _) = listener.accept().await.unwrap();
        socket2::SockRef::from(&server)
            .set_tcp_quickack(false)
            .unwrap();
        (client, AckWhenWaiting::new(server))
    }

    fn quickack(io: &AckWhenWaiting) -> bool {
        socket2::SockRef::from(&io.stream).tcp_quickack().unwrap()
    }

    /// Polls one read: whether it found nothing.
    async fn read_finds_nothing(io: &mut AckWhenWaiting) -> bool {
        poll_fn(|cx| {
            let mut space = [0u8; 16];
            let mut buf = ReadBuf::new(&mut space);
            Poll::Ready(Pin::new(&mut *io).poll_read(cx, &mut buf).is_pending())
        })
        .await
    }

    #[tokio::test]
    async fn an_empty_read_with_a_body_due_acks_at_once_and_only_once() {
        let (_client, mut io) = pair().await;
        io.body_due().expect();
        assert!(!quickack(&io));
        assert!(read_finds_nothing(&mut io).await);
        assert!(
            quickack(&io),
            "the wait for the body turned the quick ACK on"
        );
        // Once per request: the next wait leaves the kernel's choice alone.
        socket2::SockRef::from(&io.stream)
            .set_tcp_quickack(false)
            .unwrap();
        assert!(read_finds_nothing(&mut io).await);
        assert!(!quickack(&io));
    }

    #[tokio::test]
    async fn without_a_body_due_an_empty_read_changes_nothing() {
        let (_client, mut io) = pair().await;
        assert!(read_finds_nothing(&mut io).await);
        assert!(
            !quickack(&io),
            "a wait between requests keeps the ACK for the answer"
        );
    }
}
