//! Prometheus metrics. Everything the hot path touches is a handle resolved before the request:
//! per backend when a table is built (and kept across tables by backend name, so a rebuild
//! resolves only new backends), per listener when it starts. No label lookup per request.
//!
//! Control-plane values (table size, the Marathon stream, syncs) are set when they change or
//! read from their sources when `/metrics` is scraped.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, OnceLock, RwLock};

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// The listener kinds requests are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Http = 0,
    Https = 1,
    AppId = 2,
    ServicePort = 3,
}

const LISTENERS: [&str; 4] = ["http", "https", "app_id", "service_port"];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One backend's handles, each made on first use: a backend that never sees a request costs a
/// few hundred bytes instead of 26 labelled series (about 26 KiB each time with 2,500 apps).
/// After the first use a handle is one atomic load away; only that first use takes the
/// family's lock.
#[derive(Debug)]
pub struct BackendMetrics {
    name: Box<str>,
    families: Arc<BackendFamilies>,
    /// `[listener][status class]`.
    requests: [[OnceLock<IntCounter>; 5]; 4],
    duration: OnceLock<Histogram>,
    connect_errors: OnceLock<IntCounter>,
    retries: OnceLock<IntCounter>,
    timeouts: OnceLock<IntCounter>,
    bytes_out: OnceLock<IntCounter>,
    bytes_in: OnceLock<IntCounter>,
}

/// The per-backend metric families, registered (or, for detached handles, not).
#[derive(Debug)]
struct BackendFamilies {
    requests: IntCounterVec,
    duration: HistogramVec,
    connect_errors: IntCounterVec,
    retries: IntCounterVec,
    timeouts: IntCounterVec,
    bytes_out: IntCounterVec,
    bytes_in: IntCounterVec,
}

macro_rules! lazy_counter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        pub fn $name(&self) -> &IntCounter {
            self.$name
                .get_or_init(|| self.families.$name.with_label_values(&[&*self.name]))
        }
    };
}

impl BackendMetrics {
    fn new(name: &str, families: Arc<BackendFamilies>) -> BackendMetrics {
        BackendMetrics {
            name: name.into(),
            families,
            requests: Default::default(),
            duration: OnceLock::new(),
            connect_errors: OnceLock::new(),
            retries: OnceLock::new(),
            timeouts: OnceLock::new(),
            bytes_out: OnceLock::new(),
            bytes_in: OnceLock::new(),
        }
    }

    /// Counts one answered request.
    pub fn request(&self, listener: ListenerKind, status: u16) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        let l = listener as usize;
        self.requests[l][class]
            .get_or_init(|| {
                self.families.requests.with_label_values(&[
                    LISTENERS[l],
                    &self.name,
                    CLASSES[class],
                ])
            })
            .inc();
    }

    /// Requests answered with `class` (0 = 1xx … 4 = 5xx), all listeners.
    pub fn answered(&self, class: usize) -> u64 {
        self.requests
            .iter()
            .filter_map(|l| l[class].get())
            .map(IntCounter::get)
            .sum()
    }

    /// Time from a request's head to its response head.
    pub fn duration(&self) -> &Histogram {
        self.duration
            .get_or_init(|| self.families.duration.with_label_values(&[&*self.name]))
    }

    lazy_counter!(
        /// Failed connects to endpoints.
        connect_errors
    );
    lazy_counter!(
        /// Requests tried again on another endpoint.
        retries
    );
    lazy_counter!(
        /// Requests answered 504.
        timeouts
    );
    lazy_counter!(
        /// Response body bytes.
        bytes_out
    );
    lazy_counter!(
        /// Request body bytes.
        bytes_in
    );
}

impl BackendFamilies {
    /// The families, unregistered.
    fn new() -> BackendFamilies {
        let latency_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0,
        ];
        let counter =
            |name, help| IntCounterVec::new(opts(name, help), &["backend"]).expect("valid metric");
        BackendFamilies {
            requests: IntCounterVec::new(
                opts(
                    "requests_total",
                    "Requests answered, by listener, backend and status class.",
                ),
                &["listener", "backend", "class"],
            )
            .expect("valid metric"),
            duration: HistogramVec::new(
                HistogramOpts::from(opts(
                    "request_duration_seconds",
                    "Time from a request's head to its response head, by backend.",
                ))
                .buckets(latency_buckets),
                &["backend"],
            )
            .expect("valid metric"),
            connect_errors: counter(
                "upstream_connect_errors_total",
                "Failed connects to endpoints, by backend.",
            ),
            retries: counter(
                "upstream_retries_total",
                "Requests tried again on another endpoint.",
            ),
            timeouts: counter(
                "upstream_timeouts_total",
                "Requests answered 504 (connect or response timeout).",
            ),
            bytes_out: counter(
                "response_bytes_total",
                "Response body bytes sent to clients, by backend.",
            ),
            bytes_in: counter(
                "request_bytes_total",
                "Request body bytes sent to endpoints, by backend.",
            ),
        }
    }

    fn register(&self, registry: &Registry) {
        let families: [Box<dyn prometheus::core::Collector>; 7] = [
            Box::new(self.requests.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.connect_errors.clone()),
            Box::new(self.retries.clone()),
            Box::new(self.timeouts.clone()),
            Box::new(self.bytes_out.clone()),
            Box::new(self.bytes_in.clone()),
        ];
        for family in families {
            registry.register(family).expect("unique metric");
        }
    }
}

/// Handles for tables built without a metrics registry (tools, tests, benches).
pub static DETACHED: LazyLock<Arc<BackendMetrics>> = LazyLock::new(|| {
    Arc::new(BackendMetrics::new(
        "detached",
        Arc::new(BackendFamilies::new()),
    ))
});

/// The registry and every metric family.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    families: Arc<BackendFamilies>,
    pub connections: IntGaugeVec,
    pub tcp_connections: IntCounterVec,
    pub connections_closed: IntCounterVec,
    pub tls_handshakes: IntCounter,
    pub tls_handshake_failures: IntCounter,
    pub table_generation: IntGauge,
    pub table_build_seconds: Histogram,
    pub apps: IntGauge,
    pub backends: IntGauge,
    pub endpoints: IntGaugeVec,
    pub problems: IntGaugeVec,
    pub stream_connected: IntGauge,
    pub stream_connects: IntGauge,
    pub events: IntCounterVec,
    pub refetches: IntCounterVec,
    pub source_errors: IntCounter,
    pub last_sync: IntGauge,
    pub logins: IntGauge,
    pub endpoint_ejections: IntCounter,
    pub snapshots_held: IntCounter,
    /// Handles by backend name, kept across tables.
    /// Read-mostly: a rebuild finds almost every name there, from several threads at once.
    by_backend: RwLock<HashMap<Box<str>, Arc<BackendMetrics>, ahash::RandomState>>,
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
        Metrics {
            families,
            connections: register!(IntGaugeVec::new(
                opts("connections", "Client connections open, by listener."),
                &["listener"]
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
            tls_handshakes: register!(IntCounter::with_opts(opts(
                "tls_handshakes_total",
                "TLS handshakes completed."
            ))),
            tls_handshake_failures: register!(IntCounter::with_opts(opts(
                "tls_handshake_failures_total",
                "TLS handshakes that failed or timed out."
            ))),
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
                opts("endpoints", "Endpoints in the routing table, by state."),
                &["state"]
            )),
            problems: register!(IntGaugeVec::new(
                opts("problems", "Problems found in the last build, by kind."),
                &["kind"]
            )),
            stream_connected: register!(IntGauge::with_opts(opts(
                "marathon_stream_connected",
                "1 while Marathon's event stream is open."
            ))),
            stream_connects: register!(IntGauge::with_opts(opts(
                "marathon_stream_connects",
                "Successful connects of the event stream since start."
            ))),
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
            logins: register!(IntGauge::with_opts(opts(
                "dcos_logins",
                "Successful DC/OS service-account logins since start."
            ))),
            endpoint_ejections: register!(IntCounter::with_opts(opts(
                "endpoint_ejections_total",
                "Endpoints taken out of rotation by passive health (failures in a row)."
            ))),
            snapshots_held: register!(IntCounter::with_opts(opts(
                "snapshots_held_total",
                "App lists not applied because they would remove every route (waiting for a confirming read)."
            ))),
            by_backend: RwLock::default(),
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

    /// The table's size in the gauges.
    pub fn observe_table(&self, table: &crate::routing::RoutingTable, apps: usize) {
        self.table_generation.set(table.generation() as i64);
        self.apps.set(apps as i64);
        self.backends.set(table.backends().len() as i64);
        let (mut up, mut down, mut draining) = (0i64, 0i64, 0i64);
        for backend in table.backends() {
            for target in &backend.targets {
                match (target.draining, target.state.is_down()) {
                    (true, _) => draining += 1,
                    (false, true) => down += 1,
                    (false, false) => up += 1,
                }
            }
        }
        for (state, count) in [("up", up), ("down", down), ("draining", draining)] {
            self.endpoints.with_label_values(&[state]).set(count);
        }
        self.problems.reset();
        for problem in table.problems() {
            self.problems
                .with_label_values(&[problem.kind.as_str()])
                .inc();
        }
    }

    /// A listener's open-connections gauge.
    pub fn listener(&self, name: &str) -> IntGauge {
        self.connections.with_label_values(&[name])
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
