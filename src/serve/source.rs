//! Where serve mode reads its `/v2/apps?embed=apps.tasks` documents from, and what tells it to
//! read again: a file's size and time, Marathon's event stream, or a polling timer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::marathon::{
    self, ChangeSignal, MarathonClient, MarathonConfig, StreamOptions, StreamStatus,
};

/// Where the apps come from.
// Made once at start and held by the control loop: its size does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Source {
    /// A file, re-read when its size or modification time changes (checked every
    /// `ServeOptions::poll_interval`).
    File(PathBuf),
    /// Marathon.
    Marathon(MarathonSource),
}

/// Marathon as a source: its client settings and how changes are noticed.
#[derive(Debug, Clone)]
pub struct MarathonSource {
    pub client: MarathonConfig,
    /// Follow `/v2/events` (Marathon-LB's `sse`); otherwise poll every
    /// `ServeOptions::poll_interval` (its `poll`).
    pub events: bool,
    pub stream: StreamOptions,
    /// A full refetch this often even without events (Marathon-LB: 300 s), repairing anything
    /// the stream missed.
    pub resync: Duration,
    /// The first change after a quiet spell is fetched at once; while changes keep coming,
    /// one refetch per this interval (see [`RefreshLimiter`]), so a burst of events costs a
    /// handful of fetches.
    pub min_refresh_interval: Duration,
    /// An app list with no apps right after one with apps is held, not served, until a read
    /// at least this much later confirms it (see `Control::hold_empty_list`).
    pub empty_list_confirm: Duration,
}

impl MarathonSource {
    /// The default wait before an empty app list is believed.
    pub const EMPTY_LIST_CONFIRM: Duration = Duration::from_secs(2);

    /// Event-stream mode with Marathon-LB's timings.
    pub fn new(client: MarathonConfig) -> MarathonSource {
        MarathonSource {
            client,
            events: true,
            stream: StreamOptions::default(),
            resync: Duration::from_secs(300),
            min_refresh_interval: Duration::from_millis(250),
            empty_list_confirm: MarathonSource::EMPTY_LIST_CONFIRM,
        }
    }
}

/// Reads the source's document when asked.
pub(super) struct Reader {
    source: Source,
    marathon: Option<Arc<MarathonClient>>,
    /// The file's (length, mtime) when last read.
    last_seen: Option<(u64, SystemTime)>,
}

impl Reader {
    pub(super) fn new(source: Source) -> Result<Reader, marathon::ConfigError> {
        let marathon = match &source {
            Source::Marathon(m) => Some(Arc::new(MarathonClient::new(m.client.clone())?)),
            Source::File(_) => None,
        };
        Ok(Reader {
            source,
            marathon,
            last_seen: None,
        })
    }

    /// How often the source is read without being told to: the file check, the poll, or the
    /// safety resync under the event stream.
    pub(super) fn period(&self, poll_interval: Duration) -> Duration {
        match &self.source {
            Source::Marathon(m) if m.events => m.resync,
            _ => poll_interval,
        }
    }

    /// The least time between two refetches triggered by changes.
    pub(super) fn min_refresh_interval(&self) -> Duration {
        match &self.source {
            Source::Marathon(m) => m.min_refresh_interval,
            Source::File(_) => Duration::ZERO,
        }
    }

    /// How long an empty app list is held before a confirming read may apply it; `None` for a
    /// file (the operator's own edit is applied as written).
    pub(super) fn empty_list_confirm(&self) -> Option<Duration> {
        match &self.source {
            Source::Marathon(m) => Some(m.empty_list_confirm),
            Source::File(_) => None,
        }
    }

    /// The first delay before a failed read is retried.
    pub(super) fn retry_initial(&self) -> Duration {
        match &self.source {
            Source::Marathon(m) => m.stream.backoff_initial,
            Source::File(_) => Duration::from_secs(1),
        }
    }

    /// Starts following the event stream when the source has one.
    pub(super) fn follow_events(
        &self,
        changed: Arc<ChangeSignal>,
        status: watch::Sender<StreamStatus>,
        on_event: impl Fn(&str) + Send + 'static,
        stop: CancellationToken,
    ) {
        if let (Source::Marathon(m), Some(client)) = (&self.source, &self.marathon) {
            if m.events {
                tokio::spawn(marathon::watch::follow(
                    client.clone(),
                    m.stream.clone(),
                    changed,
                    status,
                    on_event,
                    stop,
                ));
            }
        }
    }

    /// `/v2/apps/{id}` for each id (`None` for an app that no longer exists); `None` when the
    /// source cannot fetch single apps (a file).
    pub(super) async fn read_apps(
        &self,
        ids: &std::collections::BTreeSet<String>,
    ) -> Option<Result<Vec<(String, Option<Bytes>)>, String>> {
        let client = self.marathon.as_ref()?;
        Some(fetch_apps(client, ids).await)
    }

    /// Marathon's client, for reads that run beside the control loop; `None` for a file.
    pub(super) fn client(&self) -> Option<Arc<MarathonClient>> {
        self.marathon.clone()
    }

    /// Successful DC/OS logins (0 without a service account).
    pub(super) fn logins(&self) -> u64 {
        self.marathon.as_ref().map_or(0, |m| m.auth().logins())
    }

    /// The source's document; `None` when a file has not changed since it was last read.
    pub(super) async fn read(&mut self, forced: bool) -> Option<Result<Bytes, String>> {
        match &self.source {
            Source::File(path) => {
                let stamp = tokio::fs::metadata(path)
                    .await
                    .ok()
                    .and_then(|m| Some((m.len(), m.modified().ok()?)));
                if !forced && stamp.is_some() && stamp == self.last_seen {
                    return None;
                }
                self.last_seen = stamp;
                Some(
                    tokio::fs::read(path)
                        .await
                        .map(Bytes::from)
                        .map_err(|e| format!("{}: {e}", path.display())),
                )
            }
            Source::Marathon(_) => {
                let client = self.marathon.as_ref()?;
                Some(client.fetch_apps().await.map_err(|e| e.to_string()))
            }
        }
    }
}

/// Spaces out refetches triggered by changes: a token bucket holding four refetches, refilled
/// one per `interval`. One change causes up to four (a task start and a kill each bring two
/// events, which may arrive in separate reads), so a change after a quiet spell is fetched at
/// once however its events fall; a sustained burst of events costs one refetch per `interval`.
#[derive(Debug)]
pub(super) struct RefreshLimiter {
    interval: Duration,
    tokens: f64,
    updated: tokio::time::Instant,
}

const REFRESH_BURST: f64 = 4.0;

impl RefreshLimiter {
    pub(super) fn new(interval: Duration) -> RefreshLimiter {
        RefreshLimiter {
            interval,
            tokens: REFRESH_BURST,
            updated: tokio::time::Instant::now(),
        }
    }

    /// Waits until a refetch may start, and takes its token.
    pub(super) async fn acquire(&mut self) {
        if self.interval.is_zero() {
            return;
        }
        let now = tokio::time::Instant::now();
        let refilled = (now - self.updated).as_secs_f64() / self.interval.as_secs_f64();
        self.tokens = (self.tokens + refilled).min(REFRESH_BURST);
        self.updated = now;
        if self.tokens < 1.0 {
            let wait = self.interval.mul_f64(1.0 - self.tokens);
            tokio::time::sleep(wait).await;
            self.tokens = 1.0;
            self.updated = tokio::time::Instant::now();
        }
        self.tokens -= 1.0;
    }
}

/// `/v2/apps/{id}` for each id, one after the other (`None` for an app that no longer exists);
/// the first failure ends it.
pub(super) async fn fetch_apps(
    client: &MarathonClient,
    ids: &std::collections::BTreeSet<String>,
) -> super::reads::AppDocuments {
    let mut documents = Vec::with_capacity(ids.len());
    for id in ids {
        let body = client.fetch_app(id).await.map_err(|e| e.to_string())?;
        documents.push((id.clone(), body));
    }
    Ok(documents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn four_refetches_at_once_then_one_per_interval() {
        let interval = Duration::from_millis(250);
        let mut limiter = RefreshLimiter::new(interval);
        let start = tokio::time::Instant::now();
        for _ in 0..4 {
            limiter.acquire().await;
        }
        assert_eq!(start.elapsed(), Duration::ZERO);
        limiter.acquire().await;
        assert_eq!(start.elapsed(), interval);
        limiter.acquire().await;
        assert_eq!(start.elapsed(), interval * 2);
        // A quiet spell refills the bucket, but never beyond four.
        tokio::time::sleep(interval * 10).await;
        let quiet = tokio::time::Instant::now();
        for _ in 0..4 {
            limiter.acquire().await;
        }
        assert_eq!(quiet.elapsed(), Duration::ZERO);
        limiter.acquire().await;
        assert_eq!(quiet.elapsed(), interval);
    }
}
