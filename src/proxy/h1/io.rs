//! The sockets the native engine reads and writes: a client's plain TCP socket or TLS over
//! one (ALPN `http/1.1` or none), and an upstream's TCP socket. All are read the same way:
//! wait until a read will find bytes (holding no buffer while waiting), then read.

use std::future::Future;
use std::io;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use crate::proxy::conn::quickack::AckWhenWaiting;

/// A socket for the native engine.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {
    /// The TCP socket under it (for the quick ACK).
    fn tcp(&self) -> &TcpStream;

    /// Resolves when a read will find bytes: on the socket, or already decrypted.
    fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send;
}

impl Io for TcpStream {
    fn tcp(&self) -> &TcpStream {
        self
    }

    fn readable(&mut self) -> impl Future<Output = io::Result<()>> + Send {
        TcpStream::readable(self)
    }
}

impl Io for TlsStream<AckWhenWaiting> {
    fn tcp(&self) -> &TcpStream {
        self.get_ref().0.tcp()
    }

    async fn readable(&mut self) -> io::Result<()> {
        // A record read earlier may hold more plaintext than the last read took: then the
        // socket may stay quiet while bytes are waiting here.
        let (socket, session) = self.get_mut();
        let buffered = match session.process_new_packets() {
            Ok(state) => state.plaintext_bytes_to_read() > 0 || state.peer_has_closed(),
            // The read that follows reports it.
            Err(_) => true,
        };
        if buffered {
            return Ok(());
        }
        socket.tcp().readable().await
    }
}
