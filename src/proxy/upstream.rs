//! Upstream HTTP/1.1 connections: a lock-free idle pool per endpoint (carried across table
//! swaps with the endpoint's state), connect with a timeout, and a send that hands the request
//! back when it was never sent, so that it can be retried on another endpoint.

use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use super::body::RequestBody;
use super::error::ProxyError;
use crate::balance::{Endpoint, UpstreamConn};

/// What happened to one attempt.
pub enum Attempt {
    /// The upstream answered (any status).
    Response(Response<Incoming>, UpstreamConn),
    /// The request never left: try another endpoint with it.
    NotSent(Request<RequestBody>, ProxyError),
    /// The request was (maybe partly) sent: it cannot be replayed.
    Failed(ProxyError),
}

/// Sends `request` to `endpoint`, on a pooled connection when one is idle, else a new one.
pub async fn send(
    endpoint: &Arc<Endpoint>,
    mut request: Request<RequestBody>,
    connect_timeout: Duration,
    response_timeout: Duration,
) -> Attempt {
    let addr = endpoint.addr;
    let mut conn = match pooled(endpoint) {
        Some(conn) => conn,
        None => match connect(endpoint, connect_timeout).await {
            Ok(conn) => conn,
            Err(err) => return Attempt::NotSent(request, err),
        },
    };
    loop {
        let sent = tokio::time::timeout(response_timeout, conn.try_send_request(request)).await;
        match sent {
            Ok(Ok(response)) => {
                endpoint.mark_ok();
                return Attempt::Response(response, conn);
            }
            Ok(Err(mut err)) => match err.take_message() {
                // The pooled connection closed before our request went out (a keep-alive
                // race): the request is intact, so open a fresh connection and send it there.
                Some(unsent) => {
                    request = unsent;
                    conn = match connect(endpoint, connect_timeout).await {
                        Ok(conn) => conn,
                        Err(err) => return Attempt::NotSent(request, err),
                    };
                }
                None => {
                    return Attempt::Failed(ProxyError::Upstream {
                        addr,
                        source: err.into_error(),
                    })
                }
            },
            Err(_) => return Attempt::Failed(ProxyError::UpstreamTimeout(addr)),
        }
    }
}

/// Puts a connection back for the next request to this endpoint. A connection still busy with
/// a response body becomes ready later; [`pooled`] skips it until then.
pub fn release(endpoint: &Endpoint, conn: UpstreamConn) {
    if !conn.is_closed() {
        // A full pool drops the connection, which closes it.
        let _ = endpoint.idle().push(conn);
    }
}

/// An idle, ready connection from the endpoint's pool.
fn pooled(endpoint: &Endpoint) -> Option<UpstreamConn> {
    // Look at each pooled connection at most once; busy ones go back to the end.
    for _ in 0..endpoint.idle().len() {
        let conn = endpoint.idle().pop()?;
        if conn.is_closed() {
            continue;
        }
        if conn.is_ready() {
            return Some(conn);
        }
        let _ = endpoint.idle().push(conn);
    }
    None
}

/// A new connection; a failure marks the endpoint down for a back-off.
async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<UpstreamConn, ProxyError> {
    let addr = endpoint.addr;
    let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(source)) => {
            endpoint.mark_failed();
            return Err(ProxyError::Connect { addr, source });
        }
        Err(_) => {
            endpoint.mark_failed();
            return Err(ProxyError::ConnectTimeout(addr));
        }
    };
    let _ = stream.set_nodelay(true);
    let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
        .handshake(TokioIo::new(stream))
        .await
        .map_err(|source| ProxyError::Upstream { addr, source })?;
    tokio::spawn(async move {
        // Ends when either side closes; errors were already reported to the request.
        let _ = connection.with_upgrades().await;
    });
    sender
        .ready()
        .await
        .map_err(|source| ProxyError::Upstream { addr, source })?;
    Ok(sender)
}
