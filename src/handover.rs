//! Binary upgrade without refusing a connection (what HAProxy's `-x` and nginx's USR2 do): on
//! SIGUSR2 the balancer starts the binary now at its path, with the same arguments, and hands
//! it every listening socket (systemd's `LISTEN_FDS` protocol). Both accept on the same
//! sockets until the new process serves its first table; then this one drains and exits as on
//! SIGTERM. No socket is closed or bound again, so no client is refused and none waiting in a
//! backlog is lost. A new process that is not ready in time is stopped; this one keeps serving.

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixListener, UnixStream};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use command_fds::{CommandFdExt, FdMapping};
use tokio::io::AsyncReadExt;

/// The abstract Unix socket on which a new process tells the old one that it serves.
const READY_SOCKET: &str = "SWITCHYARD_UPGRADE_READY";
/// How long a new process may take to serve its first table (reading Marathon included).
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// The first descriptor of systemd's protocol.
const FIRST_FD: i32 = 3;

/// This process's listening sockets, offered to a successor, by the id of the guard that offers
/// each (shared with its accept loop, not duplicated: a descriptor per socket is enough; an
/// address has one socket per worker).
static OFFERED: Mutex<Vec<(u64, Arc<tokio::net::TcpListener>)>> = Mutex::new(Vec::new());

/// What the predecessor handed over: sockets by address until claimed (several for one
/// address: one per worker, `proxy/accept/spread.rs`), and where to say "ready".
struct Inherited {
    sockets: Mutex<HashMap<SocketAddr, Vec<std::net::TcpListener>>>,
    ready: Mutex<Option<String>>,
}

static INHERITED: OnceLock<Inherited> = OnceLock::new();

/// Closed while a process started by an upgrade has no table yet: its accept loops wait, and
/// the old process alone answers (rather than this one with 503s for want of routes).
static ACCEPTING: OnceLock<tokio::sync::watch::Sender<bool>> = OnceLock::new();

/// Takes over the sockets a predecessor (or systemd) handed this process. Call once at start,
/// before any thread: it edits the environment.
pub fn adopt() {
    INHERITED.get_or_init(|| {
        let mut fds = listenfd::ListenFd::from_env();
        let mut sockets = HashMap::new();
        for index in 0..fds.len() {
            match fds.take_tcp_listener(index) {
                Ok(Some(listener)) => match listener.local_addr() {
                    Ok(addr) => sockets.entry(addr).or_insert_with(Vec::new).push(listener),
                    Err(error) => tracing::warn!(index, %error, "inherited socket unusable"),
                },
                Ok(None) => {}
                Err(error) => {
                    tracing::warn!(index, %error, "inherited descriptor is not a TCP listener")
                }
            }
        }
        if !sockets.is_empty() {
            tracing::info!(
                sockets = sockets.len(),
                "took over the listening sockets handed to this process"
            );
        }
        ACCEPTING.get_or_init(|| tokio::sync::watch::Sender::new(sockets.is_empty()));
        Inherited {
            sockets: Mutex::new(sockets),
            ready: Mutex::new(std::env::var(READY_SOCKET).ok()),
        }
    });
}

/// An inherited listening socket bound to `addr`, if one was handed over.
pub fn take(addr: SocketAddr) -> Option<std::io::Result<tokio::net::TcpListener>> {
    let listener = {
        let mut sockets = INHERITED.get()?.sockets.lock().ok()?;
        let group = sockets.get_mut(&addr)?;
        let listener = group.pop()?;
        if group.is_empty() {
            sockets.remove(&addr);
        }
        listener
    };
    Some(
        listener
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(listener)),
    )
}

/// The other inherited sockets bound to `addr` (non-blocking), after [`take`].
pub fn take_more(addr: SocketAddr) -> Vec<std::net::TcpListener> {
    let Some(Ok(mut sockets)) = INHERITED.get().map(|i| i.sockets.lock()) else {
        return Vec::new();
    };
    let group = sockets.remove(&addr).unwrap_or_default();
    group
        .into_iter()
        .filter(|socket| socket.set_nonblocking(true).is_ok())
        .collect()
}

/// Closes inherited sockets no listener claimed (ports the new table no longer has): they
/// would queue connections nobody accepts.
pub fn release_unclaimed() {
    if let Some(Ok(mut sockets)) = INHERITED.get().map(|i| i.sockets.lock()) {
        sockets.clear();
    }
}

/// Resolves once this process may accept connections: at once, unless it was started by an
/// upgrade and has not served a table yet.
pub async fn until_accepting() {
    if let Some(accepting) = ACCEPTING.get() {
        let _ = accepting.subscribe().wait_for(|open| *open).await;
    }
}

/// Opens accepting, and tells the process that started this one that it serves; that one then
/// drains and exits. Call once the first table is served.
pub fn tell_predecessor() {
    if let Some(accepting) = ACCEPTING.get() {
        accepting.send_replace(true);
    }
    let Some(name) = INHERITED.get().and_then(|i| i.ready.lock().ok()?.take()) else {
        return;
    };
    let told = UnixAddr::from_abstract_name(&name)
        .and_then(|addr| UnixStream::connect_addr(&addr))
        .and_then(|mut stream| stream.write_all(b"ready\n"));
    if let Err(error) = told {
        tracing::warn!(%error, "cannot tell the old process that this one serves");
    }
}

/// A listening socket offered to a successor for as long as this guard lives (drop it before
/// the loop's own handle, so that the socket closes with the loop).
pub struct Offered(u64);

pub fn offer(listener: &Arc<tokio::net::TcpListener>) -> Option<Offered> {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let id = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    OFFERED.lock().ok()?.push((id, listener.clone()));
    Some(Offered(id))
}

impl Drop for Offered {
    fn drop(&mut self) {
        if let Ok(mut offered) = OFFERED.lock() {
            offered.retain(|(id, _)| *id != self.0);
        }
    }
}

/// Starts the binary at this process's path with its arguments and every offered socket, and
/// waits until it serves. True when it does (this process should now drain and exit).
pub async fn start_successor() -> bool {
    match spawn_successor().await {
        Ok(pid) => {
            tracing::info!(
                pid,
                "binary upgrade: the new process serves; draining this one"
            );
            true
        }
        Err(error) => {
            tracing::error!(%error, "binary upgrade failed; this process keeps serving");
            false
        }
    }
}

async fn spawn_successor() -> Result<u32, String> {
    let mappings = {
        let offered = OFFERED.lock().map_err(|_| "the socket list is poisoned")?;
        offered
            .iter()
            .zip(FIRST_FD..)
            .map(|((_, listener), child_fd)| {
                Ok(FdMapping {
                    parent_fd: listener.as_fd().try_clone_to_owned()?,
                    child_fd,
                })
            })
            .collect::<std::io::Result<Vec<_>>>()
            .map_err(|e| format!("cannot duplicate a socket: {e}"))?
    };
    if mappings.is_empty() {
        return Err("no listening socket to hand over".to_owned());
    }
    let exe = binary_path().map_err(|e| format!("cannot find the binary: {e}"))?;
    let name = format!(
        "switchyard-upgrade-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let ready = UnixAddr::from_abstract_name(&name)
        .and_then(|addr| UnixListener::bind_addr(&addr))
        .and_then(|listener| {
            listener.set_nonblocking(true)?;
            tokio::net::UnixListener::from_std(listener)
        })
        .map_err(|e| format!("cannot listen for the new process: {e}"))?;
    let sockets = mappings.len();
    let mut command = tokio::process::Command::new(&exe);
    command
        .args(std::env::args_os().skip(1))
        .env("LISTEN_FDS", sockets.to_string())
        .env_remove("LISTEN_PID")
        .env(READY_SOCKET, &name);
    command
        .fd_mappings(mappings)
        .map_err(|_| "descriptor numbers collide".to_owned())?;
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))?;
    let pid = child.id().unwrap_or_default();
    tracing::info!(pid, sockets, binary = %exe.display(), "binary upgrade: started the new process");
    let told = async {
        let (mut stream, _) = ready.accept().await?;
        let mut said = Vec::new();
        (&mut stream).take(16).read_to_end(&mut said).await?;
        Ok::<_, std::io::Error>(said.starts_with(b"ready"))
    };
    let outcome = tokio::select! {
        told = told => match told {
            Ok(true) => return Ok(pid),
            Ok(false) => "it closed the ready socket without saying so".to_owned(),
            Err(e) => format!("cannot hear from it: {e}"),
        },
        status = child.wait() => format!("it exited before serving ({status:?})"),
        () = tokio::time::sleep(READY_TIMEOUT) => format!("it did not serve within {READY_TIMEOUT:?}"),
    };
    let _ = child.kill().await;
    Err(format!("new process {pid}: {outcome}; stopped"))
}

/// This process's binary as it is on disk now (once an upgrade has replaced the file, the
/// running image's path reads "… (deleted)").
fn binary_path() -> std::io::Result<std::path::PathBuf> {
    let exe = std::env::current_exe()?;
    let text = exe.to_string_lossy();
    Ok(match text.strip_suffix(" (deleted)") {
        Some(path) => path.into(),
        None => exe,
    })
}
