//! The control loop: applies what events carry, reads the source when it changed or a read is
//! owed, and publishes a table for each change (`publish.rs`); logs a failing source once per
//! change of state.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{empty_list, health, listeners, reads, source, ServeOptions};
use crate::admin::ReadStatus;
use crate::marathon::{self, AppsSnapshot, ChangeSignal, Pending, StreamStatus};
use crate::metrics::Metrics;
use crate::proxy::accept::listener::Connections;
use crate::proxy::ProxyContext;
use crate::serve::pipeline::Pipeline;
use crate::tls::SharedCerts;

/// The control loop's state.
pub(super) struct Control {
    /// What the status page keeps: each table published is recorded there.
    pub(super) recorded: Arc<crate::admin::Recorded>,
    pub(super) metrics: Arc<Metrics>,
    /// The certificates, for TLS service ports.
    pub(super) certs: SharedCerts,
    /// The certificate files apps name, for the certificate watcher.
    pub(super) app_cert_files: watch::Sender<BTreeSet<std::path::PathBuf>>,
    pub(super) options: ServeOptions,
    /// Out (on a blocking thread) while a table is being built.
    pub(super) pipeline: Option<Pipeline>,
    pub(super) ctx: Arc<ProxyContext>,
    pub(super) connections: Connections,
    /// Open service-port listeners and the token that stops each.
    pub(super) service_listeners: listeners::ServiceListeners,
    pub(super) health_checkers: health::HealthCheckers,
    pub(super) reader: source::Reader,
    /// The last full document read: an identical one builds nothing.
    pub(super) last_body: Option<bytes::Bytes>,
    /// What the served table was built from, patched app by app between full reads.
    pub(super) snapshot: Option<AppsSnapshot>,
    /// Apps patched from events since they were last read, each with the number of the last
    /// batch of patches that changed it: a read that disagrees with one of them is a
    /// correction, unless the patch came after the read was sent.
    pub(super) patched: BTreeMap<String, u64>,
    /// Batches of patches applied so far.
    pub(super) patch_batches: u64,
    /// Since when, and how many times, reads have failed in a row (logged once per change of
    /// state, not per read).
    pub(super) failing: Option<Failing>,
    /// Holds back an empty app list until a later read confirms it.
    pub(super) empty_list: empty_list::EmptyListGuard,
    pub(super) read_status: watch::Sender<ReadStatus>,
    pub(super) generation: watch::Sender<u64>,
    pub(super) refreshes: watch::Sender<u64>,
}

impl Control {
    pub(super) async fn run(
        mut self,
        reload: Arc<Notify>,
        rebuild: Arc<Notify>,
        stream: watch::Sender<StreamStatus>,
        stop: CancellationToken,
    ) {
        let changed = Arc::new(ChangeSignal::default());
        let events = self.metrics.events.clone();
        let on_event = move |kind: &str| events.with_label_values(&[kind]).inc();
        self.reader
            .follow_events(changed.clone(), stream, on_event, stop.child_token());
        let mut tick = tokio::time::interval(self.reader.period(self.options.poll_interval));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut limiter = source::RefreshLimiter::new(self.reader.min_refresh_interval());
        // After a failed read: when to try again, and how many failures in a row.
        let mut retry: Option<(Instant, u32)> = None;
        // Reads owed to events: each confirms the patches of its app. They wait for the
        // limiter; the patches never do.
        let mut to_read = Pending::default();
        let mut reading: Option<JoinHandle<reads::Fetched>> = None;
        // The patch batches applied when the read beside the loop was sent.
        let mut sent_after = 0;
        loop {
            let retry_at = retry.map(|(at, _)| at);
            let confirm_at = self.empty_list.confirm_at().map(|at| at.into_std());
            let everything = Pending {
                all: true,
                ..Pending::default()
            };
            let read_owed = to_read.all || !to_read.apps.is_empty();
            let (forced, pending) = tokio::select! {
                // A read owed to events landed.
                fetched = join_read(&mut reading), if reading.is_some() => {
                    reading = None;
                    let refreshed = self.apply_fetched(fetched, sent_after).await;
                    retry = self.after_read(refreshed, retry);
                    continue;
                }
                // Not while a read runs beside the loop: it would land after this one.
                _ = tick.tick(), if reading.is_none() => (false, everything),
                () = reload.notified() => (true, everything),
                () = changed.changed() => {
                    // What events carry is served at once; the reads that confirm it follow
                    // (events arriving during a read or its wait collapse into one more).
                    let mut taken = changed.take();
                    let patches = std::mem::take(&mut taken.patches);
                    self.apply_patches(patches).await;
                    to_read.merge(taken);
                    continue;
                }
                () = limiter.acquire(), if read_owed && reading.is_none() => {
                    let owed = std::mem::take(&mut to_read);
                    match self.reader.client() {
                        // Beside the loop: patches keep being served while it reads.
                        Some(client) if self.snapshot.is_some() => {
                            sent_after = self.patch_batches;
                            reading = Some(tokio::spawn(super::reads::fetch(client, owed)));
                            continue;
                        }
                        _ => (false, owed),
                    }
                }
                () = sleep_until_some(retry_at), if reading.is_none() => (false, everything),
                () = sleep_until_some(confirm_at) => {
                    self.empty_list.take_confirm();
                    (false, everything)
                }
                () = rebuild.notified() => {
                    // Marathon-LB's SIGUSR1: a new table from what was last read.
                    if let Some(snapshot) = self.snapshot.take() {
                        self.publish(snapshot, None, Agents::LookUp).await;
                    }
                    continue;
                }
                () = stop.cancelled() => break,
            };
            let refreshed = if pending.all {
                self.refresh(forced).await
            } else {
                self.refresh_apps(pending).await
            };
            retry = self.after_read(refreshed, retry);
        }
        if let Some(reading) = reading {
            reading.abort();
        }
        self.drain().await;
    }

    /// After a read: the retry schedule (cleared by a success, pushed back by a failure), and
    /// the count tests wait on. `None`: there was nothing to read.
    fn after_read(
        &mut self,
        refreshed: Option<bool>,
        retry: Option<(Instant, u32)>,
    ) -> Option<(Instant, u32)> {
        let retry = match refreshed {
            Some(true) => None,
            Some(false) => {
                let failures = retry.map_or(0, |(_, n)| n + 1);
                Some((Instant::now() + self.retry_delay(failures), failures))
            }
            None => return retry,
        };
        self.refreshes.send_modify(|n| *n += 1);
        retry
    }

    /// Applies what events carry to the last snapshot and serves it at once. Before the first
    /// read there is nothing to patch: the read serves it all.
    async fn apply_patches(&mut self, patches: Vec<marathon::patch::EventPatch>) {
        let Some(mut snapshot) = self.snapshot.take() else {
            return;
        };
        let mut changed = BTreeSet::new();
        for patch in &patches {
            if snapshot.apply(patch) {
                self.metrics.event_patches.inc();
                changed.insert(patch.app_id().to_owned());
            }
        }
        if changed.is_empty() {
            self.snapshot = Some(snapshot);
            return;
        }
        self.patch_batches += 1;
        let batch = self.patch_batches;
        self.patched
            .extend(changed.iter().map(|id| (id.clone(), batch)));
        // The full document no longer matches what is served.
        self.last_body = None;
        self.publish(snapshot, Some(&changed), Agents::Known).await;
    }

    /// A failed read is tried again after a growing delay (×1.5, at most 30 s), so that a
    /// broken `/v2/apps` is not left alone until the next event or resync.
    fn retry_delay(&self, failures: u32) -> Duration {
        let initial = self.reader.retry_initial().as_secs_f64();
        Duration::from_secs_f64((initial * 1.5f64.powi(failures.min(32) as i32)).min(30.0))
    }

    /// Shows a held empty list in the read status (`/stats`) while it is held.
    pub(super) fn show_held_empty_list(&mut self) {
        let holding = self.empty_list.is_holding();
        self.read_status.send_if_modified(|status| {
            if status.held_empty_list_since.is_some() == holding {
                return false;
            }
            status.held_empty_list_since = holding.then(SystemTime::now);
            true
        });
    }

    /// Logs a source failure once when it starts and once when it ends, not on every read.
    pub(super) fn set_failing(&mut self, error: Option<&str>) {
        let now = SystemTime::now();
        match error {
            Some(_) => self.metrics.source_errors.inc(),
            None => {
                let unix = now
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                self.metrics.last_sync.set(unix as i64);
            }
        }
        self.read_status.send_modify(|status| match error {
            Some(error) => status.error = Some(error.to_owned()),
            None => {
                status.error = None;
                status.last_success = Some(now);
            }
        });
        match (error, &mut self.failing) {
            (Some(error), None) => {
                // Before the first table there is no last good one to fall back on.
                if self.ctx.table.load().generation() > 0 {
                    tracing::error!(%error, "cannot read the apps; serving the last good table");
                } else {
                    tracing::error!(%error, "cannot read the apps; nothing is routed until a read succeeds");
                }
                self.failing = Some(Failing {
                    since: Instant::now(),
                    reads: 1,
                });
            }
            (Some(error), Some(failing)) => {
                failing.reads += 1;
                tracing::debug!(%error, failed_reads = failing.reads, "cannot read the apps");
            }
            (None, Some(failing)) => {
                tracing::info!(
                    failed_reads = failing.reads,
                    failing_for_s = failing.since.elapsed().as_secs(),
                    "apps readable again"
                );
                self.failing = None;
            }
            (None, None) => {}
        }
    }

    async fn drain(self) {
        self.connections.shutdown.cancel();
        self.connections.tracker.close();
        let drained = tokio::time::timeout(
            self.options.proxy.drain_timeout,
            self.connections.tracker.wait(),
        )
        .await;
        if drained.is_err() {
            tracing::warn!("drain timeout: closing the connections still open");
        }
    }
}

/// Reads failing in a row.
#[derive(Debug, Clone, Copy)]
pub(super) struct Failing {
    since: Instant,
    reads: u32,
}

/// Which agents' names a publish looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Agents {
    /// Those of the changed apps not known yet (events and single-app reads: a change to one
    /// app must not wait on a DNS lookup per agent).
    Known,
    /// Every one again, forgetting those no task runs on (full reads).
    LookUp,
}

/// Documents at least this big are parsed on the blocking pool; smaller ones take less time
/// than the hop there and back.
pub(super) const OFFLOAD_BYTES: usize = 256 * 1024;

/// Runs CPU-heavy `work` on the blocking pool when it is `big`, so that it never stalls the
/// proxy's async workers; small work runs here. `None` when the runtime is shutting down.
pub(super) async fn offload<R: Send + 'static>(
    big: bool,
    work: impl FnOnce() -> R + Send + 'static,
) -> Option<R> {
    if !big {
        return Some(work());
    }
    match tokio::task::spawn_blocking(work).await {
        Ok(done) => Some(done),
        Err(join) if join.is_panic() => std::panic::resume_unwind(join.into_panic()),
        Err(_) => None,
    }
}

/// Waits until `at`, or forever without one.
/// The read running beside the loop (only polled while there is one).
async fn join_read(reading: &mut Option<JoinHandle<reads::Fetched>>) -> reads::Fetched {
    match reading {
        Some(handle) => match handle.await {
            Ok(fetched) => fetched,
            // The task panicked or was aborted: treat it as a failed full read.
            Err(err) => reads::Fetched::Full {
                read: Err(format!("the read stopped: {err}")),
                parsed: None,
            },
        },
        None => std::future::pending().await,
    }
}

async fn sleep_until_some(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}
