//! The one place the current table lives: an `ArcSwap` readers load and the reconciler stores.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use super::RoutingTable;

/// A cheap handle on the current table. Readers `load()` once per request (lock-free); only
/// the reconciler calls `publish()`.
#[derive(Debug, Clone)]
pub struct SharedTable(Arc<ArcSwap<RoutingTable>>);

impl SharedTable {
    pub fn new(table: RoutingTable) -> SharedTable {
        SharedTable(Arc::new(ArcSwap::from_pointee(table)))
    }

    /// The current table, for a short read (drop it before awaiting).
    pub fn load(&self) -> Guard<Arc<RoutingTable>> {
        self.0.load()
    }

    /// The current table as an owned `Arc`, for work that spans awaits.
    pub fn load_full(&self) -> Arc<RoutingTable> {
        self.0.load_full()
    }

    /// Swaps in a new table and hands back the one it replaces; requests in flight keep the
    /// one they loaded. Freeing a big table takes milliseconds: the caller decides where.
    #[must_use = "the replaced table is freed where it is dropped"]
    pub fn publish(&self, table: Arc<RoutingTable>) -> Arc<RoutingTable> {
        self.0.swap(table)
    }
}

impl Default for SharedTable {
    fn default() -> Self {
        SharedTable::new(RoutingTable::default())
    }
}
