//! The integration suite: one test binary, each folder below a stage of Switchyard and each file
//! in it a module (`cargo test --test suite proxy::` runs a folder, `lifecycle::` one file). One
//! binary links the dependency tree once; thirty linked it thirty times (1.3 GB of a 2.2 GB
//! debug build). `tests/lookup_alloc.rs` stays a binary of its own: it counts every allocation
//! its process makes.

mod support;

mod hostile;
mod marathon;
mod model;
mod ops;
mod packaging;
mod proxy;
mod routing;
