//! Switchyard's fuzz targets drive one input each through the functions in [`drive`]; the root
//! crate's `tests/hostile/fuzz_regressions.rs` includes the same module and replays every committed
//! corpus and crash file through them, so `cargo test` keeps fixed bugs fixed.

pub mod drive;
