//! A table's size in the metrics' gauges, after it is published.

use super::RoutingTable;
use crate::metrics::Metrics;

impl RoutingTable {
    /// Sets the generation, apps, backends, endpoints-by-state and problems-by-kind gauges.
    pub fn observe(&self, metrics: &Metrics, apps: usize) {
        metrics.table_generation.set(self.generation() as i64);
        metrics.apps.set(apps as i64);
        metrics.backends.set(self.backends().len() as i64);
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
        metrics.problems.reset();
        for problem in self.problems() {
            metrics
                .problems
                .with_label_values(&[problem.kind.as_str()])
                .inc();
        }
    }
}
