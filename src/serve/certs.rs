//! Keeping the certificate files current for the TLS listeners.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::tls::CertStore;

/// Keeps the certificate files current: every `interval`, on SIGHUP, and when the files apps
/// name change. A file that fails is logged (once per change) and its last good version stays.
pub(super) async fn watch(
    mut store: CertStore,
    interval: Duration,
    reload: Arc<Notify>,
    mut app_files: watch::Receiver<BTreeSet<PathBuf>>,
    reloads: watch::Sender<u64>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let errors = tokio::select! {
            _ = tick.tick() => store.reload(),
            () = reload.notified() => store.reload(),
            changed = app_files.changed() => {
                if changed.is_err() {
                    return;
                }
                let files = app_files.borrow_and_update().clone();
                store.set_app_files(files)
            }
            () = stop.cancelled() => return,
        };
        for error in errors {
            tracing::error!(%error, "certificate not loaded; its previous version (if any) keeps serving");
        }
        reloads.send_modify(|n| *n += 1);
    }
}
