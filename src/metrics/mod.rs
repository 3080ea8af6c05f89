//! Prometheus metrics. Everything the hot path touches is a handle resolved before the request:
//! per backend when a table is built (and kept across tables by backend name, so a rebuild
//! resolves only new backends), per listener when it starts. No label lookup per request.
//!
//! Control-plane values (table size, the Marathon stream, syncs) are set when they change or
//! read from their sources when `/metrics` is scraped. Beside them, not exported to
//! Prometheus: the hosts that recently found no route (`unrouted.rs`), for `/stats`.
//!
//! Names follow Prometheus' conventions (`promtool check metrics` passes a scrape, in the
//! tests): base units in the name, counters end in `_total`, and the `listener` label has one
//! spelling wherever it appears.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

mod backend;
mod total;
mod unrouted;
mod upstream;

use backend::BackendFamilies;
pub use backend::{detached, BackendMetrics, ListenerKind, GRPC_CODES, TCP_LISTENER};
pub use total::TotalCounter;
pub use unrouted::{UnroutedHost, UnroutedHosts};
pub use upstream::Count;

/// Handles by backend name, kept across tables.
/// Read-mostly: a rebuild finds almost every name there, from several threads at once.
type ByBackend = RwLock<HashMap<Box<str>, Arc<BackendMetrics>, ahash::RandomState>>;

/// The registry and every metric family.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    families: Arc<BackendFamilies>,
    pub connections: IntGaugeVec,
    pub tcp_connections: IntCounterVec,
    pub connections_closed: IntCounterVec,
    pub worker_connections: IntCounterVec,
    pub tls_handshakes: IntCounter,
    pub tls_handshakes_resumed: IntCounter,
    pub tls_handshake_failures: IntCounter,
    pub certificate_errors: IntCounter,
    pub certificate_expiry: IntGaugeVec,
    pub table_generation: IntGauge,
    pub table_build_seconds: Histogram,
    pub apps: IntGauge,
    pub backends: IntGauge,
    pub endpoints: IntGaugeVec,
    pub problems: IntGaugeVec,
    pub stream_connected: IntGauge,
    pub stream_connects: TotalCounter,
    pub events: IntCounterVec,
    pub refetches: IntCounterVec,
    pub source_errors: IntCounter,
    pub last_sync: IntGauge,
    pub logins: TotalCounter,
    pub endpoint_ejections: IntCounter,
    pub event_patches: IntCounter,
    pub read_corrections: IntCounter,
    pub upstream_idle_discarded: IntCounter,
    pub snapshots_held: IntCounter,
    /// Hosts that found no route lately (`/stats`); counted in `requests_total` as
    /// `backend="unrouted"`.
    pub unrouted_hosts: UnroutedHosts,
    by_backend: Arc<ByBackend>,
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(format!("switchyard_{name}"), help)
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new();
        macro_rules! register {
            ($metric:expr) => {{
                let metric = $metric.expect("valid metric");
                registry
                    .register(Box::new(metric.clone()))
                    .expect("unique metric");
                metric
            }};
        }
        let families = Arc::new(BackendFamilies::new());
        families.register(&registry);
        let by_backend = Arc::new(ByBackend::default());
        let collector = upstream::UpstreamCollector::new(by_backend.clone());
        registry
            .register(Box::new(collector))
            .expect("unique metric");
        #[cfg(target_os = "linux")]
        registry
            .register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ))
            .expect("unique metric");
        let build_info = register!(IntGaugeVec::new(
            opts("build_info", "1; its label says which version is running."),
            &["version"]
        ));
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Metrics {
            families,
            connections: register!(IntGaugeVec::new(
                opts("connections", "Client connections open, by listener and port."),
                &["listener", "port"]
            )),
            tcp_connections: register!(IntCounterVec::new(
                opts(
                    "tcp_connections_total",
                    "TCP-mode connections accepted, by service port."
                ),
                &["port"]
            )),
            connections_closed: register!(IntCounterVec::new(
                opts(
                    "client_connections_closed_total",
                    "Client connections the proxy closed: per_ip_limit (at accept), idle (no request for the header timeout), send_stalled (the client stopped taking its response)."
                ),
                &["reason"]
            )),
            worker_connections: register!(IntCounterVec::new(
                opts(
                    "worker_connections_total",
                    "Client connections accepted, by the worker thread that serves them (--threads)."
                ),
                &["worker"]
            )),
            tls_handshakes: register!(IntCounter::with_opts(opts(
                "tls_handshakes_total",
                "TLS handshakes completed."
            ))),
            tls_handshakes_resumed: register!(IntCounter::with_opts(opts(
                "tls_handshakes_resumed_total",
                "TLS handshakes completed that resumed a session (a ticket), of tls_handshakes_total."
            ))),
            tls_handshake_failures: register!(IntCounter::with_opts(opts(
                "tls_handshake_failures_total",
                "TLS handshakes that failed or timed out."
            ))),
            certificate_errors: register!(IntCounter::with_opts(opts(
                "certificate_errors_total",
                "Certificates (files or variables) that could not be loaded, counted once per change."
            ))),
            certificate_expiry: register!(IntGaugeVec::new(
                opts(
                    "certificate_expiry_timestamp_seconds",
                    "Unix time at which each certificate served expires, by source (file or $VARIABLE)."
                ),
                &["source"]
            )),
            table_generation: register!(IntGauge::with_opts(opts(
                "routing_table_generation",
                "Generation of the routing table being served."
            ))),
            table_build_seconds: register!(Histogram::with_opts(
                HistogramOpts::from(opts(
                    "routing_table_build_seconds",
                    "Time to build a routing table from a snapshot."
                ))
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0
                ])
            )),
            apps: register!(IntGauge::with_opts(opts(
                "apps",
                "Apps in the last snapshot."
            ))),
            backends: register!(IntGauge::with_opts(opts(
                "backends",
                "Backends in the routing table."
            ))),
            endpoints: register!(IntGaugeVec::new(
                opts("endpoints", "Endpoints in the routing table, by state, when scraped."),
                &["state"]
            )),
            problems: register!(IntGaugeVec::new(
                opts("problems", "Problems found in the current routing table, by kind."),
                &["kind"]
            )),
            stream_connected: register!(IntGauge::with_opts(opts(
                "marathon_stream_connected",
                "1 while Marathon's event stream is open."
            ))),
            stream_connects: TotalCounter::new(register!(IntCounter::with_opts(opts(
                "marathon_stream_connects_total",
                "Successful connects of the event stream."
            )))),
            events: register!(IntCounterVec::new(
                opts(
                    "marathon_events_total",
                    "Marathon events received, by type."
                ),
                &["type"]
            )),
            refetches: register!(IntCounterVec::new(
                opts(
                    "marathon_refetches_total",
                    "Reads of the apps: full or one app."
                ),
                &["kind"]
            )),
            source_errors: register!(IntCounter::with_opts(opts(
                "source_errors_total",
                "Reads of the apps that failed (fetch or parse)."
            ))),
            last_sync: register!(IntGauge::with_opts(opts(
                "last_sync_timestamp_seconds",
                "Unix time of the last successful read of the apps."
            ))),
            logins: TotalCounter::new(register!(IntCounter::with_opts(opts(
                "dcos_logins_total",
                "Successful DC/OS service-account logins."
            )))),
            endpoint_ejections: register!(IntCounter::with_opts(opts(
                "endpoint_ejections_total",
                "Endpoints taken out of rotation by passive health (failures in a row)."
            ))),
            event_patches: register!(IntCounter::with_opts(opts(
                "marathon_event_patches_total",
                "Changes Marathon's events carried, applied before any read."
            ))),
            read_corrections: register!(IntCounter::with_opts(opts(
                "marathon_read_corrections_total",
                "Single-app reads that disagreed with what events had patched in, and won."
            ))),
            upstream_idle_discarded: register!(IntCounter::with_opts(opts(
                "upstream_idle_discarded_total",
                "Idle upstream connections dropped when taken from the pool: closed by the backend, or holding bytes it sent unasked."
            ))),
            snapshots_held: register!(IntCounter::with_opts(opts(
                "snapshots_held_total",
                "App lists not applied because they would remove every route (waiting for a confirming read)."
            ))),
            unrouted_hosts: UnroutedHosts::default(),
            by_backend,
            registry,
        }
    }

    /// The handles of backend `name`, made on first use.
    pub fn backend(&self, name: &str) -> Arc<BackendMetrics> {
        let cache = self.by_backend.read().unwrap_or_else(|p| p.into_inner());
        if let Some(handles) = cache.get(name) {
            return handles.clone();
        }
        drop(cache);
        let mut cache = self.by_backend.write().unwrap_or_else(|p| p.into_inner());
        cache
            .entry(name.into())
            .or_insert_with(|| Arc::new(BackendMetrics::new(name, self.families.clone())))
            .clone()
    }

    /// The open-connections gauge of the listener of `kind` ([`ListenerKind::label`] or
    /// [`TCP_LISTENER`]) on `port`.
    pub fn listener(&self, kind: &str, port: u16) -> IntGauge {
        self.connections
            .with_label_values(&[kind, &port.to_string()])
    }

    /// The text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buffer);
        String::from_utf8(buffer).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
