//! What a table changed in the one before it: backends added, removed or configured otherwise,
//! endpoints that came and went, problems that appeared or went away. The serve loop logs it
//! with every table, so it reads only what the build says may differ: the backends a patch
//! replaced, or the apps it rebuilt. A table built anew is compared whole, in the order both
//! tables keep (backends by app id and port index, problems sorted), one pass each.

use std::collections::BTreeSet;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use super::{Backend, Replaced, RoutingTable};
use crate::model::Problem;

/// How far a table may differ from the last, as its build knows it.
#[derive(Debug, Clone, Copy, Default)]
pub struct Scope<'a> {
    /// Only these apps were built again; `None`: anything may differ.
    pub apps: Option<&'a BTreeSet<String>>,
    /// The backends the table replaced when it shares the last one's indexes.
    pub replaced: Option<&'a Replaced>,
}

/// What one table changed in the last.
#[derive(Debug, Default)]
pub struct TableChanges<'t> {
    pub backends_added: usize,
    pub backends_removed: usize,
    /// Same app port, configured otherwise (labels, service port, mode, health check).
    pub backends_changed: usize,
    /// Endpoints routed now that were not (a task started or passed its health check).
    pub endpoints_added: usize,
    /// Endpoints no longer routed (a task ended, failed its health check or was moved).
    pub endpoints_removed: usize,
    /// Endpoints still there that a zero-downtime deployment now drains (no new requests).
    pub endpoints_draining: usize,
    /// The backends that changed, each with what changed in it, in table order.
    pub backends: Vec<BackendChange>,
    /// Problems of the new table that the last did not have, sorted.
    pub problems_found: Vec<&'t Problem>,
    /// Problems of the last table the new one no longer has, sorted.
    pub problems_resolved: Vec<&'t Problem>,
}

/// One backend's change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendChange {
    pub name: Box<str>,
    pub app_id: crate::model::AppId,
    /// Its name in the last table when that differs (its service port changed).
    pub was: Option<Box<str>>,
    pub kind: ChangeKind,
    pub endpoints_added: usize,
    pub endpoints_removed: usize,
    pub endpoints_draining: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    /// Configured otherwise (it may also have gained or lost endpoints).
    Configured,
    /// Only its endpoints changed.
    Endpoints,
}

/// Backends a summary names before it counts the rest.
const NAMED_BACKENDS: usize = 3;

impl RoutingTable {
    /// What this table changed in `last`, reading only what `scope` says may differ.
    pub fn changes_since<'t>(
        &'t self,
        last: &'t RoutingTable,
        scope: Scope<'_>,
    ) -> TableChanges<'t> {
        let mut changes = TableChanges::default();
        match (scope.replaced, scope.apps) {
            (Some(replaced), _) => {
                for (old, new) in replaced.old.iter().zip(&replaced.new) {
                    changes.pair(Some(old), Some(new));
                }
            }
            (None, Some(apps)) => {
                for app in apps {
                    let (old, new) = (
                        app_slice(&last.backends, app),
                        app_slice(&self.backends, app),
                    );
                    merge(old, new, backend_key, |a, b| changes.pair(a, b));
                }
            }
            (None, None) => merge(&last.backends, &self.backends, backend_key, |a, b| {
                changes.pair(a, b)
            }),
        }
        let mut found = BTreeSet::new();
        let mut resolved = BTreeSet::new();
        let mut diff = |old: &'t [Problem], new: &'t [Problem]| {
            merge(
                old,
                new,
                |p| p,
                |a, b| match (a, b) {
                    (Some(gone), None) => {
                        resolved.insert(gone);
                    }
                    (None, Some(new)) => {
                        found.insert(new);
                    }
                    _ => {}
                },
            );
        };
        match scope.apps {
            Some(apps) => {
                for app in apps {
                    diff(
                        problem_slice(&last.problems, app),
                        problem_slice(&self.problems, app),
                    );
                }
                // Listener conflicts are settled over every backend: when the indexes were
                // built again, a change to one app may move another's (they are few).
                if !self.shares_indexes_with(last) {
                    let sorted = |problems: &'t [Problem]| {
                        let mut sorted: Vec<&'t Problem> = problems.iter().collect();
                        sorted.sort();
                        sorted
                    };
                    let old = sorted(&last.indexes.problems);
                    let new = sorted(&self.indexes.problems);
                    merge(
                        &old,
                        &new,
                        |p| *p,
                        |a, b| match (a, b) {
                            (Some(&gone), None) => {
                                resolved.insert(gone);
                            }
                            (None, Some(&new)) => {
                                found.insert(new);
                            }
                            _ => {}
                        },
                    );
                }
            }
            None => diff(&last.problems, &self.problems),
        }
        changes.problems_found = found.into_iter().collect();
        changes.problems_resolved = resolved.into_iter().collect();
        changes
    }
}

impl TableChanges<'_> {
    fn pair(&mut self, old: Option<&Arc<Backend>>, new: Option<&Arc<Backend>>) {
        let change = match (old, new) {
            (Some(old), Some(new)) if Arc::ptr_eq(old, new) => return,
            (Some(old), Some(new)) => {
                let (added, removed, draining) = endpoint_changes(old, new);
                let configured = configured_otherwise(old, new);
                if configured {
                    self.backends_changed += 1;
                } else if added + removed + draining == 0 {
                    return;
                }
                BackendChange {
                    name: new.name.clone(),
                    app_id: new.app_id().clone(),
                    was: (old.name != new.name).then(|| old.name.clone()),
                    kind: if configured {
                        ChangeKind::Configured
                    } else {
                        ChangeKind::Endpoints
                    },
                    endpoints_added: added,
                    endpoints_removed: removed,
                    endpoints_draining: draining,
                }
            }
            (None, Some(new)) => {
                self.backends_added += 1;
                BackendChange {
                    name: new.name.clone(),
                    app_id: new.app_id().clone(),
                    was: None,
                    kind: ChangeKind::Added,
                    endpoints_added: new.endpoints().len(),
                    endpoints_removed: 0,
                    endpoints_draining: 0,
                }
            }
            (Some(old), None) => {
                self.backends_removed += 1;
                BackendChange {
                    name: old.name.clone(),
                    app_id: old.app_id().clone(),
                    was: None,
                    kind: ChangeKind::Removed,
                    endpoints_added: 0,
                    endpoints_removed: old.endpoints().len(),
                    endpoints_draining: 0,
                }
            }
            (None, None) => return,
        };
        self.endpoints_added += change.endpoints_added;
        self.endpoints_removed += change.endpoints_removed;
        self.endpoints_draining += change.endpoints_draining;
        self.backends.push(change);
    }
}

/// The backends named, then how many more: `tweeter_10000: 1 endpoint added; web_80 added
/// (3 endpoints); and 2 more backends`.
impl fmt::Display for TableChanges<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.backends.is_empty() {
            return f.write_str("no route or endpoint changed");
        }
        for (i, change) in self.backends.iter().take(NAMED_BACKENDS).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{change}")?;
        }
        let more = self.backends.len().saturating_sub(NAMED_BACKENDS);
        if more > 0 {
            write!(f, "; and {more} more backend{}", plural(more))?;
        }
        Ok(())
    }
}

impl fmt::Display for BackendChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (added, removed) = (self.endpoints_added, self.endpoints_removed);
        match self.kind {
            ChangeKind::Added => {
                write!(f, "{} added ({added} endpoint{})", self.name, plural(added))
            }
            ChangeKind::Removed => write!(f, "{} removed", self.name),
            ChangeKind::Configured | ChangeKind::Endpoints => {
                write!(f, "{}", self.name)?;
                if let Some(was) = &self.was {
                    write!(f, " (was {was})")?;
                }
                f.write_str(":")?;
                let mut parts = Vec::with_capacity(3);
                if self.kind == ChangeKind::Configured {
                    parts.push("configuration changed".to_owned());
                }
                if added > 0 {
                    parts.push(format!("{added} endpoint{} added", plural(added)));
                }
                if removed > 0 {
                    parts.push(format!("{removed} endpoint{} removed", plural(removed)));
                }
                let draining = self.endpoints_draining;
                if draining > 0 {
                    parts.push(format!("{draining} endpoint{} draining", plural(draining)));
                }
                write!(f, " {}", parts.join(", "))
            }
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

fn backend_key(backend: &Arc<Backend>) -> (&str, usize) {
    (backend.app_id().as_str(), backend.service.port_index)
}

/// Whether anything but its tasks differs: what it routes from, how it balances and checks.
fn configured_otherwise(old: &Backend, new: &Backend) -> bool {
    let (a, b) = (&old.service, &new.service);
    old.name != new.name
        || a.mode != b.mode
        || a.weight != b.weight
        || a.labels != b.labels
        || a.health_check != b.health_check
}

/// By address: endpoints `new` routes that `old` did not, the reverse, and those both have
/// that `new` drains and `old` did not.
fn endpoint_changes(old: &Backend, new: &Backend) -> (usize, usize, usize) {
    if old.endpoints() == new.endpoints() {
        return (0, 0, 0);
    }
    let addrs = |b: &Backend| {
        let mut addrs: Vec<(SocketAddr, bool)> =
            b.endpoints().iter().map(|e| (e.addr, e.draining)).collect();
        addrs.sort_unstable();
        addrs.dedup_by_key(|(addr, _)| *addr);
        addrs
    };
    let (old, new) = (addrs(old), addrs(new));
    let (mut added, mut removed, mut draining) = (0, 0, 0);
    merge(
        &old,
        &new,
        |(addr, _)| addr,
        |a, b| match (a, b) {
            (Some(_), None) => removed += 1,
            (None, Some(_)) => added += 1,
            (Some((_, false)), Some((_, true))) => draining += 1,
            _ => {}
        },
    );
    (added, removed, draining)
}

/// The backends of `app` (sorted by app id, so they are next to each other).
fn app_slice<'a>(backends: &'a [Arc<Backend>], app: &str) -> &'a [Arc<Backend>] {
    let start = backends.partition_point(|b| b.app_id().as_str() < app);
    let len = backends[start..].partition_point(|b| b.app_id().as_str() == app);
    &backends[start..start + len]
}

/// The problems of `app` (sorted, app id first).
fn problem_slice<'a>(problems: &'a [Problem], app: &str) -> &'a [Problem] {
    let start = problems.partition_point(|p| p.app_id.as_deref() < Some(app));
    let len = problems[start..].partition_point(|p| p.app_id.as_deref() == Some(app));
    &problems[start..start + len]
}

/// Walks two lists sorted by `key` side by side, calling `on` with each key's item from either
/// side (both when both have it).
fn merge<'a, T, K: Ord>(
    old: &'a [T],
    new: &'a [T],
    key: impl Fn(&'a T) -> K,
    mut on: impl FnMut(Option<&'a T>, Option<&'a T>),
) {
    let (mut old, mut new) = (old.iter().peekable(), new.iter().peekable());
    loop {
        let order = match (old.peek(), new.peek()) {
            (None, None) => return,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(&a), Some(&b)) => key(a).cmp(&key(b)),
        };
        match order {
            std::cmp::Ordering::Less => on(old.next(), None),
            std::cmp::Ordering::Greater => on(None, new.next()),
            std::cmp::Ordering::Equal => on(old.next(), new.next()),
        }
    }
}
