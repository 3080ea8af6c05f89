//! Keeping the certificates current for the TLS listeners, and saying which ones serve: each
//! certificate loaded is one log line (its source, names, subject and expiry, never its bytes)
//! at start and whenever it is loaded again; failures are counted and logged once per change.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use chrono::{DateTime, SecondsFormat, Utc};
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::tls::{CertStore, LoadedCert, Reload};

/// Keeps the certificate files current: every `interval`, on SIGHUP, and when the files apps
/// name change. A file that fails is logged (once per change) and its last good version stays.
pub(super) async fn watch(
    mut store: CertStore,
    interval: Duration,
    reload: Arc<Notify>,
    mut app_files: watch::Receiver<BTreeSet<PathBuf>>,
    reloads: watch::Sender<u64>,
    metrics: Arc<Metrics>,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let found = store.reload();
                report(&store, &found, &metrics);
            }
            () = reload.notified() => {
                let found = store.reload();
                report(&store, &found, &metrics);
                // Asked for (SIGHUP, /_mlb_signal/hup): say so even when nothing changed.
                tracing::info!(
                    serving = store.serving().len(),
                    loaded = found.loaded.len(),
                    failed = found.errors.len(),
                    "certificates reloaded"
                );
            }
            changed = app_files.changed() => {
                if changed.is_err() {
                    return;
                }
                let files = app_files.borrow_and_update().clone();
                let found = store.set_app_files(files);
                report(&store, &found, &metrics);
            }
            () = stop.cancelled() => return,
        };
        reloads.send_modify(|n| *n += 1);
    }
}

/// The first look, at start: every certificate that serves, every one that failed.
pub(super) fn report_start(store: &CertStore, first: &Reload, metrics: &Metrics) {
    log_errors(first, metrics);
    for cert in store.serving() {
        log_loaded(store, cert);
    }
    if !store.has_certificates() {
        tracing::warn!("no usable TLS certificate: HTTPS serves a self-signed one");
    }
    set_expiry(store, metrics);
}

/// A later look: what loaded anew and what failed.
fn report(store: &CertStore, found: &Reload, metrics: &Metrics) {
    log_errors(found, metrics);
    for cert in &found.loaded {
        log_loaded(store, cert);
    }
    if found.published {
        set_expiry(store, metrics);
    }
}

fn log_errors(found: &Reload, metrics: &Metrics) {
    for error in &found.errors {
        tracing::error!(%error, "certificate not loaded; its previous version (if any) keeps serving");
    }
    metrics.certificate_errors.inc_by(found.errors.len() as u64);
}

fn log_loaded(store: &CertStore, cert: &LoadedCert) {
    let default = store
        .serving()
        .first()
        .is_some_and(|first| first.source == cert.source);
    let days_left = cert
        .not_after
        .duration_since(SystemTime::now())
        .map_or(0, |left| left.as_secs() / 86_400);
    tracing::info!(
        source = %cert.source,
        names = %cert.names.join(","),
        subject = %cert.subject,
        expires = %DateTime::<Utc>::from(cert.not_after).to_rfc3339_opts(SecondsFormat::Secs, true),
        days_left,
        default,
        "certificate loaded"
    );
}

/// One series per certificate serving; those no longer served go.
fn set_expiry(store: &CertStore, metrics: &Metrics) {
    metrics.certificate_expiry.reset();
    for cert in store.serving() {
        let seconds = cert
            .not_after
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |at| at.as_secs());
        metrics
            .certificate_expiry
            .with_label_values(&[cert.source.as_str()])
            .set(i64::try_from(seconds).unwrap_or(i64::MAX));
    }
}
