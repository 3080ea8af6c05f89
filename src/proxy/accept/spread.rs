//! One listener's accept loops across the per-core workers (`crate::workers`): a socket per
//! worker in one `SO_REUSEPORT` group, so the kernel hands each new connection to one worker
//! and wakes no other. Sockets a predecessor handed over (binary upgrade) are all accepted on,
//! however many there are, since the group may queue connections on any of them.

use std::future::Future;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::listener::{self, bind_in_group, Connections, Protocol};
use crate::proxy::ProxyContext;

/// [`listener::run`] on every worker ([`spawn_on_each`]): what serve mode starts for each
/// listener, fixed or opened with a service port.
pub fn run_on_each(
    listener: TcpListener,
    protocol: Protocol,
    tls: Option<TlsAcceptor>,
    ctx: Arc<ProxyContext>,
    connections: Connections,
    stop: CancellationToken,
) -> JoinHandle<()> {
    spawn_on_each(listener, move |listener| {
        listener::run(
            listener,
            protocol,
            tls.clone(),
            ctx.clone(),
            connections.clone(),
            stop.clone(),
        )
    })
}

/// Runs `accept` on every worker, each on its own socket of `listener`'s group (on the
/// caller's runtime without workers); the handle ends when every loop has ended.
fn spawn_on_each<F, Fut>(listener: TcpListener, accept: F) -> JoinHandle<()>
where
    F: Fn(TcpListener) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let workers = crate::workers::handles();
    if workers.is_empty() {
        return tokio::spawn(accept(listener));
    }
    let group = match group_of(listener, workers.len()) {
        Ok(group) => group,
        Err(err) => {
            tracing::error!(error = %err, "cannot hand a listener to the workers");
            return tokio::spawn(async {});
        }
    };
    let accept = Arc::new(accept);
    let loops: Vec<_> = group
        .into_iter()
        .enumerate()
        .map(|(i, socket)| {
            let accept = accept.clone();
            // Registered with the worker's own reactor: its readiness wakes that thread only.
            workers[i % workers.len()].spawn(async move {
                match TcpListener::from_std(socket) {
                    Ok(socket) => accept(socket).await,
                    Err(err) => {
                        tracing::error!(error = %err, "a worker cannot accept on a listener")
                    }
                }
            })
        })
        .collect();
    tokio::spawn(async move {
        for accept in loops {
            let _ = accept.await;
        }
    })
}

/// `listener` and the other sockets of its group: those handed over, then new ones until
/// there is one per worker. A socket that cannot join the group (one bound by a version
/// without `SO_REUSEPORT`) is shared instead: another descriptor of the first.
fn group_of(listener: TcpListener, workers: usize) -> std::io::Result<Vec<std::net::TcpListener>> {
    let addr = listener.local_addr()?;
    let first = listener.into_std()?;
    let mut group = crate::handover::take_more(addr);
    group.insert(0, first);
    while group.len() < workers {
        let next = match bind_in_group(addr) {
            Ok(next) => next,
            Err(err) => {
                tracing::debug!(%addr, error = %err, "cannot add a socket to the listener's group; sharing one");
                group[0].try_clone()?
            }
        };
        group.push(next);
    }
    Ok(group)
}
