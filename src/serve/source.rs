//! Where serve mode reads its `/v2/apps?embed=apps.tasks` documents from, and what tells it to
//! read again: a file's size and time, Marathon's event stream, or a polling timer.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::marathon::{self, MarathonClient, MarathonConfig, StreamOptions, StreamStatus};

/// Where the apps come from.
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
    /// refetches are at least this far apart, so a burst of events costs a handful of fetches.
    pub min_refresh_interval: Duration,
}

impl MarathonSource {
    /// Event-stream mode with Marathon-LB's timings.
    pub fn new(client: MarathonConfig) -> MarathonSource {
        MarathonSource {
            client,
            events: true,
            stream: StreamOptions::default(),
            resync: Duration::from_secs(300),
            min_refresh_interval: Duration::from_millis(250),
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
        changed: Arc<Notify>,
        status: watch::Sender<StreamStatus>,
        stop: CancellationToken,
    ) {
        if let (Source::Marathon(m), Some(client)) = (&self.source, &self.marathon) {
            if m.events {
                tokio::spawn(marathon::watch::follow(
                    client.clone(),
                    m.stream.clone(),
                    changed,
                    status,
                    stop,
                ));
            }
        }
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
