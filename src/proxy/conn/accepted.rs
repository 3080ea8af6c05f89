//! One accepted connection, as every engine gets it: made once at accept and passed whole.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::proxy::{Frontend, ProxyContext};

/// An accepted client connection's context: whose it is, where it came in, and what ends it.
pub struct Accepted<'a> {
    pub ctx: Arc<ProxyContext>,
    pub frontend: Frontend,
    pub peer: SocketAddr,
    /// Fires when the balancer stops: HTTP connections close after their request in flight.
    pub shutdown: CancellationToken,
    pub closed: &'a ClosedCounters,
}

/// How long an idle HTTP/1 connection stays open once the balancer starts draining, for a
/// client about to reuse it to send one more request (answered with `Connection: close`).
pub const DRAIN_IDLE_GRACE: Duration = Duration::from_secs(1);

/// Connections the proxy closed on a client, by reason; resolved once per listener.
#[derive(Clone)]
pub struct ClosedCounters {
    pub per_ip_limit: prometheus::IntCounter,
    pub idle: prometheus::IntCounter,
    pub send_stalled: prometheus::IntCounter,
}

impl ClosedCounters {
    pub fn new(metrics: &crate::metrics::Metrics) -> ClosedCounters {
        let reason = |r: &str| metrics.connections_closed.with_label_values(&[r]);
        ClosedCounters {
            per_ip_limit: reason("per_ip_limit"),
            idle: reason("idle"),
            send_stalled: reason("send_stalled"),
        }
    }
}
