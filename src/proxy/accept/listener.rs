//! Accept loops. Listeners are handed in already bound (tests bind port 0), connections are
//! capped, accept errors back off instead of spinning, and a stop signal ends accepting while
//! open connections finish (HTTP ones are told to close after their current request; each is
//! served by `conn/`).

use std::sync::Arc;
use std::time::Duration;

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::proxy::accept::per_ip::PerIp;
use crate::proxy::conn::{self, accepted::Accepted, accepted::ClosedCounters};
use crate::proxy::tcp;

pub use crate::proxy::conn::builders::HttpBuilders;
use crate::proxy::Frontend;
use crate::proxy::ProxyContext;

/// Connections the kernel completes and queues for a listener before it accepts them (capped
/// by `net.core.somaxconn`). At the connection cap accepting pauses, and a flood waits here
/// instead of in SYN retries; 128 (what a plain bind gave) filled at once.
const BACKLOG: u32 = 4096;

/// Binds a listening socket with the balancer's backlog (`SO_REUSEADDR`, and `SO_REUSEPORT`
/// so that each worker gets a socket of its own: `spread.rs`), or takes the one a predecessor
/// handed over for `addr`.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    // Handed over by the process this one replaces (binary upgrade): already listening.
    if let Some(inherited) = crate::handover::take(addr) {
        return inherited;
    }
    TcpListener::from_std(bind_in_group(addr)?)
}

/// A new listening socket for `addr`, joining the `SO_REUSEPORT` group of those already bound
/// there by this process (the same user).
pub fn bind_in_group(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    #[cfg(target_os = "linux")]
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG as i32)?;
    Ok(socket.into())
}

/// What a listener speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    Http(Frontend),
    Tcp { port: u16 },
}

/// Shared by every listener: the connection cap, the stop signal, the connection tracker.
#[derive(Debug, Clone)]
pub struct Connections {
    pub permits: Arc<Semaphore>,
    /// Open connections by client address (capped by `max_connections_per_ip`).
    pub per_ip: Arc<PerIp>,
    /// Fires when the balancer stops: open HTTP connections close after their request.
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

impl Connections {
    pub fn new(max: usize) -> Connections {
        Connections {
            permits: Arc::new(Semaphore::new(max)),
            per_ip: Arc::default(),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }
}

/// Accepts until `stop` fires (this listener removed) or the balancer shuts down. With `tls`,
/// HTTP connections are TLS (the handshake bounded by the header timeout).
pub async fn run(
    listener: TcpListener,
    protocol: Protocol,
    tls: Option<TlsAcceptor>,
    ctx: Arc<ProxyContext>,
    connections: Connections,
    stop: CancellationToken,
) {
    let builders = Arc::new(HttpBuilders::new(&ctx));
    // Handed to a successor on a binary upgrade while this loop runs.
    let listener = Arc::new(listener);
    let _offered = crate::handover::offer(&listener);
    tokio::select! {
        () = crate::handover::until_accepting() => {}
        () = stop.cancelled() => return,
        () = connections.shutdown.cancelled() => return,
    }
    set_socket_options(&listener, protocol);
    // Metric handles for this listener, resolved once.
    let open = match protocol {
        Protocol::Http(frontend) => ctx
            .metrics
            .listener(frontend.metrics_kind().label(), frontend.port()),
        Protocol::Tcp { port } => ctx.metrics.listener(crate::metrics::TCP_LISTENER, port),
    };
    let tcp_accepted = match protocol {
        Protocol::Tcp { port } => Some(
            ctx.metrics
                .tcp_connections
                .with_label_values(&[&port.to_string()]),
        ),
        Protocol::Http(_) => None,
    };
    let closed = ClosedCounters::new(&ctx.metrics);
    let worker = crate::workers::index().to_string();
    let accepted_here = ctx.metrics.worker_connections.with_label_values(&[&worker]);
    let max_per_ip = ctx.config.max_connections_per_ip;
    let mut backoff = AcceptBackoff::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = backoff.accept(&listener) => match accepted {
                Some(accepted) => accepted,
                None => continue,
            },
            () = stop.cancelled() => return,
            () = connections.shutdown.cancelled() => return,
        };
        // One client address may not take every slot.
        let Some(per_ip) = connections.per_ip.admit(peer.ip(), max_per_ip) else {
            closed.per_ip_limit.inc();
            tracing::debug!(%peer, "closed: too many connections from this address");
            continue;
        };
        // At the cap, this accepted client waits (unread) for a slot and the rest stay in the
        // kernel's backlog. The permit is taken after accept so that a listener waiting for
        // clients holds no slot. A client accepted as the balancer starts draining is served
        // (its request answered with `Connection: close`): dropped, it would be reset with its
        // request unread; draining connections free slots, and the drain timeout bounds the
        // wait.
        let permit = tokio::select! {
            biased;
            permit = connections.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = stop.cancelled() => return,
        };
        accepted_here.inc();
        let ctx = ctx.clone();
        let open = OpenConnection::new(&open);
        match protocol {
            Protocol::Tcp { port } => {
                if let Some(counter) = &tcp_accepted {
                    counter.inc();
                }
                // A TCP connection has no request boundary to stop at: on shutdown it keeps
                // flowing until it ends or the drain timeout does.
                connections.tracker.spawn(async move {
                    let _held = (permit, per_ip, open);
                    tcp::forward_connection(ctx, port, stream, peer).await;
                });
            }
            Protocol::Http(frontend) => {
                let (builders, tls, closed) = (builders.clone(), tls.clone(), closed.clone());
                let shutdown = connections.shutdown.clone();
                connections.tracker.spawn(async move {
                    let _held = (permit, per_ip, open);
                    let accepted = Accepted {
                        ctx,
                        frontend,
                        peer,
                        shutdown,
                        closed: &closed,
                    };
                    conn::run(accepted, stream, tls, &builders).await;
                });
            }
        }
    }
}

/// Options set once on the listening socket, which accepted sockets inherit.
fn set_socket_options(listener: &TcpListener, protocol: Protocol) {
    // Accepted sockets start with the listener's TCP_NODELAY: set once here, not per client.
    if let Err(err) = socket2::SockRef::from(listener).set_tcp_nodelay(true) {
        tracing::warn!(error = %err, "cannot set TCP_NODELAY on a listener; its replies may wait for ACKs");
    }
    #[cfg(target_os = "linux")]
    if let Protocol::Http(_) = protocol {
        // HTTP and TLS clients speak first: a connection reaches accept with its request, one
        // wakeup and no empty read per new connection. A client that sends nothing is handed
        // over after about a second, and the header timeout runs from there.
        if let Err(err) = crate::proxy::accept::sockopt::set_defer_accept(listener, 1) {
            tracing::debug!(error = %err, "TCP_DEFER_ACCEPT unavailable; accepting at once");
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = protocol;
}

/// Accepting with a back-off on errors (EMFILE and friends): instead of spinning, it waits a
/// little longer after each failure and keeps serving; one warning per run of failures.
#[derive(Default)]
struct AcceptBackoff {
    failures: u32,
}

impl AcceptBackoff {
    /// The next connection, or `None` after a failure and its back-off.
    async fn accept(&mut self, listener: &TcpListener) -> Option<(TcpStream, SocketAddr)> {
        match listener.accept().await {
            Ok(accepted) => {
                if self.failures > 0 {
                    tracing::info!(failures = self.failures, "accepting connections again");
                    self.failures = 0;
                }
                Some(accepted)
            }
            Err(err) => {
                self.failures = self.failures.saturating_add(1);
                if self.failures == 1 {
                    tracing::warn!(error = %err, "accept failed; backing off until it works again");
                } else {
                    tracing::debug!(error = %err, "accept failed");
                }
                let backoff = 10 * u64::from(self.failures.min(10));
                tokio::time::sleep(Duration::from_millis(backoff)).await;
                None
            }
        }
    }
}

/// Counts an open connection in its listener's gauge until dropped.
struct OpenConnection(prometheus::IntGauge);

impl OpenConnection {
    fn new(gauge: &prometheus::IntGauge) -> OpenConnection {
        gauge.inc();
        OpenConnection(gauge.clone())
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.dec();
    }
}
