//! Switchyard: a Layer-7 load balancer for DC/OS that replaces Marathon-LB.
//!
//! Data flows one way; each stage is a module with a small typed interface:
//!
//! ```text
//! marathon/   Marathon: the /v2/apps wire format, the client (failover, auth, TLS), the event
//!    │        stream and its reconnects. Knows nothing of routing.
//!    │
//! model/      apps → typed services: labels.rs is the only place a label string is read;
//!    │        network.rs (modes, ports, addresses), health.rs (task filter), deployment.rs
//!    │        (zero-downtime merge), from_marathon.rs (the whole conversion), problem.rs.
//!    │        No I/O.
//! routing/    services → an immutable RoutingTable (vhosts, service ports, app ids, backends,
//!    │        problems), shared through one ArcSwap (SharedTable). Pure, deterministic.
//! balance/    endpoint picking (atomics only) and per-endpoint state that outlives tables.
//! pipeline    one refresh: snapshot → resolve agents (resolve.rs) → model → table.
//! report      the table for people (`switchyard routes`) and machines (`--json`).
//! cli         the command line.
//! serve/      serve mode: source → pipeline → publish, listeners reconciled; admin port.
//! upgrade     binary upgrade: listening sockets handed to a new process on SIGUSR2.
//! simulator/  an in-process Marathon speaking its real wire formats, for tests and the demo.
//! demo/       `switchyard demo`: the simulator, real backends and the balancer together.
//! synthetic   generated app sets for benchmarks, load tests and the demo.
//! alloc       the global allocator (mimalloc); with proxy/sockopt.rs, the only unsafe code.
//! ```
#![deny(unsafe_code)]

pub mod admin;
/// The global allocator: one of the two modules allowed unsafe code (proxy/sockopt.rs).
pub mod alloc;
pub mod balance;
pub mod cli;
pub mod handover;
pub mod marathon;
pub mod metrics;
pub mod model;
pub mod proxy;
pub mod routing;
pub mod serve;
pub mod sim;
pub mod tls;
pub mod upstream;
