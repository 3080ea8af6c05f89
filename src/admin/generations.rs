//! The recent routing-table generations and what each changed, kept by the balancer (the
//! status page lists them, whenever it was opened). The recorder looks at each table it is
//! told of; a burst of publishes it did not see one by one is one entry, naming how many
//! generations it covers.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;

use serde::Serialize;

use crate::routing::RoutingTable;

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

/// What the log remembers of a backend to tell what the next table changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    app_id: Box<str>,
    /// Sorted.
    endpoints: Box<[SocketAddr]>,
}

/// The log: see the module's comment.
#[derive(Debug, Default)]
pub struct GenerationLog {
    /// Oldest first.
    entries: VecDeque<GenerationEntry>,
    last_generation: u64,
    /// The last table's backends, by name.
    seen: HashMap<Box<str>, Seen>,
}

impl GenerationLog {
    /// Newest first.
    pub fn recent(&self) -> Vec<GenerationEntry> {
        self.entries.iter().rev().cloned().collect()
    }

    /// Adds an entry for `table` unless it is the last one recorded (or the empty table
    /// served before the first).
    pub fn record(&mut self, table: &RoutingTable, at_unix_ms: u64) {
        let generation = table.generation();
        if generation <= self.last_generation {
            return;
        }
        let before = std::mem::take(&mut self.seen);
        let mut seen = HashMap::with_capacity(table.backends().len());
        let (mut added, mut removed) = (0, 0);
        // Apps with a backend added, changed or gone.
        let mut touched = BTreeSet::new();
        for backend in table.backends() {
            let app = backend.app_id().as_str();
            let mut endpoints: Vec<SocketAddr> =
                backend.endpoints().iter().map(|e| e.addr).collect();
            endpoints.sort_unstable();
            let now = Seen {
                app_id: app.into(),
                endpoints: endpoints.into(),
            };
            match before.get(&*backend.name) {
                Some(was) if *was == now => {}
                Some(was) => {
                    added += difference(&now.endpoints, &was.endpoints);
                    removed += difference(&was.endpoints, &now.endpoints);
                    touched.insert(app);
                }
                None => {
                    added += now.endpoints.len();
                    touched.insert(app);
                }
            }
            seen.insert(backend.name.clone(), now);
        }
        for (name, gone) in &before {
            if !seen.contains_key(name) {
                removed += gone.endpoints.len();
                touched.insert(&*gone.app_id);
            }
        }
        let apps_before: BTreeSet<&str> = before.values().map(|s| &*s.app_id).collect();
        let apps_now: BTreeSet<&str> = seen.values().map(|s| &*s.app_id).collect();
        let (mut apps_added, mut apps_removed, mut apps_changed) =
            (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
        for app in touched {
            match (apps_before.contains(app), apps_now.contains(app)) {
                (false, _) => apps_added.insert(app),
                (true, false) => apps_removed.insert(app),
                (true, true) => apps_changed.insert(app),
            };
        }
        let entry = GenerationEntry {
            generation,
            skipped: generation - self.last_generation - 1,
            at_unix_ms,
            routes: table.http_routes().len()
                + table.service_ports().count()
                + table.app_ids().len(),
            backends: table.backends().len(),
            endpoints: seen.values().map(|s| s.endpoints.len()).sum(),
            endpoints_added: added,
            endpoints_removed: removed,
            apps_added: Named::of(&apps_added),
            apps_removed: Named::of(&apps_removed),
            apps_changed: Named::of(&apps_changed),
        };
        if self.entries.len() == RECENT_GENERATIONS {
            self.entries.pop_front();
        }
        self.entries.push_back(entry);
        self.last_generation = generation;
        self.seen = seen;
    }
}

/// How many of `a` are not in `b` (both sorted).
fn difference(a: &[SocketAddr], b: &[SocketAddr]) -> usize {
    a.iter().filter(|x| b.binary_search(x).is_err()).count()
}
