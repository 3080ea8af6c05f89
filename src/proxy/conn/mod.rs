//! One accepted client connection: the engine that serves it chosen in one place ([`run`] and,
//! after the handshake on TLS listeners, `tls.rs`): the native HTTP/1 engine for HTTP/1.1
//! (handing over to hyper at the first request it does not forward), hyper for HTTP/2.
//!
//! ```text
//! accepted.rs    the connection's context (Accepted), closed-connection counters
//! builders.rs    hyper's builders, the protocol chosen by first bytes or ALPN
//! tls.rs         the TLS handshake, then the engine ALPN chose
//! hyper_conn.rs  one connection on hyper: the idle and send watchdog, polite closes
//! limits.rs      the watchdog's bookkeeping, responses tracked until their body ends
//! quickack.rs    the quick ACK when a request body is due
//! ```

pub mod accepted;
pub mod builders;
pub mod hyper_conn;
pub mod limits;
pub mod quickack;
pub mod tls;

use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use accepted::Accepted;
use builders::{HttpBuilders, H2_PREFACE};
use quickack::AckWhenWaiting;

/// Serves an accepted HTTP connection until it ends, by the engine that fits it.
pub async fn run(
    accepted: Accepted<'_>,
    stream: TcpStream,
    tls: Option<TlsAcceptor>,
    builders: &HttpBuilders,
) {
    let first_byte = accepted.ctx.config.header_timeout;
    if let Some(acceptor) = tls {
        // Boxed: a TLS session's state is kilobytes, and inline it would make every plain
        // connection's task as big (memory per connection, and a larger copy at each spawn).
        let tls = tls::TlsConnection {
            acceptor,
            stream,
            peer: accepted.peer,
            first_byte,
        };
        return Box::pin(tls.handshake_then_run(builders, accepted)).await;
    }
    // Plain: the native engine reads the first bytes itself (no peek; HTTP/2's preface goes on
    // to hyper) under the header timeout.
    if accepted.ctx.config.native_http1 {
        let native = Box::pin(crate::proxy::h1::run(stream, &accepted)).await;
        if let Some((stream, read)) = native {
            let server = builders.for_first_bytes(&read);
            let stream = AckWhenWaiting::new(stream);
            let due = Some(stream.body_due());
            let io = TokioIo::new(crate::proxy::h1::Prefixed::new(read, stream));
            Box::pin(hyper_conn::run(server, io, accepted, None, due)).await;
        }
        return;
    }
    // hyper times out a request's head, but not a client that connects and sends nothing
    // while the protocol is being detected: do it here.
    let mut probe = [0u8; H2_PREFACE.len()];
    let seen = match tokio::time::timeout(first_byte, stream.peek(&mut probe)).await {
        Ok(Ok(seen @ 1..)) => seen,
        _ => return,
    };
    // Boxed, like the TLS branch: the connection's state is kilobytes, and tokio copies a
    // task's whole future when it spawns it and twice more when it ends.
    let server = builders.for_first_bytes(&probe[..seen]);
    let stream = AckWhenWaiting::new(stream);
    let due = Some(stream.body_due());
    let io = TokioIo::new(stream);
    Box::pin(hyper_conn::run(server, io, accepted, None, due)).await
}
