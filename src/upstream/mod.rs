//! What the data plane keeps per endpoint between requests: its idle upstream connections
//! (hyper's, and the native HTTP/1 path's plain sockets), the request body both engines send,
//! and the names the rest of the proxy uses for an endpoint with those pools. Knows nothing of
//! routes or of how a request is forwarded: the engines in `proxy/` do that.

pub mod body;
pub mod pool;

use tokio::net::TcpStream;

use crate::balance::{EndpointRegistry, EndpointState, InFlight};

pub use crate::balance::EndpointCounters;

/// A pooled upstream connection that hyper's client drives.
pub type UpstreamConn = hyper::client::conn::http1::SendRequest<body::RequestBody>;
/// An endpoint's runtime state as the proxy uses it.
pub type Endpoint = EndpointState<UpstreamPools>;
pub type Registry = EndpointRegistry<UpstreamPools>;
/// A build of the balancer's registry.
pub type RegistryBuild<'r> = crate::balance::EndpointRegistryBuild<'r, UpstreamPools>;
/// A request's place in its endpoint's in-flight count.
pub type EndpointInFlight = InFlight<UpstreamPools>;
/// One endpoint as a backend sees it.
pub type Target = crate::balance::Target<UpstreamPools>;

/// An endpoint's idle upstream connections: hyper's, and the native HTTP/1 path's (plain
/// sockets between exchanges).
#[derive(Default)]
pub struct UpstreamPools {
    pub hyper: pool::IdlePool<UpstreamConn>,
    pub native: pool::IdlePool<UpstreamStream>,
}

impl UpstreamPools {
    /// Closes one connection of each pool's overflow that has sat there
    /// [`pool::OVERFLOW_IDLE`]. Either path's requests call it, so that what a burst on one
    /// path left (hyper's HTTP/2 or TLS traffic, say) goes while only the other one runs.
    pub fn expire_one(&self) {
        self.hyper.expire_one(pool::OVERFLOW_IDLE);
        self.native.expire_one(pool::OVERFLOW_IDLE);
    }
}

impl std::fmt::Debug for UpstreamPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamPools")
            .field("hyper", &self.hyper.len())
            .field("native", &self.native.len())
            .finish()
    }
}

/// An idle upstream connection of the native HTTP/1 path, in an endpoint's pool.
#[derive(Debug)]
pub struct UpstreamStream(TcpStream);

impl UpstreamStream {
    pub fn new(stream: TcpStream) -> UpstreamStream {
        UpstreamStream(stream)
    }

    pub fn into_inner(self) -> TcpStream {
        self.0
    }

    /// Whether the connection can take a request: not closed by the backend, nothing unread.
    /// No system call unless the socket was last seen readable.
    pub fn is_usable(&self) -> bool {
        let mut probe = [0u8; 1];
        matches!(self.0.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}
