//! Accept loops. Listeners are handed in already bound (tests bind port 0), connections are
//! capped, accept errors back off instead of spinning, and a stop signal ends accepting while
//! open connections finish (HTTP ones are told to close after their current request).

use std::sync::Arc;
use std::time::Duration;

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{http, tcp, Frontend, ProxyContext};

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
    /// Fires when the balancer stops: open HTTP connections close after their request.
    pub shutdown: CancellationToken,
    pub tracker: TaskTracker,
}

impl Connections {
    pub fn new(max: usize) -> Connections {
        Connections {
            permits: Arc::new(Semaphore::new(max)),
            shutdown: CancellationToken::new(),
            tracker: TaskTracker::new(),
        }
    }
}

/// Accepts until `stop` fires (this listener removed) or the balancer shuts down.
pub async fn run(
    listener: TcpListener,
    protocol: Protocol,
    ctx: Arc<ProxyContext>,
    connections: Connections,
    stop: CancellationToken,
) {
    let builder = Arc::new(http_builder(&ctx));
    let mut accept_errors = 0u32;
    loop {
        // Waiting for a permit first leaves excess clients in the kernel's backlog.
        let permit = tokio::select! {
            permit = connections.permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            () = stop.cancelled() => return,
            () = connections.shutdown.cancelled() => return,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => { accept_errors = 0; accepted }
                Err(err) => {
                    // EMFILE and friends: back off instead of spinning, and keep serving.
                    accept_errors = (accept_errors + 1).min(10);
                    tracing::warn!(error = %err, "accept failed; backing off");
                    tokio::time::sleep(Duration::from_millis(10 * u64::from(accept_errors))).await;
                    continue;
                }
            },
            () = stop.cancelled() => return,
            () = connections.shutdown.cancelled() => return,
        };
        let ctx = ctx.clone();
        match protocol {
            Protocol::Tcp { port } => {
                // A TCP connection has no request boundary to stop at: on shutdown it keeps
                // flowing until it ends or the drain timeout does.
                connections.tracker.spawn(async move {
                    let _permit = permit;
                    tcp::serve(ctx, port, stream, peer).await;
                });
            }
            Protocol::Http(frontend) => {
                let builder = builder.clone();
                let shutdown = connections.shutdown.clone();
                let first_byte = ctx.config.header_timeout;
                connections.tracker.spawn(async move {
                    let _permit = permit;
                    let _ = stream.set_nodelay(true);
                    // hyper times out a request's head, but not a client that connects and
                    // sends nothing while the protocol is being detected: do it here.
                    let mut probe = [0u8; 1];
                    if !matches!(
                        tokio::time::timeout(first_byte, stream.peek(&mut probe)).await,
                        Ok(Ok(1..))
                    ) {
                        return;
                    }
                    let service = service_fn(move |request| {
                        http::serve(ctx.clone(), frontend, peer, request)
                    });
                    let connection =
                        builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    tokio::pin!(connection);
                    tokio::select! {
                        _ = connection.as_mut() => return,
                        () = shutdown.cancelled() => {}
                    }
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                });
            }
        }
    }
}

/// HTTP/1.1 and HTTP/2 (prior knowledge) on one port, with explicit limits.
fn http_builder(ctx: &ProxyContext) -> auto::Builder<TokioExecutor> {
    let config = &ctx.config;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(config.header_timeout)
        .max_buf_size(config.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(config.max_concurrent_streams)
        .max_header_list_size(config.max_header_bytes as u32)
        .max_pending_accept_reset_streams(Some(32))
        .max_local_error_reset_streams(Some(256))
        .keep_alive_interval(Some(Duration::from_secs(20)))
        .keep_alive_timeout(Duration::from_secs(20));
    builder
}
