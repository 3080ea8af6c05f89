//! An in-process Marathon for integration tests and `switchyard demo`: several nodes sharing
//! one app state, speaking Marathon's wire formats over real HTTP on loopback, with the faults
//! a client has to survive (failover, outages, elections, bad documents, expired tokens,
//! stalled streams).
//!
//! ```text
//! mod.rs     the public API: start, the setters, stats
//! shared.rs  Shared, what every connection sees; the counters and the request log
//! state.rs   apps and tasks and their changes (no I/O); state/render.rs, their /v2/apps JSON
//!            and the events each change emits
//! node.rs    listeners that go down and come back on the same port; the signals that close
//!            open connections
//! h1.rs      a small hand-written HTTP/1.1 server side (why: see there)
//! http.rs    routing a request: auth, election, leadership, Marathon's endpoints
//! events.rs  the event bus and the /v2/events stream, framed as Jetty frames it
//! auth.rs    Basic auth, and DC/OS service-account login and tokens
//! writes.rs  the write API and /v2/deployments (state/api.rs: what writes do to the state)
//! scheduler.rs  tasks launched for apps changed through the API, health checks, deployments
//! ```
//!
//! Every setter is synchronous and may be called from anywhere. A change is applied to the
//! state before its events are published, so a client that saw an event and refetches sees
//! the change.

mod auth;
mod events;
mod h1;
mod http;
mod node;
mod scheduler;
mod shared;
mod state;
#[cfg(test)]
mod tests;
mod writes;

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::runtime::Handle;
use tokio::sync::{mpsc, watch};

pub use scheduler::Launcher;
pub use state::TaskSpec;

use auth::{Authority, LOGIN_PATH};
use events::Bus;
use node::{lock, Listener, Role};
use shared::{Counters, HeldReads, Shared, REMEMBERED_REQUESTS};
use state::{Apps, Emit};

/// Marathon's (Jetty's) SSE heartbeat period.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

#[derive(Clone, Debug)]
pub struct SimulatorOptions {
    /// Marathon instances sharing one state; 0 is treated as 1. Node 0 starts as leader.
    pub nodes: usize,
    pub auth: SimAuth,
    /// SSE heartbeat period (Marathon: 10 s).
    pub heartbeat: Duration,
}

impl Default for SimulatorOptions {
    fn default() -> SimulatorOptions {
        SimulatorOptions {
            nodes: 1,
            auth: SimAuth::None,
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }
}

#[derive(Clone, Debug, Default)]
pub enum SimAuth {
    #[default]
    None,
    /// Marathon's `--http_credentials user:password` (realm `Mesosphere`).
    Basic { user: String, password: String },
    /// DC/OS IAM: clients POST `{"uid","token"}` to [`Simulator::login_endpoint`] with an RS256
    /// service-login JWT signed by the account's private key; it is verified with this public
    /// key (PEM "PUBLIC KEY"), must carry `uid` (equal to `uid`) and `exp` (in the future, at
    /// most 10 min ahead). The answer is 200 `{"token": ...}` plus a `dcos-acs-auth-cookie`;
    /// the token (a JWT with `uid` and `exp` = now + `token_lifetime`) is then sent as
    /// `Authorization: token=<token>`.
    ServiceAccount {
        uid: String,
        public_key_pem: String,
        token_lifetime: Duration,
    },
}

/// How `GET /v2/apps` and `GET /v2/apps/{id}` misbehave.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AppsFault {
    #[default]
    None,
    /// This status with `{"message": ...}`.
    Status(u16),
    /// This status with an HTML page, as a proxy in front of Marathon answers during an
    /// election.
    Html(u16),
    /// 200 with `{"apps": [ {` (not JSON).
    Garbage,
    /// 200 announcing the full length; half the body arrives, then the connection closes.
    Truncated,
    /// 200 with `{"apps": {"x": 1}}`.
    WrongTyped,
    /// 200 with `{"apps": []}` (as a Marathon that lost its state answers); a single app is
    /// then a 404.
    Empty,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SimStats {
    /// `GET /v2/apps` answered 200 (faulty 200s included).
    pub apps_requests: u64,
    /// `GET /v2/apps/{id}` answered 200 (faulty 200s included) or 404.
    pub app_requests: u64,
    /// `/v2/events` answered 200.
    pub event_connections: u64,
    /// Successful logins.
    pub logins: u64,
    /// 401s sent (logins included).
    pub unauthorized: u64,
    /// 302s sent.
    pub redirects: u64,
    /// 405s sent (wrong `Accept` on `/v2/events`, or a method other than GET).
    pub wrong_accept: u64,
}

/// A running simulator. Clones share it.
#[derive(Clone)]
pub struct Simulator {
    shared: Arc<Shared>,
}

impl Simulator {
    /// Binds every node, and the login endpoint, on `127.0.0.1:0`.
    pub async fn start(options: SimulatorOptions) -> io::Result<Simulator> {
        let nodes = options.nodes.max(1);
        let auth = Authority::new(&options.auth)?;
        let mut listeners = Vec::with_capacity(nodes + 1);
        for node in 0..nodes {
            listeners.push(Listener::bind(Role::Node(node)).await?);
        }
        listeners.push(Listener::bind(Role::Login).await?);
        let (done_tx, done_rx) = mpsc::channel(1);
        let shared = Arc::new(Shared {
            heartbeat: options.heartbeat,
            listeners,
            apps: Mutex::new(Apps::default()),
            bus: Bus::new(),
            auth,
            leader: AtomicUsize::new(0),
            election: AtomicBool::new(false),
            fault: Mutex::new(AppsFault::None),
            counters: Counters::default(),
            seen: Mutex::new(VecDeque::with_capacity(REMEMBERED_REQUESTS)),
            leadership: watch::channel(0).0,
            stalled: watch::channel(false).0,
            reads_held: watch::channel(HeldReads::default()).0,
            shutdown: watch::channel(false).0,
            runtime: Handle::current(),
            scheduler: std::sync::OnceLock::new(),
            done: Mutex::new(Some(done_rx)),
        });
        for index in 0..shared.listeners.len() {
            tokio::spawn(node::accept_loop(shared.clone(), index, done_tx.clone()));
        }
        Ok(Simulator { shared })
    }

    /// `http://127.0.0.1:PORT` per node, in node order.
    pub fn urls(&self) -> Vec<String> {
        self.shared
            .nodes()
            .map(|l| format!("http://127.0.0.1:{}", l.port))
            .collect()
    }

    /// The DC/OS login endpoint, on a listener of its own that never goes down.
    pub fn login_endpoint(&self) -> String {
        let port = self.shared.listeners.last().map_or(0, |l| l.port);
        format!("http://127.0.0.1:{port}{LOGIN_PATH}")
    }

    pub fn leader(&self) -> usize {
        self.shared.leader.load(Ordering::SeqCst)
    }

    /// Moves leadership to `node`: every open event stream closes, and from now on the other
    /// nodes redirect `/v2/events` to it. Naming the current leader changes nothing.
    pub fn set_leader(&self, node: usize) {
        if node >= self.shared.node_count() {
            tracing::warn!(node, "set_leader: no such simulator node");
            return;
        }
        if self.shared.leader.swap(node, Ordering::SeqCst) != node {
            self.shared.leadership.send_modify(|epoch| *epoch += 1);
        }
    }

    /// Down: the node's port refuses connections and its open connections close.
    /// Up: the node listens on the same port again.
    pub fn set_down(&self, node: usize, down: bool) {
        let Some(listener) = self.shared.nodes().nth(node) else {
            tracing::warn!(node, "set_down: no such simulator node");
            return;
        };
        if down {
            listener.close();
        } else if let Err(err) = listener.reopen(&self.shared.runtime) {
            tracing::error!(node, port = listener.port, error = %err, "simulator node could not listen again");
        }
    }

    /// During an election every node answers every `/v2/*` request 503. Starting one ends
    /// the old leader's leadership, so open event streams close.
    pub fn set_election(&self, on: bool) {
        if !self.shared.election.swap(on, Ordering::SeqCst) && on {
            self.shared.leadership.send_modify(|epoch| *epoch += 1);
        }
    }

    pub fn set_apps_fault(&self, fault: AppsFault) {
        *lock(&self.shared.fault) = fault;
    }

    /// While `held`, reads of apps (`/v2/apps`, `/v2/apps/{id}`) are rendered when they come
    /// and answered when released: a read that lands after later changes.
    pub fn hold_reads(&self, held: bool) {
        self.shared
            .reads_held
            .send_modify(|h| (h.holding, h.node) = (held, None));
    }

    /// As [`Simulator::hold_reads`], on node `node` only: its clients keep an old view.
    pub fn hold_reads_on(&self, node: usize, held: bool) {
        let on = held.then_some(node);
        self.shared
            .reads_held
            .send_modify(|h| (h.holding, h.node) = (held, on));
    }

    /// Waits until `n` reads are held.
    pub async fn wait_held_reads(&self, n: usize) {
        let mut held = self.shared.reads_held.subscribe();
        let _ = held.wait_for(|h| h.waiting >= n).await;
    }

    /// Every token issued so far answers 401 from now on; new logins work.
    pub fn expire_tokens(&self) {
        self.shared.auth.expire_all();
    }

    /// While `stalled`, open streams get neither events nor heartbeats, though their
    /// connections stay open. Events published meanwhile wait in each stream's buffer (a
    /// stream more than 1024 behind is closed, as always).
    pub fn stop_stream_heartbeats(&self, stalled: bool) {
        self.shared
            .stalled
            .send_if_modified(|s| std::mem::replace(s, stalled) != stalled);
    }

    /// Creates or replaces an app (a JSON object with at least `"id"`); its tasks are kept.
    /// Emits `api_post_event` and `deployment_success`. A definition without an id is
    /// ignored with a warning.
    pub fn put_app(&self, app: serde_json::Value) {
        self.change(|apps| match apps.put(app) {
            Ok(events) => Some(((), events)),
            Err(why) => {
                tracing::warn!(why, "put_app ignored");
                None
            }
        });
    }

    /// Removes an app and its tasks; emits `app_terminated_event`.
    pub fn remove_app(&self, id: &str) -> bool {
        self.change(|apps| apps.remove(id).map(|events| ((), events)))
            .is_some()
    }

    /// Starts a task of an existing app and returns its id; emits `status_update_event`
    /// and `instance_changed_event`.
    pub fn start_task(&self, app_id: &str, task: TaskSpec) -> Option<String> {
        self.change(|apps| apps.start_task(app_id, task))
    }

    /// Moves a task to another Mesos `TASK_*` state; emits what `start_task` emits.
    pub fn set_task_state(&self, task_id: &str, state: &str) -> bool {
        self.change(|apps| apps.set_task_state(task_id, state).map(|e| ((), e)))
            .is_some()
    }

    /// Kills a task (it leaves the app); emits `status_update_event` with `TASK_KILLED` and
    /// `instance_changed_event`.
    pub fn kill_task(&self, task_id: &str) -> bool {
        self.change(|apps| apps.kill_task(task_id).map(|events| ((), events)))
            .is_some()
    }

    /// Sets every health-check result of the task to `alive` (shown in `healthCheckResults`
    /// when the app has health checks); emits `health_status_changed_event` and
    /// `instance_health_changed_event`.
    pub fn set_task_health(&self, task_id: &str, alive: bool) -> bool {
        self.change(|apps| apps.set_health(task_id, alive).map(|e| ((), e)))
            .is_some()
    }

    /// The `/v2/apps?embed=apps.tasks` document as served.
    pub fn apps_json(&self) -> serde_json::Value {
        lock(&self.shared.apps).to_json(true)
    }

    /// Publishes an arbitrary event; `eventType` and `timestamp` are added to `data`.
    pub fn emit(&self, event_type: &str, data: serde_json::Value) {
        // Under the state lock, so it is ordered with the changes' events.
        let _apps = lock(&self.shared.apps);
        self.shared.bus.publish(event_type, data);
    }

    /// Writes `frame` on every event stream that accepts `event_type`, byte for byte as given
    /// (garbage, a broken frame); with `drip`, one byte at a time with that pause between.
    pub fn emit_raw(&self, event_type: &str, frame: &[u8], drip: Option<Duration>) {
        let _apps = lock(&self.shared.apps);
        self.shared
            .bus
            .publish_raw(event_type, bytes::Bytes::copy_from_slice(frame), drip);
    }

    pub fn stats(&self) -> SimStats {
        let c = &self.shared.counters;
        SimStats {
            apps_requests: c.apps_requests.load(Ordering::SeqCst),
            app_requests: c.app_requests.load(Ordering::SeqCst),
            event_connections: c.event_connections.load(Ordering::SeqCst),
            logins: c.logins.load(Ordering::SeqCst),
            unauthorized: c.unauthorized.load(Ordering::SeqCst),
            redirects: c.redirects.load(Ordering::SeqCst),
            wrong_accept: c.wrong_accept.load(Ordering::SeqCst),
        }
    }

    /// Headers of the most recent request (of the last 256) whose path starts with
    /// `path_prefix`.
    pub fn last_headers(&self, path_prefix: &str) -> Option<::http::HeaderMap> {
        self.shared
            .last_seen(path_prefix, |seen| seen.headers.clone())
    }

    /// Query string (without `?`) of that request; `None` also when it had none.
    pub fn last_query(&self, path_prefix: &str) -> Option<String> {
        self.shared
            .last_seen(path_prefix, |seen| seen.query.clone())
            .flatten()
    }

    /// Stops accepting, closes every connection and waits for their tasks to end.
    pub async fn shutdown(self) {
        self.shared.shutdown.send_replace(true);
        for listener in &self.shared.listeners {
            listener.close();
        }
        let done = lock(&self.shared.done).take();
        if let Some(mut done) = done {
            // Every task holds a sender; `None` means all have ended.
            let ended = tokio::time::timeout(Duration::from_secs(10), done.recv()).await;
            if ended.is_err() {
                tracing::warn!("simulator tasks still running 10 s after shutdown");
            }
        }
    }

    /// Applies a change and publishes its events while the state is still locked.
    fn change<T>(&self, f: impl FnOnce(&mut Apps) -> Option<(T, Vec<Emit>)>) -> Option<T> {
        let mut apps = lock(&self.shared.apps);
        let (value, events) = f(&mut apps)?;
        for emit in events {
            self.shared.bus.publish(emit.kind, emit.data);
        }
        Some(value)
    }
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field("urls", &self.urls())
            .field("leader", &self.leader())
            .finish_non_exhaustive()
    }
}
