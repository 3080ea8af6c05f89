//! What the demo prints about tables: every generation published since the last line, with
//! what it changed, so that no table goes unexplained however a change's events were batched
//! (a task killed brings two events, which may build one table or two).

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::routing::{RoutingTable, Scope};
use crate::serve::Handle;

/// The last table the demo explained.
pub(super) struct Explained {
    table: Arc<RoutingTable>,
}

impl Explained {
    /// Nothing explained yet: the first line explains every table from the first.
    pub(super) fn new() -> Explained {
        Explained {
            table: Arc::default(),
        }
    }

    /// The generation explained last.
    pub(super) fn generation(&self) -> u64 {
        self.table.generation()
    }

    /// A line for the tables published since the last one explained, `None` when there were
    /// none: `→ generations 6–7: tweeter_10000: 2 endpoints removed`.
    pub(super) fn next_line(&mut self, handle: &Handle) -> Option<String> {
        let table = handle.table.load_full();
        let (from, to) = (self.table.generation() + 1, table.generation());
        if to < from {
            return None;
        }
        let changes = table
            .changes_since(&self.table, Scope::default())
            .to_string();
        let line = if from == to {
            format!("[demo]   → generation {to}: {changes}")
        } else {
            format!("[demo]   → generations {from}–{to}: {changes}")
        };
        self.table = table;
        Some(line)
    }
}

/// Waits until `app`'s first port routes exactly `expected` (at most `guard`): a step's change
/// is routed once every event it brought was applied.
pub(super) async fn routed(
    handle: &Handle,
    app: &str,
    expected: &BTreeSet<SocketAddr>,
    guard: Duration,
) {
    let settled = async {
        loop {
            let seen = {
                let table = handle.table.load();
                if endpoints(&table, app) == *expected {
                    return;
                }
                table.generation()
            };
            handle.wait_generation(seen + 1).await;
        }
    };
    let _ = tokio::time::timeout(guard, settled).await;
}

fn endpoints(table: &RoutingTable, app: &str) -> BTreeSet<SocketAddr> {
    table
        .app(app)
        .map(|backend| backend.endpoints().iter().map(|e| e.addr).collect())
        .unwrap_or_default()
}
