//! What the data plane keeps per endpoint between requests: its idle upstream connections
//! (hyper's HTTP/1, cleartext and TLS; the native HTTP/1 path's plain sockets), its HTTP/2
//! connections (`h2.rs`), TLS to endpoints (`tls.rs`), the request body both engines send and
//! its replay after a refused HTTP/2 stream (`replay.rs`), an HTTP/1 response body read from
//! its pooled socket (`h1_body.rs`, with chunked framing in `chunked.rs`), and the names the
//! rest of the proxy uses for an endpoint with those pools. Knows nothing of routes or of how
//! a request is forwarded: the engines in `proxy/` do that.

pub mod body;
pub mod chunked;
pub mod h1_body;
pub mod h2;
pub mod pool;
pub mod replay;
pub mod tls;

use tokio::net::TcpStream;

use crate::balance::{EndpointRegistry, EndpointState, InFlight};

pub use crate::balance::EndpointCounters;

/// A pooled upstream connection that hyper's client drives.
pub type UpstreamConn = hyper::client::conn::http1::SendRequest<body::RequestBody>;

/// What an answered exchange leaves behind: an HTTP/1 connection to pool again (TLS or not),
/// an HTTP/2 stream's place on its connection, held until the response body ends, or nothing.
pub enum Exchanged {
    Http1 {
        conn: UpstreamConn,
        tls: bool,
    },
    Http2(h2::StreamSlot),
    /// A native HTTP/1 socket: its body ([`h1_body::H1Body`]) gives it back.
    Native,
}

/// An endpoint's runtime state as the proxy uses it.
pub type Endpoint = EndpointState<UpstreamPools>;
pub type Registry = EndpointRegistry<UpstreamPools>;
/// A build of the balancer's registry.
pub type RegistryBuild<'r> = crate::balance::EndpointRegistryBuild<'r, UpstreamPools>;
/// A request's place in its endpoint's in-flight count.
pub type EndpointInFlight = InFlight<UpstreamPools>;
/// One endpoint as a backend sees it.
pub type Target = crate::balance::Target<UpstreamPools>;

/// An endpoint's idle upstream connections, one set per worker (`crate::workers`): a
/// connection is registered with the reactor of the worker that opened it, and taken up again
/// by that worker only. Each set is allocated when its worker first sends to the endpoint.
pub struct UpstreamPools {
    workers: Box<[std::sync::OnceLock<Box<WorkerPools>>]>,
}

impl Default for UpstreamPools {
    fn default() -> Self {
        UpstreamPools {
            workers: (0..crate::workers::count())
                .map(|_| Default::default())
                .collect(),
        }
    }
}

impl UpstreamPools {
    /// This worker's idle connections.
    pub fn here(&self) -> &WorkerPools {
        let index = crate::workers::index().min(self.workers.len() - 1);
        self.workers[index].get_or_init(Box::default)
    }
}

impl std::fmt::Debug for UpstreamPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.workers.iter().filter_map(|pools| pools.get()))
            .finish()
    }
}

/// One worker's connections to an endpoint: hyper's idle HTTP/1 ones and the native HTTP/1
/// path's (plain sockets between exchanges); hyper's HTTP/1 over TLS; its HTTP/2 connections,
/// cleartext and TLS. Kept apart by transport: an app relabelled from `h1` to `h1-ssl` keeps
/// its endpoints' states, and no request may meet a connection of the other kind.
#[derive(Default)]
pub struct WorkerPools {
    pub hyper: pool::IdlePool<UpstreamConn>,
    pub native: pool::IdlePool<UpstreamStream>,
    pub hyper_tls: pool::IdlePool<UpstreamConn>,
    pub h2: h2::H2Conns,
    pub h2_tls: h2::H2Conns,
}

impl WorkerPools {
    /// Closes one connection of each pool's overflow that has sat there
    /// [`pool::OVERFLOW_IDLE`]. Either path's requests call it, so that what a burst on one
    /// path left (hyper's HTTP/2 or TLS traffic, say) goes while only the other one runs.
    pub fn expire_one(&self) {
        self.hyper.expire_one(pool::OVERFLOW_IDLE);
        self.native.expire_one(pool::OVERFLOW_IDLE);
        self.hyper_tls.expire_one(pool::OVERFLOW_IDLE);
    }
}

impl std::fmt::Debug for WorkerPools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerPools")
            .field("hyper", &self.hyper.len())
            .field("native", &self.native.len())
            .field("hyper_tls", &self.hyper_tls.len())
            .field("h2", &self.h2.len())
            .field("h2_tls", &self.h2_tls.len())
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
