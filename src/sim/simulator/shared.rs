//! What every connection of the simulator sees: the state, the listeners, the event bus,
//! the faults set, and the counters and request log behind `stats` and `last_headers`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

use super::auth::Authority;
use super::events::Bus;
use super::h1::Request;
use super::node::{lock, Listener, Role};
use super::state::Apps;
use super::AppsFault;

/// How many recent requests `last_headers` / `last_query` can look back over.
pub(super) const REMEMBERED_REQUESTS: usize = 256;

/// Everything a connection sees.
pub(super) struct Shared {
    pub(super) heartbeat: Duration,
    /// Nodes 0..n, then the login listener.
    pub(super) listeners: Vec<Listener>,
    pub(super) apps: Mutex<Apps>,
    pub(super) bus: Bus,
    pub(super) auth: Authority,
    pub(super) leader: AtomicUsize,
    pub(super) election: AtomicBool,
    pub(super) fault: Mutex<AppsFault>,
    pub(super) counters: Counters,
    pub(super) seen: Mutex<VecDeque<Seen>>,
    /// Bumped whenever leadership is lost; open event streams close.
    pub(super) leadership: watch::Sender<u64>,
    pub(super) stalled: watch::Sender<bool>,
    /// While held, reads of apps are rendered when they come but answered only once released.
    pub(super) reads_held: watch::Sender<HeldReads>,
    pub(super) shutdown: watch::Sender<bool>,
    /// For rebinding a listener from a setter called outside the runtime.
    pub(super) runtime: Handle,
    /// Launches and checks the tasks of apps changed through the API, once `run_tasks` is called.
    pub(super) scheduler: std::sync::OnceLock<std::sync::Arc<super::scheduler::Scheduler>>,
    /// Closes when every accept loop and connection task has ended.
    pub(super) done: Mutex<Option<mpsc::Receiver<()>>>,
}

/// Whether reads are held, and how many wait.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct HeldReads {
    pub(super) holding: bool,
    /// Held on this node only; `None`: on every node.
    pub(super) node: Option<usize>,
    pub(super) waiting: usize,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) apps_requests: AtomicU64,
    pub(super) app_requests: AtomicU64,
    pub(super) event_connections: AtomicU64,
    pub(super) logins: AtomicU64,
    pub(super) unauthorized: AtomicU64,
    pub(super) redirects: AtomicU64,
    pub(super) wrong_accept: AtomicU64,
    pub(super) api_writes: AtomicU64,
}

pub(super) struct Seen {
    pub(super) path: String,
    pub(super) query: Option<String>,
    pub(super) headers: ::http::HeaderMap,
}

impl Shared {
    pub(super) fn nodes(&self) -> impl Iterator<Item = &Listener> {
        self.listeners
            .iter()
            .filter(|l| matches!(l.role, Role::Node(_)))
    }

    pub(super) fn node_count(&self) -> usize {
        self.nodes().count()
    }

    /// `127.0.0.1:PORT` of the leader, as `/v2/leader` and `/v2/info` report it.
    pub(super) fn leader_host_port(&self) -> String {
        let leader = self.leader.load(Ordering::SeqCst);
        let port = self.nodes().nth(leader).map_or(0, |l| l.port);
        format!("127.0.0.1:{port}")
    }

    pub(super) fn leader_url(&self) -> String {
        format!("http://{}", self.leader_host_port())
    }

    pub(super) fn remember(&self, request: &Request) {
        let mut seen = lock(&self.seen);
        if seen.len() == REMEMBERED_REQUESTS {
            seen.pop_front();
        }
        seen.push_back(Seen {
            path: request.path.clone(),
            query: request.query.clone(),
            headers: request.headers.clone(),
        });
    }

    pub(super) fn last_seen<T>(&self, path_prefix: &str, f: impl FnOnce(&Seen) -> T) -> Option<T> {
        lock(&self.seen)
            .iter()
            .rev()
            .find(|seen| seen.path.starts_with(path_prefix))
            .map(f)
    }

    /// Counts a complete answer in the stats.
    pub(super) fn count(&self, request: &Request, status: u16) {
        let c = &self.counters;
        let counter = match status {
            200 if request.path == "/v2/apps" => &c.apps_requests,
            200 | 404 if request.path.starts_with("/v2/apps/") => &c.app_requests,
            401 => &c.unauthorized,
            302 => &c.redirects,
            405 => &c.wrong_accept,
            _ => return,
        };
        counter.fetch_add(1, Ordering::SeqCst);
    }
}
