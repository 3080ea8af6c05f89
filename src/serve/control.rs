//! The control loop: reads the source when it changed, builds and publishes tables, and
//! reconciles listeners and health checkers to each one.

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
use crate::routing::RoutingTable;
use crate::serve::pipeline::Pipeline;
use crate::tls::SharedCerts;

/// The control loop's state.
pub(super) struct Control {
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
    /// Whether the last read failed (log once per state change, not per poll).
    pub(super) failing: bool,
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

    /// Builds the table for `snapshot` (where only the `changed` apps differ from the last one,
    /// when given), serves it, and reconciles listeners and checkers.
    pub(super) async fn publish(
        &mut self,
        snapshot: AppsSnapshot,
        changed: Option<&BTreeSet<String>>,
        agents: Agents,
    ) {
        let started = Instant::now();
        let Some(mut pipeline) = self.pipeline.take() else {
            return;
        };
        let agents = match (changed, agents) {
            (Some(changed), Agents::Known) => pipeline.resolve_changed(&snapshot, changed).await,
            _ => pipeline.resolve(&snapshot).await,
        };
        let changed = changed.cloned();
        // The model and the table are CPU work (seconds for tens of thousands of apps): on a
        // blocking thread, with the replaced snapshot dropped there too. A patch of a few apps
        // costs less than the hop, which on a busy machine waits for the thread's turn.
        let replaced = self.snapshot.take();
        let big = snapshot.apps.len() >= OFFLOAD_APPS;
        let heavy = match &changed {
            Some(changed) => {
                changed.len() >= OFFLOAD_APPS || snapshot.apps.len() >= PATCH_HERE_APPS
            }
            None => big,
        };
        let built = offload(heavy, move || {
            drop(replaced);
            let table = pipeline.build(&snapshot, agents, changed.as_ref());
            (pipeline, table, snapshot)
        })
        .await;
        // `None`: the runtime is shutting down.
        let Some((pipeline, table, snapshot)) = built else {
            return;
        };
        self.pipeline = Some(pipeline);
        // Requests see the new table first; the bookkeeping below follows.
        let table = Arc::new(table);
        let replaced = self.ctx.table.publish(table.clone());
        self.metrics
            .table_build_seconds
            .observe(started.elapsed().as_secs_f64());
        let changes = table.replaced_in(&replaced);
        // Freeing thousands of backends would hold up this task (and the reconciling below):
        // the build's threads (rayon's pool) free a big table, unless a request still holds
        // it. The blocks the freeing thread allocated go straight back to its free lists, where
        // the next build allocates; freed from any other thread, every block waits on a
        // cross-thread list until its thread collects it (the next 10,000-app build took
        // 15–25 % longer that way). A table that shares its indexes frees only what it replaced.
        if big && changes.is_none() {
            rayon::spawn(move || drop(replaced));
        } else {
            drop(replaced);
        }
        table.observe(&self.metrics, snapshot.apps.len());
        self.snapshot = Some(snapshot);
        let generation = table.generation();
        let shutdown = &self.connections.shutdown;
        match &changes {
            // Only tasks changed: the same listeners, and checkers for the replaced backends.
            Some(changes) => {
                self.health_checkers
                    .reconcile_replaced(&changes.old, &changes.new, shutdown);
            }
            None => self.health_checkers.reconcile(&table, shutdown),
        }
        // A listener that could not be opened is tried again with every table.
        if changes.is_none() || !self.service_listeners.all_open() {
            self.reconcile_listeners(&table).await;
        }
        tracing::info!(generation, "routing table published");
        let _ = self.generation.send(generation);
    }

    /// Opens and stops service-port listeners as `table` asks, and tells the certificate
    /// watcher which files the apps name.
    async fn reconcile_listeners(&mut self, table: &RoutingTable) {
        let desired = listeners::desired(table, self.options.bind_address);
        let cert_files: BTreeSet<_> = desired.keys().filter_map(|k| k.3.clone()).collect();
        self.app_cert_files.send_if_modified(|files| {
            let changed = *files != cert_files;
            *files = cert_files;
            changed
        });
        self.service_listeners
            .reconcile(desired, &self.ctx, &self.connections, &self.certs)
            .await;
        // Sockets a predecessor handed over that this table has no listener for.
        crate::handover::release_unclaimed();
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

    /// Logs a source failure once when it starts and once when it ends, not on every poll.
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
        match (error, self.failing) {
            (Some(error), false) => {
                tracing::error!(%error, "cannot read the apps; serving the last good table");
                self.failing = true;
            }
            (None, true) => {
                tracing::info!("apps readable again");
                self.failing = false;
            }
            _ => {}
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

/// Which agents' names a publish looks up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Agents {
    /// Those of the changed apps not known yet (events and single-app reads: a change to one
    /// app must not wait on a DNS lookup per agent).
    Known,
    /// Every one again, forgetting those no task runs on (full reads).
    LookUp,
}

/// Documents and app lists at least this big are parsed and built on the blocking pool;
/// smaller ones take less time than the hop there and back.
pub(super) const OFFLOAD_BYTES: usize = 256 * 1024;
const OFFLOAD_APPS: usize = 200;
/// A patch to a list of fewer apps than this is built on the control loop's worker (its parts
/// that walk every app take well under a millisecond there).
const PATCH_HERE_APPS: usize = 10_000;

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
