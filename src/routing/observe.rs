//! A table in the metrics' gauges: its size when it is published, what its endpoints and
//! problems are when `/metrics` is read (a walk of every endpoint, which a change to one app
//! should not pay, and which is current at the scrape rather than at the last change).

use super::RoutingTable;
use crate::metrics::Metrics;

impl RoutingTable {
    /// Sets the generation, apps and backends gauges.
    pub fn observe(&self, metrics: &Metrics, apps: usize) {
        metrics.table_generation.set(self.generation() as i64);
        metrics.apps.set(apps as i64);
        metrics.backends.set(self.backends().len() as i64);
    }

    /// Sets the endpoints-by-state and problems-by-kind gauges.
    pub fn observe_endpoints(&self, metrics: &Metrics) {
        let (mut up, mut down, mut draining) = (0i64, 0i64, 0i64);
        for backend in self.backends() {
            for target in &backend.targets {
                match (target.draining, target.state.is_down()) {
                    (true, _) => draining += 1,
                    (false, true) => down += 1,
                    (false, false) => up += 1,
                }
            }
        }
        for (state, count) in [("up", up), ("down", down), ("draining", draining)] {
            metrics.endpoints.with_label_values(&[state]).set(count);
        }
        // Counted first and set after, so that two scrapes at once do not add up.
        let mut kinds = std::collections::BTreeMap::<&str, i64>::new();
        for problem in self.problems() {
            *kinds.entry(problem.kind.as_str()).or_default() += 1;
        }
        metrics.problems.reset();
        for (kind, count) in kinds {
            metrics.problems.with_label_values(&[kind]).set(count);
        }
    }
}
