//! Counting one answered request, the same on both engines: the backend's counters and
//! duration, on handles resolved when the table was built. The access-log line is
//! `access_log.rs`.

use std::time::Duration;

use crate::proxy::Frontend;
use crate::routing::Backend;

/// Counts an answer with `status`, its head ready `elapsed` after the request's.
pub fn account(frontend: Frontend, backend: &Backend, status: u16, elapsed: Duration) {
    let metrics = &backend.metrics;
    metrics.request(frontend.metrics_kind(), status);
    metrics.duration().observe(elapsed.as_secs_f64());
    if status == 504 {
        metrics.timeouts().inc();
    }
}
