//! Reading the source: the full list and single apps, and applying what a read says. Reads
//! owed to events run beside the control loop (`fetch`), so that the patches events carry are
//! served while a read is on its way; the loop applies the read when it lands.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;

use super::control::{offload, Agents, Control, OFFLOAD_BYTES};
use super::empty_list;
use crate::marathon::{self, AppsSnapshot, MarathonClient, Pending};

/// Single-app documents by id (`None` for an app that no longer exists), or why they could not
/// be read.
pub(super) type AppDocuments = Result<Vec<(String, Option<Bytes>)>, String>;

/// What a read owed to events brought back.
pub(super) enum Fetched {
    /// The whole list, parsed beside the loop.
    Full {
        read: Result<Bytes, String>,
        parsed: Option<Result<AppsSnapshot, String>>,
    },
    /// Single apps.
    Apps {
        pending: Pending,
        documents: AppDocuments,
    },
}

/// Reads what `pending` asks for, beside the control loop.
pub(super) async fn fetch(client: Arc<MarathonClient>, pending: Pending) -> Fetched {
    if pending.all {
        let read = client.fetch_apps().await.map_err(|e| e.to_string());
        let parsed = match &read {
            Ok(body) => parse(body.clone()).await,
            Err(_) => None,
        };
        return Fetched::Full { read, parsed };
    }
    let documents = super::source::fetch_apps(&client, &pending.apps).await;
    Fetched::Apps { pending, documents }
}

/// Parses a full document; tens of megabytes of JSON take a while: off the async workers.
/// `None` when the runtime is shutting down.
async fn parse(body: Bytes) -> Option<Result<AppsSnapshot, String>> {
    let big = body.len() >= OFFLOAD_BYTES;
    offload(big, move || {
        marathon::parse_apps(&body).map_err(|e| e.to_string())
    })
    .await
}

impl Control {
    /// The apps a full read sees otherwise than the snapshot served; `None` when it cannot
    /// tell app by app (nothing served yet, unreadable apps either side, or more than a quarter
    /// of the apps changed).
    /// Apps patched from events before it was sent that it sees otherwise are counted as
    /// corrections: every such patch is confirmed (or corrected) by it.
    fn differing_apps(&mut self, read: &AppsSnapshot, sent_after: u64) -> Option<BTreeSet<String>> {
        let mut confirmed = Vec::new();
        self.patched.retain(|id, &mut batch| {
            let sent_before = batch <= sent_after;
            if sent_before {
                confirmed.push(id.clone());
            }
            !sent_before
        });
        let held = self.snapshot.as_ref()?;
        let corrected = confirmed
            .iter()
            .filter(|id| held.app(id) != read.app(id))
            .count();
        self.metrics.read_corrections.inc_by(corrected as u64);
        if !held.errors.is_empty() || !read.errors.is_empty() {
            return None;
        }
        let limit = held.apps.len().max(read.apps.len()) / 4 + 16;
        let differing = marathon::snapshot::differing_apps(held, read, limit)?;
        Some(differing.into_iter().map(str::to_owned).collect())
    }

    /// Apps patched after the read was sent keep what the patches made of them: the read may
    /// predate their events, and a read of each is owed anyway. Whether there were any.
    fn keep_later_patches(&self, read: &mut AppsSnapshot, sent_after: u64) -> bool {
        let mut later = self
            .patched
            .iter()
            .filter(|(_, &batch)| batch > sent_after)
            .map(|(id, _)| id)
            .peekable();
        let any = later.peek().is_some();
        if let Some(held) = self.snapshot.as_ref() {
            for id in later {
                read.patch(id, held.app(id).cloned());
            }
        }
        any
    }

    /// Applies a read that ran beside the loop, sent when `sent_after` patch batches had been
    /// applied.
    pub(super) async fn apply_fetched(
        &mut self,
        fetched: Fetched,
        sent_after: u64,
    ) -> Option<bool> {
        match fetched {
            Fetched::Full { read, parsed } => {
                self.apply_full(read, parsed, false, sent_after).await
            }
            Fetched::Apps { pending, documents } => {
                self.apply_apps(&pending, Some(documents), sent_after).await
            }
        }
    }

    /// Reads the source if it changed (or `forced`) and publishes what it holds. `None` when
    /// there was nothing to read, else whether the read succeeded.
    pub(super) async fn refresh(&mut self, forced: bool) -> Option<bool> {
        let read = self.reader.read(forced).await?;
        self.apply_full(read, None, forced, self.patch_batches)
            .await
    }

    /// Applies a full read (its document already parsed when `parsed` holds it), sent when
    /// `sent_after` patch batches had been applied.
    pub(super) async fn apply_full(
        &mut self,
        read: Result<Bytes, String>,
        parsed: Option<Result<AppsSnapshot, String>>,
        forced: bool,
        sent_after: u64,
    ) -> Option<bool> {
        self.metrics.refetches.with_label_values(&["full"]).inc();
        self.metrics.logins.observe(self.reader.logins());
        let body = match read {
            Ok(body) => body,
            Err(message) => {
                self.set_failing(Some(&message));
                return Some(false);
            }
        };
        if !forced && self.last_body.as_ref() == Some(&body) {
            self.set_failing(None);
            // The list being served again: nothing is held any more.
            self.empty_list.release();
            self.show_held_empty_list();
            return Some(true);
        }
        let parsed = match parsed {
            Some(parsed) => Some(parsed),
            None => parse(body.clone()).await,
        };
        let mut snapshot = match parsed {
            Some(Ok(snapshot)) => snapshot,
            Some(Err(err)) => {
                self.set_failing(Some(&err));
                return Some(false);
            }
            // The runtime is shutting down.
            None => return None,
        };
        self.set_failing(None);
        let serving = self.snapshot.as_ref().map_or(0, |s| s.apps.len());
        let verdict = self.empty_list.judge(snapshot.apps.len(), serving);
        self.show_held_empty_list();
        match verdict {
            empty_list::Verdict::Hold { first: true } => {
                tracing::warn!(
                    confirm_after_s = self.empty_list.confirm_after().as_secs_f64(),
                    "Marathon listed no apps: keeping the current routes until a later read confirms it"
                );
                self.metrics.snapshots_held.inc();
                return Some(true);
            }
            empty_list::Verdict::Hold { first: false } => return Some(true),
            empty_list::Verdict::Apply if snapshot.apps.is_empty() && serving > 0 => {
                tracing::warn!("the empty app list is confirmed: removing every route");
            }
            empty_list::Verdict::Apply => {}
        }
        // After events patched it, a full read mostly confirms what is served: only the apps
        // it sees otherwise are built again, and none at all when it agrees.
        let later = self.keep_later_patches(&mut snapshot, sent_after);
        let differing = self.differing_apps(&snapshot, sent_after);
        // With later patches kept, what is served is not the document any more.
        self.last_body = (!later).then_some(body);
        match differing {
            Some(apps) if apps.is_empty() => self.snapshot = Some(snapshot),
            Some(apps) => self.publish(snapshot, Some(&apps), Agents::LookUp).await,
            None => self.publish(snapshot, None, Agents::LookUp).await,
        }
        Some(true)
    }

    /// Refetches only the apps events named and patches the last snapshot with them; a full
    /// refresh when there is no snapshot yet or a single-app fetch fails.
    pub(super) async fn refresh_apps(&mut self, pending: Pending) -> Option<bool> {
        if pending.apps.is_empty() {
            return None;
        }
        if self.snapshot.is_none() {
            return self.refresh(false).await;
        }
        let documents = self.reader.read_apps(&pending.apps).await;
        self.apply_apps(&pending, documents, self.patch_batches)
            .await
    }

    /// Applies single-app reads: each app's document replaces what the snapshot holds where
    /// they differ. A failed or unreadable answer falls back to a full read.
    pub(super) async fn apply_apps(
        &mut self,
        pending: &Pending,
        documents: Option<AppDocuments>,
        sent_after: u64,
    ) -> Option<bool> {
        let Some(mut snapshot) = self.snapshot.take() else {
            return self.refresh(false).await;
        };
        self.metrics
            .refetches
            .with_label_values(&["app"])
            .inc_by(pending.apps.len() as u64);
        // A read may have logged in again (an expired token).
        self.metrics.logins.observe(self.reader.logins());
        let documents = match documents {
            Some(Ok(documents)) => documents,
            Some(Err(_)) | None => {
                self.snapshot = Some(snapshot);
                return self.refresh(false).await;
            }
        };
        let mut changed = BTreeSet::new();
        for (id, body) in documents {
            // A malformed answer is judged the way the full list judges it.
            let app = match body.as_deref().map(marathon::parse_app).transpose() {
                Ok(None) => None,
                Ok(Some(Ok(app))) => Some(app),
                Ok(Some(Err(_))) | Err(_) => {
                    self.snapshot = Some(snapshot);
                    return self.refresh(false).await;
                }
            };
            // Patched after the read was sent: the read may predate the event, and another
            // read of the app is owed.
            if self
                .patched
                .get(&id)
                .is_some_and(|&batch| batch > sent_after)
            {
                continue;
            }
            // A read that agrees with what events patched in changes nothing; one that
            // disagrees wins, and is counted.
            let held = snapshot.app(&id);
            let patched = self.patched.remove(&id).is_some();
            if held != app.as_ref() {
                if patched {
                    self.metrics.read_corrections.inc();
                }
                snapshot.patch(&id, app);
                changed.insert(id);
            }
        }
        // The full document no longer matches what is served.
        self.last_body = None;
        self.set_failing(None);
        if !changed.is_empty() {
            self.publish(snapshot, Some(&changed), Agents::Known).await;
        } else {
            self.snapshot = Some(snapshot);
        }
        Some(true)
    }
}
