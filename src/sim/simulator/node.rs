//! Listeners that can go down and come back on the same port, their accept loops, and the
//! signals that close open connections.
//!
//! A node going down must refuse connections as soon as `set_down` returns, so the socket
//! lives in a mutex the setter can empty synchronously; the accept loop only locks it inside
//! `poll_accept` (never across an await) and is woken through the `up` watch.

use std::future::poll_fn;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use super::{http, Shared};

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    /// Marathon instance `n`.
    Node(usize),
    /// The DC/OS login endpoint (never goes down).
    Login,
}

#[derive(Debug)]
pub(super) struct Listener {
    pub role: Role,
    pub port: u16,
    socket: Mutex<Option<TcpListener>>,
    /// `true` while the listener accepts; every change closes the connections it accepted.
    up: watch::Sender<bool>,
}

impl Listener {
    pub async fn bind(role: Role) -> io::Result<Listener> {
        let socket = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let port = socket.local_addr()?.port();
        Ok(Listener {
            role,
            port,
            socket: Mutex::new(Some(socket)),
            up: watch::channel(true).0,
        })
    }

    /// Closes the socket now (new connections are refused) and tells open connections to close.
    pub fn close(&self) {
        drop(lock(&self.socket).take());
        self.up.send_if_modified(|up| std::mem::replace(up, false));
    }

    /// Binds the same port again. std's bind sets SO_REUSEADDR, so the old connections'
    /// TIME_WAIT does not get in the way.
    pub fn reopen(&self, runtime: &Handle) -> io::Result<()> {
        let mut slot = lock(&self.socket);
        if slot.is_none() {
            let std_socket = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, self.port))?;
            std_socket.set_nonblocking(true)?;
            // Registering with the reactor needs the runtime; setters may run outside it.
            let _entered = runtime.enter();
            *slot = Some(TcpListener::from_std(std_socket)?);
        }
        drop(slot);
        self.up.send_if_modified(|up| !std::mem::replace(up, true));
        Ok(())
    }

    fn poll_accept(&self, cx: &mut Context<'_>) -> Poll<io::Result<(TcpStream, SocketAddr)>> {
        match lock(&self.socket).as_ref() {
            Some(socket) => socket.poll_accept(cx),
            // Woken by the `up` watch when the socket comes back.
            None => Poll::Pending,
        }
    }
}

/// Accepts on listener `index` until shutdown; each connection gets its own task. Every task
/// holds a clone of `done`, so shutdown can wait for all of them.
pub(super) async fn accept_loop(shared: Arc<Shared>, index: usize, done: mpsc::Sender<()>) {
    let Some(listener) = shared.listeners.get(index) else {
        return;
    };
    let mut up = listener.up.subscribe();
    let mut shutdown = shared.shutdown.subscribe();
    let mut errors = 0u32;
    loop {
        if *shutdown.borrow_and_update() {
            return;
        }
        let accepted = tokio::select! {
            accepted = poll_fn(|cx| listener.poll_accept(cx)) => accepted,
            changed = up.changed() => match changed {
                Ok(()) => continue,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((stream, peer)) => {
                errors = 0;
                let shared = shared.clone();
                let done = done.clone();
                tokio::spawn(async move {
                    http::serve_connection(shared, index, stream, peer).await;
                    drop(done);
                });
            }
            Err(err) => {
                // EMFILE and friends: back off instead of spinning.
                errors = (errors + 1).min(10);
                tracing::warn!(error = %err, "simulator accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(5 * u64::from(errors))).await;
            }
        }
    }
}

/// Why an open connection must close: its listener went down, the simulator is shutting
/// down, or (event streams only) leadership moved.
#[derive(Debug)]
pub(super) struct Stops {
    listener: watch::Receiver<bool>,
    shutdown: watch::Receiver<bool>,
    leadership: Option<watch::Receiver<u64>>,
}

impl Stops {
    pub fn new(shared: &Shared, index: usize) -> Stops {
        let listener = match shared.listeners.get(index) {
            Some(listener) => listener.up.subscribe(),
            // Unreachable in practice; a closed channel makes `fired` resolve at once.
            None => watch::channel(false).1,
        };
        Stops {
            listener,
            shutdown: shared.shutdown.subscribe(),
            leadership: None,
        }
    }

    /// Also stop when leadership moves after `receiver` was subscribed.
    pub fn watch_leadership(&mut self, receiver: watch::Receiver<u64>) {
        self.leadership = Some(receiver);
    }

    /// Resolves once the connection must close. Cancel-safe.
    pub async fn fired(&mut self) {
        let Stops {
            listener,
            shutdown,
            leadership,
        } = self;
        // A change may have happened before these receivers existed.
        if !*listener.borrow() || *shutdown.borrow() {
            return;
        }
        let leadership_moved = async {
            match leadership {
                Some(receiver) => {
                    let _ = receiver.changed().await;
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = listener.changed() => {}
            _ = shutdown.changed() => {}
            () = leadership_moved => {}
        }
    }
}

/// Locks, ignoring poisoning: every critical section leaves its data consistent.
pub(super) fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
