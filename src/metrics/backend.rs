//! Per-backend handles, kept across tables by backend name.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use prometheus::{Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Registry};

use super::opts;
use super::upstream::{Count, UpstreamCounts};

/// The listener kinds requests are counted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKind {
    Http = 0,
    Https = 1,
    AppId = 2,
    ServicePort = 3,
}

const LISTENERS: [&str; 4] = ["http", "https", "app_id", "service_port"];

/// The `listener` label of a TCP-mode service port, which has connections but no requests.
pub const TCP_LISTENER: &str = "tcp";

impl ListenerKind {
    /// Its `listener` label, the same in every family that has one.
    pub fn label(self) -> &'static str {
        LISTENERS[self as usize]
    }
}
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One backend's handles. The upstream counts are plain atomics, shown for every backend
/// (`upstream.rs`); the labelled series are made on first use: a backend that never sees a
/// request costs a few hundred bytes instead of 23 labelled series (`docs/benchmarks.md` has
/// the figure). After the first use a handle is one atomic load away; only that first use
/// takes the family's lock.
#[derive(Debug)]
pub struct BackendMetrics {
    name: Box<str>,
    families: Arc<BackendFamilies>,
    pub(super) upstream: UpstreamCounts,
    /// `[listener][status class]`.
    requests: [[OnceLock<IntCounter>; 5]; 4],
    duration: OnceLock<Histogram>,
    bytes_out: OnceLock<IntCounter>,
    bytes_in: OnceLock<IntCounter>,
    /// gRPC responses by status code (0-16).
    grpc: [OnceLock<IntCounter>; GRPC_CODES.len()],
    /// When the handles were made: a reader meeting a backend for the first time counts its
    /// totals as new traffic only when they were made since it last looked (a backend back in
    /// the table under an old name brings old totals).
    created: Instant,
}

/// The per-backend metric families, registered (or, for detached handles, not).
#[derive(Debug)]
pub(super) struct BackendFamilies {
    requests: IntCounterVec,
    duration: HistogramVec,
    bytes_out: IntCounterVec,
    bytes_in: IntCounterVec,
    grpc: IntCounterVec,
}

/// gRPC's status codes by number (grpc/doc/statuscodes.md), the `grpc_code` label's values.
pub const GRPC_CODES: [&str; 17] = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
];

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
    pub(super) fn new(name: &str, families: Arc<BackendFamilies>) -> BackendMetrics {
        BackendMetrics {
            name: name.into(),
            families,
            upstream: UpstreamCounts::default(),
            requests: Default::default(),
            duration: OnceLock::new(),
            bytes_out: OnceLock::new(),
            bytes_in: OnceLock::new(),
            grpc: Default::default(),
            created: Instant::now(),
        }
    }

    /// Counts one answered request. The first on a listener makes the series of every status
    /// class there, at 0: a class's first answer then shows as an increase.
    pub fn request(&self, listener: ListenerKind, status: u16) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        match self.requests[listener as usize][class].get() {
            Some(counter) => counter.inc(),
            None => self.make_row(listener)[class].inc(),
        }
    }

    /// The series of every status class on `listener`.
    #[cold]
    fn make_row(&self, listener: ListenerKind) -> [&IntCounter; 5] {
        let l = listener as usize;
        std::array::from_fn(|class| {
            self.requests[l][class].get_or_init(|| {
                self.families.requests.with_label_values(&[
                    LISTENERS[l],
                    &self.name,
                    CLASSES[class],
                ])
            })
        })
    }

    /// Requests answered with `class` (0 = 1xx … 4 = 5xx), all listeners.
    pub fn answered(&self, class: usize) -> u64 {
        self.requests
            .iter()
            .filter_map(|l| l[class].get())
            .map(IntCounter::get)
            .sum()
    }

    /// Counts a gRPC response with status `code` (by its name; a code past 16 is UNKNOWN).
    pub fn grpc_status(&self, code: u8) {
        let code = if usize::from(code) < GRPC_CODES.len() {
            usize::from(code)
        } else {
            2
        };
        self.grpc[code]
            .get_or_init(|| {
                let name = GRPC_CODES[code];
                self.families.grpc.with_label_values(&[&*self.name, name])
            })
            .inc();
    }

    /// gRPC responses counted with `code`.
    pub fn grpc_answered(&self, code: u8) -> u64 {
        self.grpc
            .get(usize::from(code))
            .and_then(OnceLock::get)
            .map_or(0, IntCounter::get)
    }

    /// When these handles were made (the first table that named the backend).
    pub fn created(&self) -> Instant {
        self.created
    }

    /// The duration histogram if a request made it (reading it must not make the series).
    pub fn duration_if_used(&self) -> Option<&Histogram> {
        self.duration.get()
    }

    /// Time from a request's head to its response head.
    pub fn duration(&self) -> &Histogram {
        self.duration
            .get_or_init(|| self.families.duration.with_label_values(&[&*self.name]))
    }

    /// Failed connects to endpoints.
    pub fn connect_errors(&self) -> &Count {
        &self.upstream.connect_errors
    }

    /// Requests tried again on another endpoint.
    pub fn retries(&self) -> &Count {
        &self.upstream.retries
    }

    /// Requests answered 504.
    pub fn timeouts(&self) -> &Count {
        &self.upstream.timeouts
    }

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
    pub(super) fn new() -> BackendFamilies {
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
            bytes_out: counter(
                "response_bytes_total",
                "Response body bytes sent to clients, by backend.",
            ),
            bytes_in: counter(
                "request_bytes_total",
                "Request body bytes sent to endpoints, by backend.",
            ),
            grpc: IntCounterVec::new(
                opts(
                    "grpc_responses_total",
                    "gRPC responses (the backend's, and the balancer's own answers to calls), by backend and status code name.",
                ),
                &["backend", "grpc_code"],
            )
            .expect("valid metric"),
        }
    }

    pub(super) fn register(&self, registry: &Registry) {
        let families: [Box<dyn prometheus::core::Collector>; 5] = [
            Box::new(self.requests.clone()),
            Box::new(self.duration.clone()),
            Box::new(self.bytes_out.clone()),
            Box::new(self.bytes_in.clone()),
            Box::new(self.grpc.clone()),
        ];
        for family in families {
            registry.register(family).expect("unique metric");
        }
    }
}

/// Handles for tables built without a metrics registry (tools, tests, benches): one set per
/// thread, so that the threads of a parallel build never share a reference count (one shared
/// `Arc` cloned by every backend moved its count between the cores at each clone).
pub fn detached() -> Arc<BackendMetrics> {
    thread_local! {
        static DETACHED: Arc<BackendMetrics> = Arc::new(BackendMetrics::new(
            "detached",
            Arc::new(BackendFamilies::new()),
        ));
    }
    DETACHED.with(Arc::clone)
}
