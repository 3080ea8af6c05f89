//! Following Marathon: the event stream and polling against the in-process simulator or a
//! stand-in, Marathon's faults, and the real binary with Marathon-LB's arguments and DC/OS auth.

mod marathon_cli;
mod marathon_faults;
mod marathon_source;
mod proxy_marathon;

use std::time::Duration;

use crate::support::proxy::start_on_loopback;
use switchyard::marathon::{Credentials, MarathonConfig, StreamOptions};
use switchyard::proxy::ProxyConfig;
use switchyard::serve::{Handle, MarathonSource, Source};

/// Event-stream mode with test-sized timings: quick back-off, a short stall timeout, no
/// resync during the test unless asked.
fn source(urls: Vec<String>, credentials: Credentials) -> MarathonSource {
    MarathonSource {
        stream: StreamOptions {
            stall: Duration::from_millis(500),
            backoff_initial: Duration::from_millis(20),
            max_backoff: Duration::from_millis(200),
        },
        resync: Duration::from_secs(3600),
        ..MarathonSource::new(MarathonConfig {
            urls,
            credentials,
            ..MarathonConfig::default()
        })
    }
}

/// Starts serve mode without waiting for a first table.
async fn start(source: MarathonSource) -> Handle {
    start_on_loopback(
        Source::Marathon(source),
        Duration::from_secs(3600),
        ProxyConfig::default(),
    )
    .await
}
