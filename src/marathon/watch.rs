//! Following Marathon's event stream for as long as the balancer runs: connect (rotating
//! through the URLs, as Marathon-LB does), signal "refetch" on every connect and every routing
//! event, reconnect with jittered exponential back-off, and report the stream's state.
//!
//! Events are only invalidation hints (Marathon neither orders nor replays them): the receiver
//! of the signal refetches the apps they name (or all of `/v2/apps`), and many signals collapse
//! into one refetch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::change::ChangeSignal;
use super::client::MarathonClient;

/// How the stream is kept alive.
#[derive(Debug, Clone)]
pub struct StreamOptions {
    /// No byte for this long (Marathon sends a CRLF every 10 s) means the stream is dead.
    pub stall: Duration,
    /// The first reconnect delay; it grows ×1.5 per failed attempt.
    pub backoff_initial: Duration,
    /// `--max-backoff`: the largest reconnect delay.
    pub max_backoff: Duration,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions {
            stall: Duration::from_secs(30),
            backoff_initial: Duration::from_secs(1),
            max_backoff: Duration::from_secs(300),
        }
    }
}

/// A stream that lived this long was healthy: the next reconnect is immediate and the back-off
/// starts over. Shorter lives (a just-elected leader closes new streams at once) keep backing
/// off, so a flapping Marathon is not hammered.
const STABLE_STREAM: Duration = Duration::from_secs(5);

/// What the stream is doing, for the status page, metrics and tests.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StreamStatus {
    /// The URL the stream is open on, if it is.
    pub connected: Option<String>,
    /// Successful connects so far.
    pub connects: u64,
    /// Routing events received so far.
    pub events: u64,
    /// Why the last connection attempt or stream failed.
    pub last_error: Option<String>,
    /// The latest events, oldest first (at most [`RECENT_EVENTS`]).
    pub recent: std::collections::VecDeque<RecentEvent>,
}

/// How many recent events the status keeps.
pub const RECENT_EVENTS: usize = 20;

/// How many of the apps an event names the status keeps (a deployment can name hundreds).
pub const RECENT_EVENT_APPS: usize = 5;

/// One event as the status page lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RecentEvent {
    #[serde(rename = "type")]
    pub kind: String,
    pub at_unix_ms: u64,
    /// The first [`RECENT_EVENT_APPS`] app ids the event names (none: it names no app).
    pub apps: Vec<String>,
    /// How many more it names.
    pub more_apps: usize,
}

impl RecentEvent {
    fn new(kind: &str, at_unix_ms: u64, apps: Option<&[String]>) -> RecentEvent {
        let apps = apps.unwrap_or_default();
        let shown = apps.len().min(RECENT_EVENT_APPS);
        RecentEvent {
            kind: kind.to_owned(),
            at_unix_ms,
            apps: apps[..shown].to_vec(),
            more_apps: apps.len() - shown,
        }
    }
}

/// Runs until `stop`, telling `changed` what to fetch again and `on_event` each event's type
/// (for metrics).
pub async fn follow(
    client: Arc<MarathonClient>,
    options: StreamOptions,
    changed: Arc<ChangeSignal>,
    status: watch::Sender<StreamStatus>,
    on_event: impl Fn(&str) + Send + 'static,
    stop: CancellationToken,
) {
    let http = match client.stream_http(options.stall) {
        Ok(http) => http,
        Err(err) => {
            tracing::error!(error = %err, "cannot open Marathon's event stream");
            return;
        }
    };
    let urls = client.urls().count().max(1);
    let mut next_url = 0;
    let mut attempt = 0u32;
    // Failures since the last back-off: every URL gets one immediate try per round.
    let mut round = 0;
    // Attempts failed since the stream was last open: the first is logged, the rest counted.
    let mut failed = 0u32;
    loop {
        let index = next_url % urls;
        next_url += 1;
        let subscribed = tokio::select! {
            result = client.subscribe(index, &http, options.stall) => result,
            () = stop.cancelled() => return,
        };
        let stable = match subscribed {
            Ok(mut stream) => {
                if failed == 0 {
                    tracing::info!(url = stream.url(), "Marathon event stream connected");
                } else {
                    tracing::info!(
                        url = stream.url(),
                        failed_attempts = failed,
                        "Marathon event stream connected"
                    );
                }
                failed = 0;
                status.send_modify(|s| {
                    s.connected = Some(stream.url().to_owned());
                    s.connects += 1;
                });
                // Events missed while disconnected are gone for good: resync.
                changed.all();
                let started = Instant::now();
                let end = loop {
                    let event = tokio::select! {
                        event = stream.next_event() => event,
                        () = stop.cancelled() => return,
                    };
                    match event {
                        Ok(Some(event)) => {
                            let at_unix_ms = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .map_or(0, |d| d.as_millis() as u64);
                            let (kind, data) = (&event.event_type, &event.data);
                            let apps = super::change::affected_apps(kind, data);
                            let recent = RecentEvent::new(kind, at_unix_ms, apps.as_deref());
                            status.send_modify(|s| {
                                s.events += 1;
                                if s.recent.len() == RECENT_EVENTS {
                                    s.recent.pop_front();
                                }
                                s.recent.push_back(recent);
                            });
                            on_event(kind);
                            changed.event_about(kind, data, apps.as_deref());
                        }
                        Ok(None) => break format!("{}: closed by Marathon", stream.url()),
                        Err(err) => break err.to_string(),
                    }
                };
                tracing::warn!(reason = %end, "Marathon event stream lost; reconnecting");
                status.send_modify(|s| {
                    s.connected = None;
                    s.last_error = Some(end);
                });
                started.elapsed() >= STABLE_STREAM
            }
            Err(err) => {
                failed = failed.saturating_add(1);
                if failed == 1 {
                    tracing::warn!(error = %err, "cannot open Marathon's event stream; retrying with back-off");
                } else {
                    tracing::debug!(error = %err, failed_attempts = failed, "cannot open Marathon's event stream");
                }
                status.send_modify(|s| s.last_error = Some(err.to_string()));
                false
            }
        };
        if stable {
            attempt = 0;
            round = 0;
            continue;
        }
        round += 1;
        if round >= urls {
            round = 0;
            let delay = backoff(attempt, &options);
            attempt = attempt.saturating_add(1);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop.cancelled() => return,
            }
        }
    }
}

/// `initial × 1.5^attempt`, capped at `max_backoff`, then jittered into its upper half so that
/// many balancers do not reconnect in step.
fn backoff(attempt: u32, options: &StreamOptions) -> Duration {
    let grown = options.backoff_initial.as_secs_f64() * 1.5f64.powi(attempt.min(64) as i32);
    let window = grown.min(options.max_backoff.as_secs_f64());
    Duration::from_secs_f64(window * (0.5 + fastrand::f64() / 2.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recent_event_keeps_the_first_apps_it_names() {
        let apps: Vec<String> = (0..8).map(|i| format!("/a{i}")).collect();
        let event = RecentEvent::new("deployment_success", 1, Some(&apps));
        assert_eq!(event.apps, apps[..RECENT_EVENT_APPS]);
        assert_eq!(event.more_apps, 3);
        let event = RecentEvent::new("status_update_event", 1, Some(&apps[..1]));
        assert_eq!((event.apps, event.more_apps), (vec!["/a0".to_owned()], 0));
        let event = RecentEvent::new("mystery_event", 1, None);
        assert!(event.apps.is_empty() && event.more_apps == 0);
    }

    #[test]
    fn backoff_grows_jittered_and_stops_at_the_cap() {
        let options = StreamOptions {
            backoff_initial: Duration::from_secs(1),
            max_backoff: Duration::from_secs(10),
            ..StreamOptions::default()
        };
        for _ in 0..100 {
            let first = backoff(0, &options);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let third = backoff(2, &options);
            assert!(third >= Duration::from_millis(1125) && third <= Duration::from_millis(2250));
            let capped = backoff(40, &options);
            assert!(capped >= Duration::from_secs(5) && capped <= Duration::from_secs(10));
        }
    }
}
