//! Zero-copy TCP forwarding on Linux: bytes move socket → pipe → socket with `splice(2)` and
//! never enter user space. Each direction has its own pipe; a half-close is passed on as a
//! write shutdown; the connection ends when both directions have or nothing moved for `idle`.

use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{splice, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Bytes asked of one splice call (the pipe holds 64 KiB by default).
const CHUNK: usize = 64 * 1024;

/// Forwards both ways with splice until both sides are done or the connection idles out.
pub async fn forward(a: TcpStream, b: TcpStream, idle: Duration) -> io::Result<()> {
    let start = Instant::now();
    let last_activity = AtomicU64::new(0);
    let pipes = (pipe()?, pipe()?);
    let both = async {
        let (ab, ba) = tokio::join!(
            one_way(&a, &b, &pipes.0, &last_activity, start),
            one_way(&b, &a, &pipes.1, &last_activity, start)
        );
        ab.and(ba)
    };
    let watchdog = async {
        loop {
            let since = Duration::from_millis(last_activity.load(Ordering::Relaxed));
            let deadline = since + idle;
            let now = start.elapsed();
            if now >= deadline {
                return;
            }
            tokio::time::sleep(deadline - now).await;
        }
    };
    tokio::select! {
        result = both => result,
        () = watchdog => Err(io::Error::new(io::ErrorKind::TimedOut, "tcp connection idle")),
    }
}

/// `from` → pipe → `to` until `from` reaches end of stream, then shuts down `to`'s write side.
async fn one_way(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &(OwnedFd, OwnedFd),
    last_activity: &AtomicU64,
    start: Instant,
) -> io::Result<()> {
    let (pipe_read, pipe_write) = pipe;
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    loop {
        let filled = loop {
            from.readable().await?;
            match from.try_io(Interest::READABLE, || {
                splice(from.as_fd(), None, pipe_write.as_fd(), None, CHUNK, flags)
                    .map_err(io::Error::from)
            }) {
                Ok(n) => break n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        };
        if filled == 0 {
            socket2::SockRef::from(to)
                .shutdown(std::net::Shutdown::Write)
                .or_else(ignore_not_connected)?;
            return Ok(());
        }
        last_activity.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
        let mut left = filled;
        while left > 0 {
            to.writable().await?;
            match to.try_io(Interest::WRITABLE, || {
                splice(pipe_read.as_fd(), None, to.as_fd(), None, left, flags)
                    .map_err(io::Error::from)
            }) {
                Ok(n) => left -= n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    }
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)
}

fn ignore_not_connected(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotConnected {
        Ok(())
    } else {
        Err(e)
    }
}
