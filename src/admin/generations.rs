//! The recent routing-table generations and what each changed, kept by the balancer (the
//! status page lists them, whenever it was opened). The control loop records each table it
//! publishes, with what it found the table changed.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use serde::Serialize;

use crate::routing::{ChangeKind, RoutingTable, TableChanges};

/// Entries kept.
pub const RECENT_GENERATIONS: usize = 20;
/// App ids an entry names in each of its lists.
const NAMED_APPS: usize = 5;

/// One generation as the status page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GenerationEntry {
    pub generation: u64,
    /// Generations published since the last entry and folded into this one.
    pub skipped: u64,
    pub at_unix_ms: u64,
    pub routes: usize,
    pub backends: usize,
    pub endpoints: usize,
    pub endpoints_added: usize,
    pub endpoints_removed: usize,
    pub apps_added: Named,
    pub apps_removed: Named,
    /// Apps whose endpoints or backends changed.
    pub apps_changed: Named,
}

/// The first [`NAMED_APPS`] app ids of a list and its length.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Named {
    pub count: usize,
    pub first: Vec<String>,
}

impl Named {
    fn of(apps: &BTreeSet<&str>) -> Named {
        Named {
            count: apps.len(),
            first: apps
                .iter()
                .take(NAMED_APPS)
                .map(|&a| a.to_owned())
                .collect(),
        }
    }
}

/// The log: see the module's comment.
#[derive(Debug, Default)]
pub struct GenerationLog {
    /// Oldest first.
    entries: VecDeque<GenerationEntry>,
    last_generation: u64,
}

impl GenerationLog {
    /// Newest first.
    pub fn recent(&self) -> Vec<GenerationEntry> {
        self.entries.iter().rev().cloned().collect()
    }

    /// Adds `entry` unless its generation is not newer than the last recorded.
    pub fn record(&mut self, mut entry: GenerationEntry) {
        if entry.generation <= self.last_generation {
            return;
        }
        entry.skipped = entry.generation - self.last_generation - 1;
        if self.entries.len() == RECENT_GENERATIONS {
            self.entries.pop_front();
        }
        self.last_generation = entry.generation;
        self.entries.push_back(entry);
    }
}

impl GenerationEntry {
    /// The entry for `table`, from what its publish found it changed (the backends a patch
    /// replaced, or the apps it rebuilt): a change to one app of thousands does not walk
    /// every backend's endpoints again.
    pub fn new(table: &RoutingTable, changes: &TableChanges<'_>, at_unix_ms: u64) -> Self {
        // Per app: its changes were all additions, all removals.
        let mut apps: BTreeMap<&str, (bool, bool, usize)> = BTreeMap::new();
        for change in &changes.backends {
            let app = apps
                .entry(change.app_id.as_str())
                .or_insert((true, true, 0));
            app.0 &= change.kind == ChangeKind::Added;
            app.1 &= change.kind == ChangeKind::Removed;
            app.2 += usize::from(change.kind == ChangeKind::Added);
        }
        let (mut added, mut removed, mut changed) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for (app, (all_added, all_removed, added_here)) in apps {
            let now = table.backends_of(app).len();
            // New: every backend it has now was added. Gone: it has none left.
            if all_added && now == added_here {
                added.insert(app);
            } else if all_removed && now == 0 {
                removed.insert(app);
            } else {
                changed.insert(app);
            }
        }
        let backends = table.backends();
        GenerationEntry {
            generation: table.generation(),
            skipped: 0,
            at_unix_ms,
            routes: table.route_count(),
            backends: backends.len(),
            endpoints: table.endpoint_count(),
            endpoints_added: changes.endpoints_added,
            endpoints_removed: changes.endpoints_removed,
            apps_added: Named::of(&added),
            apps_removed: Named::of(&removed),
            apps_changed: Named::of(&changed),
        }
    }
}
