//! Development tools, apart from the product: the Marathon simulator (Marathon's wire formats on
//! loopback), `switchyard demo` on top of it, and synthetic app lists for benchmarks and tests.
//! Built by default, so that `switchyard demo` works from a fresh clone; nothing in the product
//! uses them.

pub mod demo;
pub mod simulator;
pub mod synthetic;
