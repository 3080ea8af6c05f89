//! Serve mode, the composition root: a source of app snapshots → pipeline → published table →
//! listeners reconciled to it. Listeners for the fixed ports are handed in already bound, so
//! tests bind port 0; the returned [`Handle`] reports table generations and stops the balancer.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::admin::ReadStatus;
use crate::marathon::StreamStatus;
use crate::metrics::Metrics;
use crate::model::ModelOptions;
use crate::proxy::accept::listener::{Connections, Protocol};
use crate::proxy::{Frontend, ProxyConfig, ProxyContext};
use crate::routing::{BuildOptions, RoutingTable, SharedTable};
use crate::serve::pipeline::Pipeline;
use crate::tls::CertStore;
use crate::upstream::tls::BackendTls;

mod announce;
mod certs;
mod control;
mod empty_list;
mod health;
mod listeners;
pub mod pipeline;
mod publish;
mod reads;
pub mod resolve;
mod source;

use control::Control;
pub use source::{MarathonSource, Source};

/// Everything serve mode needs besides its listeners.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub model: ModelOptions,
    pub build: BuildOptions,
    /// Where the apps come from.
    pub source: Source,
    /// How often a file is checked for changes, or Marathon polled when it is not followed
    /// through its event stream.
    pub poll_interval: Duration,
    /// Where service-port listeners bind unless `HAPROXY_{n}_BIND_ADDR` says otherwise.
    pub bind_address: IpAddr,
    pub proxy: ProxyConfig,
    /// `--ssl-certs`: PEM files (chain and key) and directories of them; the first is the
    /// default certificate. Empty, with no `ssl_cert_vars` either: a self-signed default.
    pub ssl_certs: Vec<std::path::PathBuf>,
    /// Certificates given as PEM text in Marathon-LB's `HAPROXY_SSL_CERT` variables, served
    /// after `ssl_certs`.
    pub ssl_cert_vars: Vec<crate::tls::EnvCert>,
    /// How often certificate files are checked for changes (SIGHUP also reloads them).
    pub cert_poll_interval: Duration,
}

/// The fixed listeners, bound by the caller.
#[derive(Debug)]
pub struct BoundListeners {
    /// HTTP routed by Host (none with Marathon-LB's `--dont-bind-http-https`).
    pub http: Option<TcpListener>,
    /// HTTPS, routed like `http` (none with Marathon-LB's `--dont-bind-http-https`).
    pub https: Option<TcpListener>,
    pub app_id: TcpListener,
    pub admin: TcpListener,
}

/// A running balancer.
#[derive(Debug)]
pub struct Handle {
    pub http_addr: Option<SocketAddr>,
    pub https_addr: Option<SocketAddr>,
    pub app_id_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub table: SharedTable,
    generation: watch::Receiver<u64>,
    refreshes: watch::Receiver<u64>,
    stream: watch::Receiver<StreamStatus>,
    read_status: watch::Receiver<ReadStatus>,
    reload: Arc<Notify>,
    cert_reload: Arc<Notify>,
    cert_reloads: watch::Receiver<u64>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl Handle {
    /// Re-reads the source and the certificate files now (what SIGHUP does).
    pub fn reload(&self) {
        self.reload.notify_one();
        self.cert_reload.notify_one();
    }

    /// Waits until the certificate files were checked at least `n` times.
    pub async fn wait_cert_reloads(&self, n: u64) -> u64 {
        let mut rx = self.cert_reloads.clone();
        let seen = rx.wait_for(|r| *r >= n).await.map(|r| *r);
        seen.unwrap_or(0)
    }

    /// How many times the certificate files were checked.
    pub fn cert_reloads(&self) -> u64 {
        *self.cert_reloads.borrow()
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

    /// The Marathon event stream's state (default when there is none).
    pub fn stream_status(&self) -> StreamStatus {
        self.stream.borrow().clone()
    }

    /// How the last reads of the source went.
    pub fn read_status(&self) -> ReadStatus {
        self.read_status.borrow().clone()
    }

    /// Waits until the event stream's state satisfies `ready`.
    pub async fn wait_stream(&self, ready: impl FnMut(&StreamStatus) -> bool) -> StreamStatus {
        let mut rx = self.stream.clone();
        let seen = rx.wait_for(ready).await.map(|s| s.clone());
        seen.unwrap_or_default()
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
/// Fails on an address that cannot be read or a Marathon configuration that cannot work.
pub fn start(mut options: ServeOptions, listeners: BoundListeners) -> std::io::Result<Handle> {
    let metrics = Arc::new(Metrics::new());
    options.build.metrics = Some(metrics.clone());
    let reader = source::Reader::new(options.source.clone())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    // Every line the control loop logs names the file it serves: a bad file's errors too.
    let span = match &options.source {
        Source::File(path) => tracing::info_span!("apps_file", path = %path.display()),
        Source::Marathon(_) => tracing::Span::none(),
    };
    let (cert_store, first_look) =
        CertStore::new(options.ssl_certs.clone(), &options.ssl_cert_vars)
            .map_err(|e| std::io::Error::other(format!("cannot make a TLS certificate: {e}")))?;
    certs::report_start(&cert_store, &first_look, &metrics);
    let certs = cert_store.shared.clone();
    let table = SharedTable::new(RoutingTable::default());
    let connections = Connections::new(options.proxy.max_connections);
    let backend_ca = options.proxy.backend_ca.as_deref();
    let backend_tls = BackendTls::new(backend_ca)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    backend_tls.report(backend_ca);
    let ctx = Arc::new(ProxyContext {
        backend_tls,
        table: table.clone(),
        config: options.proxy.clone(),
        unrouted: metrics.backend("unrouted"),
        metrics: metrics.clone(),
        tunnels: connections.tracker.clone(),
        auth_failures: Default::default(),
    });
    let http_addr = match &listeners.http {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let https_addr = match &listeners.https {
        Some(listener) => Some(listener.local_addr()?),
        None => None,
    };
    let app_id_addr = listeners.app_id.local_addr()?;
    let admin_addr = listeners.admin.local_addr()?;
    let stop = CancellationToken::new();
    let reload = Arc::new(Notify::new());
    let (generation_tx, generation) = watch::channel(0);
    let (refreshes_tx, refreshes) = watch::channel(0);
    let (stream_tx, stream) = watch::channel(StreamStatus::default());
    let (read_status_tx, read_status) = watch::channel(ReadStatus::default());

    let mut fixed = vec![(
        listeners.app_id,
        Protocol::Http(Frontend::AppId {
            port: app_id_addr.port(),
        }),
        None,
    )];
    if let (Some(listener), Some(addr)) = (listeners.http, http_addr) {
        let frontend = Frontend::Vhost {
            port: addr.port(),
            tls: false,
        };
        fixed.push((listener, Protocol::Http(frontend), None));
    }
    if let (Some(listener), Some(addr)) = (listeners.https, https_addr) {
        let frontend = Frontend::Vhost {
            port: addr.port(),
            tls: true,
        };
        let acceptor = crate::tls::vhost_acceptor(&certs);
        fixed.push((listener, Protocol::Http(frontend), Some(acceptor)));
    }
    for (listener, protocol, tls) in fixed {
        let (ctx, connections, stop) = (ctx.clone(), connections.clone(), stop.child_token());
        crate::proxy::accept::spread::run_on_each(listener, protocol, tls, ctx, connections, stop);
    }
    let cert_reload = Arc::new(Notify::new());
    let rebuild = Arc::new(Notify::new());
    let recorded = Arc::new(crate::admin::Recorded::new());
    tokio::spawn(crate::admin::record(
        recorded.clone(),
        table.clone(),
        stop.child_token(),
    ));
    let admin_state = crate::admin::AdminState {
        recorded: recorded.clone(),
        table: table.clone(),
        reload: reload.clone(),
        cert_reload: cert_reload.clone(),
        rebuild: rebuild.clone(),
        stream: stream.clone(),
        read_status: read_status.clone(),
        metrics: metrics.clone(),
    };
    tokio::spawn(crate::admin::run(
        listeners.admin,
        admin_state,
        stop.child_token(),
    ));

    let (app_cert_files, app_cert_files_rx) = watch::channel(BTreeSet::new());
    let (cert_reloads_tx, cert_reloads) = watch::channel(0);
    tokio::spawn(certs::watch(
        cert_store,
        options.cert_poll_interval,
        cert_reload.clone(),
        app_cert_files_rx,
        cert_reloads_tx,
        metrics.clone(),
        stop.clone(),
    ));
    let empty_list = empty_list::EmptyListGuard::new(reader.empty_list_confirm());
    let control = Control {
        recorded,
        metrics: metrics.clone(),
        certs,
        app_cert_files,
        pipeline: Some(Pipeline::new(options.model.clone(), options.build.clone())),
        reader,
        empty_list,
        last_body: None,
        snapshot: None,
        patched: Default::default(),
        patch_batches: 0,
        options,
        ctx,
        connections,
        service_listeners: listeners::ServiceListeners::default(),
        health_checkers: health::HealthCheckers::default(),
        failing: None,
        read_status: read_status_tx,
        generation: generation_tx,
        refreshes: refreshes_tx,
    };
    let run = control.run(reload.clone(), rebuild, stream_tx, stop.clone());
    let task = tokio::spawn(tracing::Instrument::instrument(run, span));
    Ok(Handle {
        http_addr,
        https_addr,
        app_id_addr,
        admin_addr,
        table,
        generation,
        refreshes,
        stream,
        read_status,
        reload,
        cert_reload,
        cert_reloads,
        stop,
        task,
    })
}
