//! The status page at `/` (placeholder until the page lands).

use crate::routing::RoutingTable;

pub fn html(table: &RoutingTable) -> String {
    format!(
        "<!doctype html><title>Switchyard</title><p>generation {}</p>",
        table.generation()
    )
}
