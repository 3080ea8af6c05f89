//! The integration suite: one test binary, each file below a module of it. One binary links
//! the dependency tree once; thirty linked it thirty times (1.3 GB of a 2.2 GB debug build).
//! `tests/lookup_alloc.rs` stays a binary of its own: it counts every allocation its process
//! makes.

mod hostile;
mod support;

mod admin;
mod backend_faults;
mod config;
mod demo_cli;
mod dockerfile;
mod fuzz_regressions;
mod hostile_h1;
mod hostile_h2;
mod hostile_slow;
mod lifecycle;
mod logs;
mod marathon_cli;
mod marathon_faults;
mod marathon_lb_fidelity;
mod marathon_source;
mod native_h1;
mod properties;
mod proxy_http;
mod proxy_marathon;
mod proxy_process;
mod proxy_swap;
mod routes_cli;
mod routing;
mod security_review;
mod status_page;
mod tls;
mod universe;
