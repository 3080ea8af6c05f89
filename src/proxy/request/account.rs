//! Accounting for one answered request, the same on both engines: the backend's counters and
//! duration (handles resolved when the table was built) and, with `--access-log`, one line.

use std::net::SocketAddr;
use std::time::Duration;

use crate::proxy::Frontend;
use crate::routing::Backend;

/// What the access-log line needs from the request, taken before its bytes move on (made only
/// with `--access-log`).
#[derive(Debug)]
pub struct Logged {
    pub host: String,
    pub path: String,
}

/// How the request ended.
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    pub status: u16,
    pub elapsed: Duration,
    /// The endpoint that answered, if one did.
    pub endpoint: Option<SocketAddr>,
    /// The response's `Content-Length`, if it gave one.
    pub length: Option<u64>,
}

/// Counts the answer on the backend's handles and writes the access-log line.
pub fn account(
    frontend: Frontend,
    client: SocketAddr,
    backend: &Backend,
    logged: Option<&Logged>,
    answered: Answered,
) {
    let metrics = &backend.metrics;
    metrics.request(frontend.metrics_kind(), answered.status);
    metrics.duration().observe(answered.elapsed.as_secs_f64());
    if answered.status == 504 {
        metrics.timeouts().inc();
    }
    if let Some(logged) = logged {
        let endpoint = answered.endpoint.map(|e| e.to_string());
        let length = answered.length.map(|n| n.to_string());
        tracing::info!(
            target: "access",
            client = %client,
            listener = frontend.listener_label(),
            host = &*logged.host,
            path = &*logged.path,
            status = answered.status,
            backend = &*backend.name,
            endpoint = endpoint.as_deref().unwrap_or("-"),
            duration_ms = answered.elapsed.as_secs_f64() * 1e3,
            length = length.as_deref().unwrap_or("-"),
        );
    }
}
