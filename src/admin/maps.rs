//! Marathon-LB's map endpoints, in its map-file format: one `key backend` pair per line.

use std::collections::BTreeSet;

use crate::routing::RoutingTable;

/// `host backend` for every host routed on the HTTP/HTTPS ports (path routes included once).
pub fn vhost_map(table: &RoutingTable) -> String {
    let pairs: BTreeSet<(String, &str)> = table
        .http_routes()
        .into_iter()
        .map(|route| (route.vhost.to_string(), &*route.backend.name))
        .collect();
    lines(pairs)
}

/// `appid backend` for every app reachable on the app-id port.
pub fn app_map(table: &RoutingTable) -> String {
    let pairs: BTreeSet<(String, &str)> = table
        .app_ids()
        .into_iter()
        .map(|(id, backend)| (id.to_owned(), &*backend.name))
        .collect();
    lines(pairs)
}

fn lines(pairs: BTreeSet<(String, &str)>) -> String {
    pairs
        .into_iter()
        .map(|(key, backend)| format!("{key} {backend}\n"))
        .collect()
}
