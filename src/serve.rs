//! Serve mode, the composition root: a source of app snapshots → pipeline → published table →
//! listeners reconciled to it. Listeners for the fixed ports are handed in already bound, so
//! tests bind port 0; the returned [`Handle`] reports table generations and stops the balancer.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::marathon;
use crate::model::{Mode, ModelOptions};
use crate::pipeline::Pipeline;
use crate::proxy::listener::{self, Connections, Protocol};
use crate::proxy::{Frontend, ProxyConfig, ProxyContext};
use crate::routing::{BuildOptions, RoutingTable, SharedTable};

mod admin;
mod health;

/// Everything serve mode needs besides its listeners.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub model: ModelOptions,
    pub build: BuildOptions,
    /// Where the apps come from.
    pub source: Source,
    /// How often the source is checked (the file's size and time, or Marathon's `/v2/apps`).
    pub poll_interval: Duration,
    /// Where service-port listeners bind unless `HAPROXY_{n}_BIND_ADDR` says otherwise.
    pub bind_address: IpAddr,
    pub proxy: ProxyConfig,
}

/// Where serve mode reads `/v2/apps?embed=apps.tasks` documents from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A file, re-read when its size or modification time changes.
    File(PathBuf),
    /// Marathon, polled (the first URL that answers is used). The event stream replaces the
    /// polling with the Marathon-source work.
    Marathon(Vec<String>),
}

/// The fixed listeners, bound by the caller.
#[derive(Debug)]
pub struct BoundListeners {
    pub http: TcpListener,
    pub app_id: TcpListener,
    pub admin: TcpListener,
}

/// A running balancer.
#[derive(Debug)]
pub struct Handle {
    pub http_addr: SocketAddr,
    pub app_id_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub table: SharedTable,
    generation: watch::Receiver<u64>,
    refreshes: watch::Receiver<u64>,
    reload: Arc<Notify>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Handle {
    /// Re-reads the source now (what SIGHUP does).
    pub fn reload(&self) {
        self.reload.notify_one();
    }

    /// The generation of the table being served (0 before the first).
    pub fn generation(&self) -> u64 {
        *self.generation.borrow()
    }

    /// How many times the source was read (successfully or not).
    pub fn refreshes(&self) -> u64 {
        *self.refreshes.borrow()
    }

    /// Waits until the source was read at least `n` times: how a test knows a bad file was
    /// looked at, since no new table follows.
    pub async fn wait_refreshes(&self, n: u64) -> u64 {
        let mut rx = self.refreshes.clone();
        let seen = rx.wait_for(|r| *r >= n).await.map(|r| *r);
        seen.unwrap_or(0)
    }

    /// Waits until a table of at least generation `n` is served.
    pub async fn wait_generation(&self, n: u64) -> u64 {
        let mut rx = self.generation.clone();
        let seen = rx.wait_for(|g| *g >= n).await.map(|g| *g);
        seen.unwrap_or(0)
    }

    /// Stops accepting, lets requests in flight finish (up to the drain timeout), returns.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }
}

/// Starts serving; returns once the listeners are running (the first table may come later).
pub fn start(options: ServeOptions, listeners: BoundListeners) -> std::io::Result<Handle> {
    let table = SharedTable::new(RoutingTable::default());
    let ctx = Arc::new(ProxyContext {
        table: table.clone(),
        config: options.proxy.clone(),
    });
    let connections = Connections::new(options.proxy.max_connections);
    let http_addr = listeners.http.local_addr()?;
    let app_id_addr = listeners.app_id.local_addr()?;
    let admin_addr = listeners.admin.local_addr()?;
    let stop = CancellationToken::new();
    let reload = Arc::new(Notify::new());
    let (generation_tx, generation) = watch::channel(0);
    let (refreshes_tx, refreshes) = watch::channel(0);

    let fixed = [
        (
            listeners.http,
            Protocol::Http(Frontend::Vhost {
                port: http_addr.port(),
                tls: false,
            }),
        ),
        (
            listeners.app_id,
            Protocol::Http(Frontend::AppId {
                port: app_id_addr.port(),
            }),
        ),
    ];
    for (listener, protocol) in fixed {
        tokio::spawn(listener::run(
            listener,
            protocol,
            ctx.clone(),
            connections.clone(),
            stop.child_token(),
        ));
    }
    tokio::spawn(admin::run(
        listeners.admin,
        table.clone(),
        stop.child_token(),
    ));

    let control = Control {
        pipeline: Pipeline::new(options.model.clone(), options.build.clone()),
        marathon: crate::marathon::client(),
        last_body: None,
        options,
        ctx,
        connections,
        service_listeners: HashMap::new(),
        health_checkers: health::HealthCheckers::default(),
        last_seen: None,
        failing: false,
        generation: generation_tx,
        refreshes: refreshes_tx,
    };
    let task = tokio::spawn(control.run(reload.clone(), stop.clone()));
    Ok(Handle {
        http_addr,
        app_id_addr,
        admin_addr,
        table,
        generation,
        refreshes,
        reload,
        stop,
        task,
    })
}

/// The control loop's state.
struct Control {
    options: ServeOptions,
    pipeline: Pipeline,
    ctx: Arc<ProxyContext>,
    connections: Connections,
    /// Open service-port listeners and the token that stops each.
    service_listeners: HashMap<(IpAddr, u16, Mode), (CancellationToken, JoinHandle<()>)>,
    health_checkers: health::HealthCheckers,
    marathon: reqwest::Client,
    /// The file's (length, mtime) when last read.
    last_seen: Option<(u64, SystemTime)>,
    /// The last document read: an identical one builds nothing.
    last_body: Option<bytes::Bytes>,
    /// Whether the last read failed (log once per state change, not per poll).
    failing: bool,
    generation: watch::Sender<u64>,
    refreshes: watch::Sender<u64>,
}

impl Control {
    async fn run(mut self, reload: Arc<Notify>, stop: CancellationToken) {
        let mut tick = tokio::time::interval(self.options.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let forced = tokio::select! {
                _ = tick.tick() => false,
                () = reload.notified() => true,
                () = stop.cancelled() => break,
            };
            if self.refresh(forced).await {
                self.refreshes.send_modify(|n| *n += 1);
            }
        }
        self.drain().await;
    }

    /// Reads the source if it changed (or `forced`) and publishes what it holds; returns
    /// whether the source was read.
    async fn refresh(&mut self, forced: bool) -> bool {
        let Some(read) = self.read_source(forced).await else {
            return false;
        };
        let body = match read {
            Ok(body) => body,
            Err(message) => {
                self.set_failing(Some(&message));
                return true;
            }
        };
        if !forced && self.last_body.as_ref() == Some(&body) {
            self.set_failing(None);
            return true;
        }
        let snapshot = match marathon::parse_apps(&body) {
            Ok(snapshot) => snapshot,
            Err(err) => {
                self.set_failing(Some(&err.to_string()));
                return true;
            }
        };
        self.set_failing(None);
        self.last_body = Some(body);
        let table = self.pipeline.rebuild(&snapshot).await;
        let generation = table.generation();
        let desired = desired_listeners(&table, self.options.bind_address);
        self.health_checkers
            .reconcile(&table, &self.connections.shutdown);
        self.ctx.table.publish(table);
        self.reconcile(desired).await;
        tracing::info!(generation, "routing table published");
        let _ = self.generation.send(generation);
        true
    }

    /// The source's document; `None` when a file has not changed since it was last read.
    async fn read_source(&mut self, forced: bool) -> Option<Result<bytes::Bytes, String>> {
        match &self.options.source {
            Source::File(path) => {
                let stamp = tokio::fs::metadata(path)
                    .await
                    .ok()
                    .and_then(|m| Some((m.len(), m.modified().ok()?)));
                if !forced && stamp.is_some() && stamp == self.last_seen {
                    return None;
                }
                self.last_seen = stamp;
                Some(
                    tokio::fs::read(path)
                        .await
                        .map(bytes::Bytes::from)
                        .map_err(|e| format!("{}: {e}", path.display())),
                )
            }
            Source::Marathon(urls) => Some(
                marathon::fetch_first(&self.marathon, urls)
                    .await
                    .map_err(|e| e.to_string()),
            ),
        }
    }

    /// Logs a source failure once when it starts and once when it ends, not on every poll.
    fn set_failing(&mut self, error: Option<&str>) {
        match (error, self.failing) {
            (Some(error), false) => {
                tracing::error!(%error, "cannot read the apps; serving the last good table");
                self.failing = true;
            }
            (None, true) => {
                tracing::info!("apps readable again");
                self.failing = false;
            }
            _ => {}
        }
    }

    /// Opens listeners for new service ports, stops those whose port left the table (their
    /// open connections finish on their own).
    async fn reconcile(&mut self, desired: HashMap<(IpAddr, u16, Mode), String>) {
        let gone: Vec<_> = self
            .service_listeners
            .keys()
            .filter(|key| !desired.contains_key(key))
            .copied()
            .collect();
        let mut stopped = Vec::with_capacity(gone.len());
        for key in gone {
            if let Some((stop, task)) = self.service_listeners.remove(&key) {
                stop.cancel();
                stopped.push(task);
            }
        }
        // A port that changes mode is closed and opened again: wait until the old socket is
        // gone (the accept loop ends at once) so that the new bind does not find it taken.
        for task in stopped {
            let _ = task.await;
        }
        for (key @ (ip, port, mode), app) in desired {
            if self.service_listeners.contains_key(&key) {
                continue;
            }
            match TcpListener::bind((ip, port)).await {
                Ok(listener) => {
                    let protocol = match mode {
                        Mode::Http => Protocol::Http(Frontend::ServicePort { port, tls: false }),
                        Mode::Tcp => Protocol::Tcp { port },
                    };
                    let stop = self.connections.shutdown.child_token();
                    let task = tokio::spawn(listener::run(
                        listener,
                        protocol,
                        self.ctx.clone(),
                        self.connections.clone(),
                        stop.clone(),
                    ));
                    self.service_listeners.insert(key, (stop, task));
                }
                Err(err) => {
                    tracing::error!(app = %app, %ip, port, error = %err, "cannot bind the app's service port; its other routes still work");
                }
            }
        }
    }

    async fn drain(self) {
        self.connections.shutdown.cancel();
        self.connections.tracker.close();
        let drained = tokio::time::timeout(
            self.options.proxy.drain_timeout,
            self.connections.tracker.wait(),
        )
        .await;
        if drained.is_err() {
            tracing::warn!("drain timeout: closing the connections still open");
        }
    }
}

/// The service-port listeners a table asks for, each with the app id that wants it.
fn desired_listeners(
    table: &RoutingTable,
    default_ip: IpAddr,
) -> HashMap<(IpAddr, u16, Mode), String> {
    table
        .service_ports()
        .map(|f| {
            let ip = f.bind_addr.unwrap_or(default_ip);
            ((ip, f.port, f.mode), f.backend.app_id().to_string())
        })
        .collect()
}
