//! Prometheus metrics. Everything the hot path touches is a handle resolved before the request:
//! per backend when a table is built (and kept across tables by backend name, so a rebuild
//! resolves only new backends), per listener when it starts. No label lookup per request.
//!
//! Control-plane values (table size, the Marathon stream, syncs) are set when they change or
//! read from their sources when `/metrics` is scraped.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

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

/// One backend's handles.
#[derive(Debug)]
pub struct BackendMetrics {
    /// `[listener][status class]`.
    requests: [[IntCounter; 5]; 4],
    pub duration: Histogram,
    pub connect_errors: IntCounter,
    pub retries: IntCounter,
    pub timeouts: IntCounter,
    pub bytes_out: IntCounter,
    pub bytes_in: IntCounter,
}

impl BackendMetrics {
    /// Counts one answered request.
    pub fn request(&self, listener: ListenerKind, status: u16) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        self.requests[listener as usize][class].inc();
    }

    /// Requests answered with `class` (0 = 1xx … 4 = 5xx), all listeners.
    pub fn answered(&self, class: usize) -> u64 {
        self.requests.iter().map(|l| l[class].get()).sum()
    }

    fn detached() -> BackendMetrics {
        let counter = || IntCounter::new("detached", "not registered").expect("valid name");
        BackendMetrics {
            requests: std::array::from_fn(|_| std::array::from_fn(|_| counter())),
            duration: Histogram::with_opts(HistogramOpts::new("detached", "not registered"))
                .expect("valid name"),
            connect_errors: counter(),
            retries: counter(),
            timeouts: counter(),
            bytes_out: counter(),
            bytes_in: counter(),
        }
    }
}

/// Handles for tables built without a metrics registry (tools, tests, benches).
pub static DETACHED: LazyLock<Arc<BackendMetrics>> =
    LazyLock::new(|| Arc::new(BackendMetrics::detached()));

/// The registry and every metric family.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: HistogramVec,
    connect_errors: IntCounterVec,
    retries: IntCounterVec,
    timeouts: IntCounterVec,
    bytes_out: IntCounterVec,
    bytes_in: IntCounterVec,
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
    /// Handles by backend name, kept across tables.
    by_backend: Mutex<HashMap<Box<str>, Arc<BackendMetrics>>>,
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
        let latency_buckets = vec![
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            30.0,
        ];
        Metrics {
            requests: register!(IntCounterVec::new(
                opts(
                    "requests_total",
                    "Requests answered, by listener, backend and status class."
                ),
                &["listener", "backend", "class"]
            )),
            duration: register!(HistogramVec::new(
                HistogramOpts::from(opts(
                    "request_duration_seconds",
                    "Time from a request's head to its response head, by backend."
                ))
                .buckets(latency_buckets),
                &["backend"]
            )),
            connect_errors: register!(IntCounterVec::new(
                opts(
                    "upstream_connect_errors_total",
                    "Failed connects to endpoints, by backend."
                ),
                &["backend"]
            )),
            retries: register!(IntCounterVec::new(
                opts(
                    "upstream_retries_total",
                    "Requests tried again on another endpoint."
                ),
                &["backend"]
            )),
            timeouts: register!(IntCounterVec::new(
                opts(
                    "upstream_timeouts_total",
                    "Requests answered 504 (connect or response timeout)."
                ),
                &["backend"]
            )),
            bytes_out: register!(IntCounterVec::new(
                opts(
                    "response_bytes_total",
                    "Response body bytes sent to clients, by backend."
                ),
                &["backend"]
            )),
            bytes_in: register!(IntCounterVec::new(
                opts(
                    "request_bytes_total",
                    "Request body bytes sent to endpoints, by backend."
                ),
                &["backend"]
            )),
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
            by_backend: Mutex::new(HashMap::new()),
            registry,
        }
    }

    /// The handles of backend `name`, made on first use.
    pub fn backend(&self, name: &str) -> Arc<BackendMetrics> {
        let mut cache = self.by_backend.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(handles) = cache.get(name) {
            return handles.clone();
        }
        let handles = Arc::new(BackendMetrics {
            requests: std::array::from_fn(|l| {
                std::array::from_fn(|c| {
                    self.requests
                        .with_label_values(&[LISTENERS[l], name, CLASSES[c]])
                })
            }),
            duration: self.duration.with_label_values(&[name]),
            connect_errors: self.connect_errors.with_label_values(&[name]),
            retries: self.retries.with_label_values(&[name]),
            timeouts: self.timeouts.with_label_values(&[name]),
            bytes_out: self.bytes_out.with_label_values(&[name]),
            bytes_in: self.bytes_in.with_label_values(&[name]),
        });
        cache.insert(name.into(), handles.clone());
        handles
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
