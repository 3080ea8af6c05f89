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

/// What a pipe is asked to hold: big pipes mean fewer splice calls and wake-ups per byte. The
/// kernel's limit for unprivileged processes is 1 MiB (`/proc/sys/fs/pipe-max-size`); where
/// the resize fails the default 64 KiB stays. Pipe pages are kernel memory, used only while
/// data is in flight.
const PIPE_SIZE: usize = 1024 * 1024;

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
    loop {
        let mut moved = false;
        if !eof && held < pipe.capacity {
            match from.try_io(Interest::READABLE, || {
                splice(
                    from.as_fd(),
                    None,
                    pipe.write.as_fd(),
                    None,
                    pipe.capacity - held,
                    flags,
                )
                .map_err(io::Error::from)
            }) {
                Ok(0) => eof = true,
                Ok(n) => {
                    held += n;
                    moved = true;
                }
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
        let can_read = !eof && held < pipe.capacity;
        tokio::select! {
            ready = from.readable(), if can_read => ready?,
            ready = to.writable(), if held > 0 => ready?,
        }
    }
}

/// One direction's pipe.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
    capacity: usize,
}

fn pipe() -> io::Result<Pipe> {
    let (read, write) =
        nix::unistd::pipe2(OFlag::O_NONBLOCK | OFlag::O_CLOEXEC).map_err(io::Error::from)?;
    let capacity = nix::fcntl::fcntl(
        write.as_raw_fd(),
        nix::fcntl::FcntlArg::F_SETPIPE_SZ(PIPE_SIZE as i32),
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
