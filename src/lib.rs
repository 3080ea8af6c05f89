//! Switchyard: a Layer-7 load balancer for DC/OS that replaces Marathon-LB.
//!
//! Data flows one way; each stage is a module with a small typed interface, and no module uses
//! one that uses it back (`docs/architecture.md`):
//!
//! ```text
//! marathon/   Marathon: the /v2/apps wire format, the client (failover, auth, TLS), the event
//!    │        stream and its reconnects. Knows nothing of routing.
//! model/      apps → typed services: labels.rs is the only place a label string is read;
//!    │        network.rs (modes, ports, addresses), health.rs (task filter), deployment.rs
//!    │        (zero-downtime merge), from_marathon.rs (the whole conversion), problem.rs. No I/O.
//! routing/    services → an immutable RoutingTable (vhosts, service ports, app ids, backends
//!    │        with their build-time verdicts, problems), shared through one ArcSwap
//!    │        (SharedTable); report.rs prints it, changes.rs says what one changed in the last.
//!    │        Pure, deterministic.
//! serve/      serve mode: a source (Marathon or a file) → one refresh (pipeline.rs, agent
//!    │        names resolved by resolve.rs) → publish (publish.rs) → listeners and health checks
//!    │        reconciled, the table announced in the log (announce.rs).
//! proxy/      the data plane: accept/ → conn/ → h1/ (native) | hyper_engine/ | tcp/, with
//!    │        request/ shared by both HTTP engines.
//! upstream/   per-endpoint idle connection pools and HTTP/2 connection sets, the pooled
//!    │        connection types, TLS to backends, the request body (and its replay), an
//!    │        HTTP/1 response body read from its socket, chunked framing.
//! balance/    endpoint picking (atomics only) and per-endpoint state that outlives tables,
//!             generic over what an endpoint keeps (upstream/'s pools).
//!
//! beside:  metrics/ (Prometheus, handles resolved at table build), tls/ (certificates and their
//!          own swap), admin/ (the admin port and status page), cli/ (the command line),
//!          handover (listening sockets handed to a new binary on SIGUSR2), workers (the
//!          per-core data-plane threads, each accepting on every listener), logs (the logger;
//!          access-log lines with every field), alloc (mimalloc; with proxy/accept/sockopt.rs,
//!          the only unsafe code)
//! apart:   zdd/ (`switchyard zdd`: blue/green deployments driven through Marathon's API and the
//!          balancers' /stats; a client of the balancer, not part of it)
//!          sim/ (the Marathon simulator, `switchyard demo`, synthetic app sets): development
//!          tools, built by default so that `switchyard demo` works
//! ```
#![deny(unsafe_code)]

pub mod admin;
/// The global allocator: one of the two modules allowed unsafe code (proxy/accept/sockopt.rs).
pub mod alloc;
pub mod balance;
pub mod cli;
pub mod handover;
pub mod logs;
pub mod marathon;
pub mod metrics;
pub mod model;
pub mod proxy;
pub mod routing;
pub mod serve;
pub mod sim;
pub mod tls;
pub mod upstream;
pub mod workers;
pub mod zdd;
