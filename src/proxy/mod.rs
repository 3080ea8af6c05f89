//! The data plane: listeners, HTTP proxying, TCP forwarding. Reads the routing table (one
//! `load()` per request or connection), never writes it. Folders in the order a connection
//! meets them:
//!
//! ```text
//! accept/        listen, accept (connection caps, back-off on accept errors), socket options,
//!                the per-IP cap, the open-file fit, TLS handshakes
//! conn/          one client connection: the engine chosen once (native HTTP/1, hyper, TCP),
//!                its idle and stalled-send watchdog, the quick ACK when a body is due
//! h1/            the native HTTP/1.1 engine, plain and TLS (the common case)
//! hyper_engine/  hyper's engine (HTTP/2, WebSocket, the label features): one request
//!                route → checks → pick → rewrite → forward → respond, and its upstream exchange
//! request/       what both engines share: errors and their statuses, header rules, request
//!                checks, basic auth, the request and response rewrites, the response body
//! tcp/           TCP mode and the tunnel copy loop (splice on Linux)
//! ```

pub mod accept;
pub mod conn;
pub mod h1;
pub mod hyper_engine;
pub mod request;
pub mod tcp;

use std::time::Duration;

use crate::routing::{Backend, SharedTable};
use crate::upstream::Target;

/// Timeouts and limits, all on by default (Marathon-LB's HAProxy defaults where it has them).
#[derive(Debug, Clone)]
pub struct ProxyConfig {
    /// Connecting to an endpoint (HAProxy `timeout connect` 3 s).
    pub connect_timeout: Duration,
    /// Waiting for an upstream's response head (→ 504), and between pieces of its body (→ the
    /// response is cut short) (HAProxy `timeout server` 30 s).
    pub server_timeout: Duration,
    /// Reading a request's headers, and a keep-alive connection's idle time before the next
    /// request (10 s).
    pub header_timeout: Duration,
    /// A request body that brings less than 1 KiB in this long (once it has had to wait for
    /// the client) ends in 408 and the upstream request is aborted (stalled or dribbled POST).
    pub client_body_timeout: Duration,
    /// A response the client does not accept (it stops reading, or an HTTP/2 client never
    /// opens its window) for this long: the connection is closed (slow read).
    pub client_send_timeout: Duration,
    /// Client connections open at once from one IP address; more are closed at accept.
    pub max_connections_per_ip: usize,
    /// An upgraded or TCP-mode connection with no bytes either way (HAProxy `timeout tunnel`).
    pub tunnel_timeout: Duration,
    /// Largest request head accepted (HTTP/1 buffer; HTTP/2 header list).
    pub max_header_bytes: usize,
    /// Client connections open at once, all listeners together (HAProxy `maxconn`).
    pub max_connections: usize,
    /// HTTP/2 streams per connection.
    pub max_concurrent_streams: u32,
    /// A PING on every HTTP/2 connection to a backend this long after the last frame from it,
    /// answered within the same, else the connection is closed (a backend gone without a FIN).
    pub backend_h2_keep_alive: Duration,
    /// How long a stopping balancer waits for requests in flight.
    pub drain_timeout: Duration,
    /// One log line per request (target `access`).
    pub access_log: bool,
    /// HTTP/1.1 connections, plain and TLS, are served by the native path (`h1`) until a
    /// request needs hyper's, and hyper's bodiless requests to plain HTTP/1 backends go over
    /// the native upstream sockets; off: hyper serves every connection, and its client every
    /// request.
    pub native_http1: bool,
    /// `--backend-ca`: the certificates `h1-ssl` and `h2-ssl` endpoints are checked against.
    pub backend_ca: Option<std::path::PathBuf>,
}

/// The defaults: the one place they are written. The command line's defaults are these, and
/// `config/switchyard.toml` is checked against the command line.
pub const DEFAULTS: ProxyConfig = ProxyConfig {
    connect_timeout: Duration::from_secs(3),
    server_timeout: Duration::from_secs(30),
    header_timeout: Duration::from_secs(10),
    client_body_timeout: Duration::from_secs(15),
    client_send_timeout: Duration::from_secs(30),
    max_connections_per_ip: 1000,
    tunnel_timeout: Duration::from_secs(3600),
    max_header_bytes: 64 * 1024,
    max_connections: 50_000,
    max_concurrent_streams: 100,
    backend_h2_keep_alive: Duration::from_secs(20),
    drain_timeout: Duration::from_secs(30),
    access_log: false,
    native_http1: true,
    backend_ca: None,
};

impl Default for ProxyConfig {
    fn default() -> Self {
        DEFAULTS
    }
}

/// What the request path needs, shared by every connection.
#[derive(Debug)]
pub struct ProxyContext {
    pub table: SharedTable,
    pub config: ProxyConfig,
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// Requests that found no backend (no route, bad request) are counted here.
    pub unrouted: std::sync::Arc<crate::metrics::BackendMetrics>,
    /// Upgraded tunnels (WebSocket) outlive their HTTP connection: tracked, so that a
    /// stopping balancer lets them run until the drain deadline, like TCP-mode connections.
    pub tunnels: tokio_util::task::TaskTracker,
    /// Failed `HAPROXY_{n}_AUTH` checks per client address (429 past the budget).
    pub auth_failures: request::auth::FailureLimiter,
    /// TLS to `h1-ssl` and `h2-ssl` endpoints.
    pub backend_tls: crate::upstream::tls::BackendTls,
}

/// Which kind of listener a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frontend {
    /// Ports 80/443: routed by `Host` and path.
    Vhost { port: u16, tls: bool },
    /// Port 9091: routed by `X-Marathon-App-Id`.
    AppId { port: u16 },
    /// An app's own service port in HTTP mode: that app, whatever the host.
    ServicePort { port: u16, tls: bool },
}

impl Frontend {
    /// The listener kind requests are counted by.
    pub fn metrics_kind(self) -> crate::metrics::ListenerKind {
        use crate::metrics::ListenerKind;
        match self {
            Frontend::Vhost { tls: false, .. } => ListenerKind::Http,
            Frontend::Vhost { tls: true, .. } => ListenerKind::Https,
            Frontend::AppId { .. } => ListenerKind::AppId,
            Frontend::ServicePort { .. } => ListenerKind::ServicePort,
        }
    }

    /// How the access log and `/stats` name the listener: as the metrics' `listener` label
    /// does (an app's service port, TLS or not, is `service_port`; its port tells them apart).
    pub fn listener_label(self) -> &'static str {
        match self {
            Frontend::Vhost { tls: false, .. } => "http",
            Frontend::Vhost { tls: true, .. } => "https",
            Frontend::AppId { .. } => "app_id",
            Frontend::ServicePort { .. } => "service_port",
        }
    }

    pub fn is_tls(self) -> bool {
        matches!(
            self,
            Frontend::Vhost { tls: true, .. } | Frontend::ServicePort { tls: true, .. }
        )
    }

    pub fn scheme(self) -> &'static str {
        if self.is_tls() {
            "https"
        } else {
            "http"
        }
    }

    pub fn port(self) -> u16 {
        match self {
            Frontend::Vhost { port, .. }
            | Frontend::ServicePort { port, .. }
            | Frontend::AppId { port } => port,
        }
    }
}

/// Attempts per request: the first endpoint and up to two others, while nothing was sent.
const MAX_ATTEMPTS: usize = 3;

/// The endpoints one request has tried, for both HTTP paths' retry loops.
struct Attempts {
    tried: [usize; MAX_ATTEMPTS],
    count: usize,
}

impl Attempts {
    fn new() -> Attempts {
        Attempts {
            tried: [usize::MAX; MAX_ATTEMPTS],
            count: 0,
        }
    }

    /// The next endpoint to try (none tried before for this request), counting a retry on
    /// the backend when it is not the first; `None` once the attempts or the endpoints are
    /// used up.
    fn next<'b>(
        &mut self,
        backend: &'b Backend,
        client: std::net::IpAddr,
        cookie: Option<u64>,
    ) -> Option<&'b Target> {
        if self.count == MAX_ATTEMPTS {
            return None;
        }
        let tried = &self.tried[..self.count];
        let index = backend
            .selector
            .pick(&backend.targets, client, cookie, tried)?;
        self.tried[self.count] = index;
        if self.count > 0 {
            backend.metrics.retries().inc();
        }
        self.count += 1;
        Some(&backend.targets[index])
    }
}
