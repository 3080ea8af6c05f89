//! TCP mode: a service port's connections go to an endpoint byte for byte, and the copy loop
//! shared with upgraded HTTP tunnels.

#[cfg(target_os = "linux")]
pub mod splice;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::model::Mode;
use crate::proxy::ProxyContext;

/// Attempts per connection, while the endpoints refuse.
const MAX_ATTEMPTS: usize = 3;
/// Per-direction buffer. Bytes are read into it and written out of it: one copy in user space.
const BUFFER: usize = 64 * 1024;

/// Serves one client connection on a TCP-mode service port.
pub async fn forward_connection(
    ctx: Arc<ProxyContext>,
    port: u16,
    client: TcpStream,
    peer: SocketAddr,
) {
    let backend = {
        let table = ctx.table.load();
        match table.service_port(port) {
            Some(frontend) if frontend.mode == Mode::Tcp => frontend.backend.clone(),
            _ => return, // no route: close
        }
    };
    if let Some(allowed) = &backend.labels().allowed_networks {
        let ip = peer.ip().to_canonical();
        if !allowed.iter().any(|net| net.contains(&ip)) {
            return;
        }
    }
    let mut tried = [usize::MAX; MAX_ATTEMPTS];
    for attempt in 0..MAX_ATTEMPTS {
        let Some(index) =
            backend
                .selector
                .pick(&backend.targets, peer.ip(), None, &tried[..attempt])
        else {
            return;
        };
        tried[attempt] = index;
        let target = &backend.targets[index];
        let connect = tokio::time::timeout(
            ctx.config.connect_timeout,
            TcpStream::connect(target.addr()),
        );
        match connect.await {
            Ok(Ok(upstream)) => {
                target.state.mark_ok();
                let _in_flight = target.state.begin();
                // The client's TCP_NODELAY comes from the listener.
                let _ = upstream.set_nodelay(true);
                let _ = forward(client, upstream, ctx.config.tunnel_timeout).await;
                return;
            }
            Ok(Err(err)) => {
                tracing::debug!(endpoint = %target.addr(), error = %err, "tcp connect failed");
                target.state.mark_failed();
            }
            Err(_) => target.state.mark_failed(),
        }
    }
}

/// Bytes both ways between two sockets: `splice(2)` on Linux, a copy loop elsewhere.
async fn forward(client: TcpStream, upstream: TcpStream, idle: Duration) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    return crate::proxy::tcp::splice::forward(client, upstream, idle).await;
    #[cfg(not(target_os = "linux"))]
    return copy_with_idle_timeout(client, upstream, idle).await;
}

/// Copies both ways until both directions have ended (a half-close is passed on as a write
/// shutdown, and the other direction keeps flowing) or nothing moved for `idle`.
pub async fn copy_with_idle_timeout<A, B>(a: A, b: B, idle: Duration) -> io::Result<()>
where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let (mut a_read, mut a_write) = tokio::io::split(a);
    let (mut b_read, mut b_write) = tokio::io::split(b);
    let mut a_buf = vec![0u8; BUFFER];
    let mut b_buf = vec![0u8; BUFFER];
    let (mut a_open, mut b_open) = (true, true);
    while a_open || b_open {
        tokio::select! {
            read = a_read.read(&mut a_buf), if a_open => match read? {
                0 => { a_open = false; b_write.shutdown().await?; }
                n => b_write.write_all(&a_buf[..n]).await?,
            },
            read = b_read.read(&mut b_buf), if b_open => match read? {
                0 => { b_open = false; a_write.shutdown().await?; }
                n => a_write.write_all(&b_buf[..n]).await?,
            },
            () = tokio::time::sleep(idle) => {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "tunnel idle"));
            }
        }
    }
    Ok(())
}
