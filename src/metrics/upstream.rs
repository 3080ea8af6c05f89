//! A backend's upstream counts (connect errors, retries, timeouts): atomics in its handles,
//! written out for every backend known when `/metrics` is read. Each backend so has the three
//! series at 0 from the table that first holds it, and its first error shows as an increase
//! (Prometheus sees none in a series that first appears at 1); as atomics they cost a backend
//! 24 bytes, where the crate's labelled series cost hundreds each.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, LabelPair, Metric, MetricFamily, MetricType};

use super::ByBackend;

/// A count one backend keeps.
#[derive(Debug, Default)]
pub struct Count(AtomicU64);

impl Count {
    pub fn inc(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// One backend's upstream counts.
#[derive(Debug, Default)]
pub(super) struct UpstreamCounts {
    pub(super) connect_errors: Count,
    pub(super) retries: Count,
    pub(super) timeouts: Count,
}

impl UpstreamCounts {
    fn values(&self) -> [u64; 3] {
        [
            self.connect_errors.get(),
            self.retries.get(),
            self.timeouts.get(),
        ]
    }
}

/// The families, in the order of [`UpstreamCounts::values`].
const FAMILIES: [(&str, &str); 3] = [
    (
        "switchyard_upstream_connect_errors_total",
        "Failed connects to endpoints, by backend.",
    ),
    (
        "switchyard_upstream_retries_total",
        "Requests tried again on another endpoint, by backend.",
    ),
    (
        "switchyard_upstream_timeouts_total",
        "Requests answered 504 (connect or response timeout), by backend.",
    ),
];

/// Writes out every known backend's upstream counts when the registry is gathered.
pub(super) struct UpstreamCollector {
    descs: Vec<Desc>,
    backends: Arc<ByBackend>,
}

impl UpstreamCollector {
    pub(super) fn new(backends: Arc<ByBackend>) -> UpstreamCollector {
        let descs = FAMILIES
            .iter()
            .map(|(name, help)| {
                let labels = vec!["backend".to_owned()];
                Desc::new(
                    (*name).to_owned(),
                    (*help).to_owned(),
                    labels,
                    HashMap::new(),
                )
                .expect("valid metric")
            })
            .collect();
        UpstreamCollector { descs, backends }
    }
}

impl Collector for UpstreamCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        // Copied out first: a table build waiting for the lock waits only for the copy.
        let counts: Vec<(Box<str>, [u64; 3])> = {
            let backends = self.backends.read().unwrap_or_else(|p| p.into_inner());
            backends
                .iter()
                .map(|(name, handles)| (name.clone(), handles.upstream.values()))
                .collect()
        };
        FAMILIES
            .iter()
            .enumerate()
            .map(|(at, (name, help))| {
                let mut family = MetricFamily::default();
                family.set_name((*name).to_owned());
                family.set_help((*help).to_owned());
                family.set_field_type(MetricType::COUNTER);
                let metrics = counts
                    .iter()
                    .map(|(backend, values)| counter(backend, values[at]))
                    .collect();
                family.set_metric(metrics);
                family
            })
            .collect()
    }
}

fn counter(backend: &str, value: u64) -> Metric {
    let mut label = LabelPair::default();
    label.set_name("backend".to_owned());
    label.set_value(backend.to_owned());
    let mut counter = Counter::default();
    counter.set_value(value as f64);
    let mut metric = Metric::from_label(vec![label]);
    metric.set_counter(counter);
    metric
}
