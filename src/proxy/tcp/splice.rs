//! Zero-copy TCP forwarding on Linux: bytes move socket → pipe → socket with `splice(2)` and
//! never enter user space. Each direction has its own pipe; a half-close is passed on as a
//! write shutdown; the connection ends when both directions have or nothing moved for `idle`.

use std::io;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::{splice, OFlag, SpliceFFlags};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// What a pipe is asked to hold. Bigger pipes mean fewer splice calls per byte, but the
/// bytes then reach the receiver in larger bursts; this size moved bulk transfers fastest of
/// those measured (`docs/benchmarks.md`, TCP mode). Pipe pages are kernel memory, used only
/// while data is in flight; where the resize fails the default 64 KiB stays.
const PIPE_SIZE: usize = 256 * 1024;

/// Forwards both ways with splice until both sides are done or the connection idles out.
pub async fn forward(a: TcpStream, b: TcpStream, idle: Duration) -> io::Result<()> {
    forward_with_pipes(a, b, idle, PIPE_SIZE).await
}

/// [`forward`] with pipes of `pipe_size` bytes (tests use a one-page pipe: full after one
/// socket fragment).
async fn forward_with_pipes(
    a: TcpStream,
    b: TcpStream,
    idle: Duration,
    pipe_size: usize,
) -> io::Result<()> {
    let start = Instant::now();
    let last_activity = AtomicU64::new(0);
    let pipes = (pipe(pipe_size)?, pipe(pipe_size)?);
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
/// Reading and writing overlap: the pipe is refilled while it drains, and the task sleeps only
/// when neither side can move.
async fn one_way(
    from: &TcpStream,
    to: &TcpStream,
    pipe: &Pipe,
    last_activity: &AtomicU64,
    start: Instant,
) -> io::Result<()> {
    let flags = SpliceFFlags::SPLICE_F_MOVE | SpliceFFlags::SPLICE_F_NONBLOCK;
    let mut held = 0usize;
    let mut eof = false;
    // The pipe refused more although the socket has data: its slots are full (a slot holds
    // one socket buffer fragment, so this can happen below `capacity` bytes). Only draining
    // it helps.
    let mut pipe_full = false;
    loop {
        let mut moved = false;
        if !eof && !pipe_full && held < pipe.capacity {
            match from.try_io(Interest::READABLE, || fill(from, pipe, held, flags)) {
                Ok(Filled::Eof) => eof = true,
                Ok(Filled::Bytes(n)) => {
                    held += n;
                    moved = true;
                }
                Ok(Filled::PipeFull) => pipe_full = true,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if held > 0 {
            match to.try_io(Interest::WRITABLE, || {
                splice(pipe.read.as_fd(), None, to.as_fd(), None, held, flags)
                    .map_err(io::Error::from)
            }) {
                Ok(n) => {
                    held -= n;
                    pipe_full = false;
                    moved = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        if eof && held == 0 {
            socket2::SockRef::from(to)
                .shutdown(std::net::Shutdown::Write)
                .or_else(ignore_not_connected)?;
            return Ok(());
        }
        if moved {
            last_activity.store(start.elapsed().as_millis() as u64, Ordering::Relaxed);
            continue;
        }
        // Neither side could move: sleep until one of the sides that has work can.
        let can_read = !eof && !pipe_full && held < pipe.capacity;
        tokio::select! {
            ready = from.readable(), if can_read => ready?,
            ready = to.writable(), if held > 0 => ready?,
        }
    }
}

/// What one splice from a socket into a pipe did.
enum Filled {
    Bytes(usize),
    Eof,
    PipeFull,
}

/// Splices what the socket has into the pipe, which holds `held` bytes. `WouldBlock` means the
/// socket has nothing to read: tokio then forgets its readiness and waits for the next edge.
/// A full pipe returns `EAGAIN` too, and taking that for an empty socket would wait for data
/// the peer never sends (its window is closed by what we have not read), so with bytes in the
/// pipe an `EAGAIN` is checked against the socket. An empty pipe cannot be full: there, data
/// found after the `EAGAIN` arrived since (its edge is still to come) or is urgent data splice
/// does not take; either way waiting for the next edge is right, and never spins.
fn fill(from: &TcpStream, pipe: &Pipe, held: usize, flags: SpliceFFlags) -> io::Result<Filled> {
    let room = pipe.capacity - held;
    match splice(from.as_fd(), None, pipe.write.as_fd(), None, room, flags) {
        Ok(0) => Ok(Filled::Eof),
        Ok(n) => Ok(Filled::Bytes(n)),
        Err(nix::errno::Errno::EAGAIN) if held > 0 => {
            let mut probe = [std::mem::MaybeUninit::<u8>::uninit(); 1];
            match socket2::SockRef::from(from).peek(&mut probe)? {
                0 => Ok(Filled::Eof),
                _ => Ok(Filled::PipeFull),
            }
        }
        Err(e) => Err(io::Error::from(e)),
    }
}

/// One direction's pipe.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

fn pipe(size: usize) -> io::Result<Pipe> {
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let capacity = nix::fcntl::fcntl(
        write.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETPIPE_SZ(size as i32),
    )
    .ok()
    .and_then(|size| usize::try_from(size).ok())
    .unwrap_or(64 * 1024);
    Ok(Pipe {
        read,
        write,
        capacity,
    })
}

fn ignore_not_connected(e: io::Error) -> io::Result<()> {
    if e.kind() == io::ErrorKind::NotConnected {
        Ok(())
    } else {
        Err(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::TcpListener;

    /// A connected pair over loopback.
    async fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (near, far) = tokio::join!(TcpStream::connect(addr), listener.accept());
        (near.unwrap(), far.unwrap().0)
    }

    /// The backend sends small segments until every buffer on the way is full, then, once the
    /// client starts reading, the rest; it keeps its connection open (no end of stream, so no
    /// readiness edge but for data). When a full pipe (one page here: one slot) was taken for
    /// an empty socket, the proxy stopped reading its socket while the backend's window was
    /// closed, and nothing moved until the idle timeout. Whether the last read before the
    /// window closed met a full pipe depends on how the kernel packed the segments, so eight
    /// connections run at once: the old code stalled about one in three.
    #[tokio::test(flavor = "current_thread")]
    async fn a_full_pipe_never_strands_what_the_socket_holds() {
        const TOTAL: usize = 4 << 20;
        let runs = (0..8).map(|_| through_a_one_page_pipe(TOTAL));
        let received = futures_util::future::join_all(runs).await;
        assert_eq!(received, vec![TOTAL; 8], "bytes each client received");
    }

    /// Bytes the client received before the end of stream or 30 s.
    async fn through_a_one_page_pipe(total: usize) -> usize {
        let (mut client, client_side) = pair().await;
        let (upstream_side, backend) = pair().await;
        let proxy = tokio::spawn(forward_with_pipes(
            client_side,
            upstream_side,
            Duration::from_secs(5),
            4096,
        ));
        let (blocked_tx, blocked_rx) = tokio::sync::oneshot::channel::<()>();
        let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
        let sender = tokio::spawn(async move {
            backend.set_nodelay(true).unwrap();
            let mut blocked = Some(blocked_tx);
            let mut sent = 0;
            while sent < total {
                match backend.try_write(&[7u8; 256]) {
                    Ok(n) => sent += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        // Every buffer up to the client's is full.
                        blocked.take().map(|tx| tx.send(()));
                        if backend.writable().await.is_err() {
                            return;
                        }
                    }
                    // The proxy gave up on the connection: the client sees it.
                    Err(_) => return,
                }
            }
            drop(blocked);
            // Holds the connection open until the client has everything.
            let _ = done_rx.await;
        });
        // Resolves when the backend first blocks (or, were it never to, has sent everything).
        let _ = blocked_rx.await;
        let mut received = 0;
        let mut buf = [0u8; 1024];
        let _ = tokio::time::timeout(Duration::from_secs(30), async {
            while received < total {
                match client.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => received += n,
                }
            }
        })
        .await;
        drop((done_tx, client));
        let _ = tokio::join!(sender, proxy);
        received
    }
}
