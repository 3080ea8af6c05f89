//! Publishing a table: build it from a snapshot (on a blocking thread when big), swap it in,
//! reconcile health checkers and listeners to it, and announce what it changed.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use super::announce::Announcement;
use super::control::{offload, Agents, Control};
use super::listeners;
use crate::marathon::AppsSnapshot;
use crate::routing::{RoutingTable, Scope};

/// App lists at least this big are built on the blocking pool; smaller ones take less time
/// than the hop there and back.
const OFFLOAD_APPS: usize = 200;
/// A patch to a list of fewer apps than this is built on the control loop's worker (its parts
/// that walk every app take well under a millisecond there).
const PATCH_HERE_APPS: usize = 10_000;

impl Control {
    /// Builds the table for `snapshot` (where only the `changed` apps differ from the last one,
    /// when given), serves it, reconciles listeners and checkers, and logs what changed.
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
            // Only the changed apps may differ when the build did not fall back to a full one.
            let changed = changed.filter(|_| pipeline.last_build_patched());
            (pipeline, table, snapshot, changed)
        })
        .await;
        // `None`: the runtime is shutting down.
        let Some((pipeline, table, snapshot, changed)) = built else {
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
        // What the table changed is worked out where the last is freed: a table built anew is
        // compared backend by backend, which a big one should not do on this task either.
        let announcement = if big && changes.is_none() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            let new = table.clone();
            rayon::spawn(move || {
                let scope = Scope {
                    apps: changed.as_ref(),
                    replaced: None,
                };
                let _ = tx.send(Announcement::new(&new, &replaced, scope));
                drop(replaced);
            });
            Pending::Elsewhere(rx)
        } else {
            let scope = Scope {
                apps: changed.as_ref(),
                replaced: changes.as_ref(),
            };
            let announcement = Announcement::new(&table, &replaced, scope);
            drop(replaced);
            Pending::Ready(Box::new(announcement))
        };
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
        let announcement = match announcement {
            Pending::Ready(announcement) => Some(*announcement),
            Pending::Elsewhere(rx) => rx.await.ok(),
        };
        match announcement {
            Some(announcement) => {
                announcement.log();
                self.recorded
                    .record_generation(announcement.entry, &announcement.added);
            }
            None => tracing::info!(generation, "routing table published"),
        }
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
}

/// An announcement worked out here, or on rayon's pool beside the reconciling.
enum Pending {
    Ready(Box<Announcement>),
    Elsewhere(tokio::sync::oneshot::Receiver<Announcement>),
}
