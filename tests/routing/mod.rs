//! The routing table: the order of host and path lookups, service ports and the app-id map, and
//! how tables are built (patched, in parallel, carrying endpoint state across swaps) and what one
//! changed in the last.

mod lookup_order;
mod service_ports;
mod table_builds;
mod table_changes;
