//! One function per fuzz target: it takes one input, runs it through the real library code and
//! panics only when an invariant breaks (the library itself must never panic). Kept small and
//! free of fuzzing crates (bar `arbitrary`) so that the root crate's tests can include it.

pub mod apps;
pub mod config;
pub mod connection;
pub mod events;
pub mod labels;

pub use apps::marathon_apps;
pub use config::config_file;
pub use connection::{http_connection, http_connection_native};
pub use events::event_stream;
pub use labels::{labels, LabelsInput};
