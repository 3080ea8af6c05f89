//! An accepted connection on a TLS listener: the handshake (bounded by the header timeout,
//! counted as done or failed), then the native HTTP/1 engine, or hyper for HTTP/2 (ALPN `h2`)
//! and for whatever the native engine hands over.

use std::sync::Arc;
use std::time::Duration;

use hyper_util::rt::TokioIo;
use tokio_rustls::TlsAcceptor;

use super::accepted::Accepted;
use super::builders::HttpBuilders;
use super::hyper_conn;
use super::quickack::AckWhenWaiting;

/// An accepted connection on a TLS listener, before its handshake.
pub(in crate::proxy) struct TlsConnection {
    pub(in crate::proxy) acceptor: TlsAcceptor,
    pub(in crate::proxy) stream: tokio::net::TcpStream,
    pub(in crate::proxy) peer: std::net::SocketAddr,
    /// The handshake's bound: a stalled or dribbled handshake must not hold a connection slot.
    pub(in crate::proxy) first_byte: Duration,
}

impl TlsConnection {
    /// The handshake, then hyper by the protocol agreed.
    pub(in crate::proxy) async fn handshake_then_run(
        self,
        builders: &HttpBuilders,
        accepted: Accepted<'_>,
    ) {
        let TlsConnection {
            acceptor,
            stream,
            peer,
            first_byte,
        } = self;
        // Under TLS: the quick ACK is the TCP socket's.
        let stream = AckWhenWaiting::new(stream);
        let due = Some(stream.body_due());
        let stream = match tokio::time::timeout(first_byte, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => {
                let metrics = &accepted.ctx.metrics;
                metrics.tls_handshakes.inc();
                if stream.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                    metrics.tls_handshakes_resumed.inc();
                }
                stream
            }
            Ok(Err(err)) => {
                accepted.ctx.metrics.tls_handshake_failures.inc();
                tracing::debug!(%peer, error = %err, "TLS handshake failed");
                return;
            }
            Err(_) => {
                accepted.ctx.metrics.tls_handshake_failures.inc();
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        };
        let session = stream.get_ref().1;
        let sni = session.server_name().map(Arc::from);
        let alpn = session.alpn_protocol();
        if alpn == Some(b"h2") || !accepted.ctx.config.native_http1 {
            let server = builders.for_alpn(alpn);
            let io = TokioIo::new(stream);
            return hyper_conn::run(server, io, accepted, sni, due).await;
        }
        // HTTP/1.1: the native engine, as on plain connections, until a request needs hyper.
        let Some((stream, read)) = crate::proxy::h1::run(stream, &accepted).await else {
            return;
        };
        let server = builders.for_alpn(Some(b"http/1.1"));
        let io = TokioIo::new(crate::proxy::h1::Prefixed::new(read, stream));
        hyper_conn::run(server, io, accepted, sni, due).await;
    }
}
