//! The routing table: immutable, built in one pass from a [`Catalog`], shared as one `Arc`.
//!
//! Pure and deterministic: no I/O, and the same catalog always builds the same table. The
//! control plane builds it; the proxy only reads it.
//!
//! Rule order on a host is Marathon-LB's: services sorted by (app id, service port), then a
//! stable sort by weight, highest first (`HAPROXY_{n}_PATH` raises a weight of 0 to 1, so path
//! rules come before path-less ones; of two apps with equal weight the smaller id wins). An exact
//! host beats a wildcard; see [`HostRouter::route`].

mod backend;
mod host;
mod observe;
pub mod report;
mod service_ports;
mod shared;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

pub use backend::Backend;
pub use host::{HostRouter, HttpRoute};
pub use shared::SharedTable;

use backend::reusable;
use service_ports::service_port_frontends;

use rayon::prelude::*;

use crate::model::{Catalog, Mode, Problem, ProblemKind, Service};
use crate::upstream::Registry;

/// What the build needs besides the catalog: the balancer's own ports, which no service port
/// may take.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub reserved_ports: Vec<(u16, &'static str)>,
    /// Where backends get their metric handles; without it they share detached ones.
    pub metrics: Option<Arc<crate::metrics::Metrics>>,
}

/// The balancer's own ports by default (Marathon-LB's): the defaults of `--http-port`,
/// `--https-port`, `--admin-port` and `--app-id-port`, and what no service port may take.
pub const DEFAULT_PORTS: BalancerPorts = BalancerPorts {
    http: 80,
    https: 443,
    admin: 9090,
    app_id: 9091,
};

/// The balancer's own listening ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BalancerPorts {
    pub http: u16,
    pub https: u16,
    pub admin: u16,
    pub app_id: u16,
}

impl BalancerPorts {
    /// Each port with the name a problem gives it.
    pub fn reserved(self) -> Vec<(u16, &'static str)> {
        vec![
            (self.http, "http"),
            (self.https, "https"),
            (self.admin, "admin"),
            (self.app_id, "app-id"),
        ]
    }
}

impl Default for BuildOptions {
    fn default() -> Self {
        BuildOptions {
            reserved_ports: DEFAULT_PORTS.reserved(),
            metrics: None,
        }
    }
}

/// Services per parallel part: a smaller table is built on the calling thread alone.
const PARALLEL_PART: usize = 1024;

/// One snapshot of everything the data plane routes by.
#[derive(Debug, Default)]
pub struct RoutingTable {
    generation: u64,
    /// Sorted by (app id, port index).
    backends: Vec<Arc<Backend>>,
    http: HostRouter,
    /// Sorted by port, one frontend per port.
    service_ports: Vec<ServicePortFrontend>,
    app_ids: HashMap<Arc<str>, Arc<Backend>, ahash::RandomState>,
    /// Sorted.
    problems: Vec<Problem>,
}

/// The listener for one service port.
#[derive(Debug, Clone)]
pub struct ServicePortFrontend {
    pub port: u16,
    /// `HAPROXY_{n}_BIND_ADDR`; `None` = the balancer's bind address.
    pub bind_addr: Option<IpAddr>,
    pub mode: Mode,
    pub backend: Arc<Backend>,
}

impl RoutingTable {
    /// Builds a table with fresh endpoint state (tools and tests; the balancer uses
    /// [`RoutingTable::build_with`]).
    pub fn build(catalog: Catalog, options: &BuildOptions, generation: u64) -> RoutingTable {
        RoutingTable::build_with(catalog, options, generation, &Registry::default())
    }

    /// Builds a table from a catalog (consumed: its services move into the table).
    /// Conflicts are settled deterministically and reported. Endpoint state (in-flight
    /// counts, passive health, pooled connections) comes from `registry` by address, so it
    /// carries over from the previous table; addresses no longer present are forgotten.
    pub fn build_with(
        catalog: Catalog,
        options: &BuildOptions,
        generation: u64,
        registry: &Registry,
    ) -> RoutingTable {
        RoutingTable::build_after(catalog, options, generation, registry, &[])
    }

    /// Like [`RoutingTable::build_with`], reusing the backends of `previous` (the last table's
    /// [`RoutingTable::backends`]) whose service is the very one in `catalog`: a patched
    /// catalog shares every unchanged app's services, so a change to one app of thousands
    /// builds one backend, not thousands. A reused backend keeps its endpoint states, metric
    /// handles and round-robin position, which a new one would look up or start again anyway.
    pub fn build_after(
        catalog: Catalog,
        options: &BuildOptions,
        generation: u64,
        registry: &Registry,
        previous: &[Arc<Backend>],
    ) -> RoutingTable {
        let Catalog {
            mut services,
            mut problems,
        } = catalog;
        // A port with no routable task is left out, as Marathon-LB leaves it out: its requests
        // fall through to the next route that matches. It stays in the catalog, which keeps
        // its last good labels.
        services.retain(|service| {
            let routable = !service.endpoints.is_empty();
            if !routable {
                problems.push(no_routable_task(service));
            }
            routable
        });
        // Marathon-LB's order: (app id, service port). In parallel above 2,000 services (rayon
        // sorts shorter slices on this thread).
        services.par_sort_by(|a, b| {
            (&a.app_id, a.service_port, a.port_index).cmp(&(
                &b.app_id,
                b.service_port,
                b.port_index,
            ))
        });

        let states = registry.build();
        states.expect(services.iter().map(|s| s.endpoints.len()).sum());
        // Each backend on its own (in parallel parts when there are many), then the indexes,
        // in service order.
        let backends: Vec<Arc<Backend>> = services
            .into_par_iter()
            .with_min_len(PARALLEL_PART)
            .map(|service| match reusable(previous, &service) {
                // Its endpoint states stay in the registry: the backend holds them.
                Some(backend) => backend.clone(),
                None => Arc::new(Backend::new(service, &states, options)),
            })
            .collect();
        states.finish();

        // The indexes: vhost routes, the app-id map and the service-port listeners, each in
        // service order. Large tables build them side by side.
        let parallel = backends.len() >= PARALLEL_PART;
        let ((http, app_ids), (service_ports, port_problems)) = join(
            parallel,
            || {
                join(
                    parallel,
                    || HostRouter::new(http_routes(&backends)),
                    || app_id_map(&backends),
                )
            },
            || service_port_frontends(&backends, options),
        );
        problems.extend(port_problems);
        let mut backends = backends;
        backends.par_sort_by(|a, b| {
            (a.app_id(), a.service.port_index).cmp(&(b.app_id(), b.service.port_index))
        });
        problems.sort();
        RoutingTable {
            generation,
            backends,
            http,
            service_ports,
            app_ids,
            problems,
        }
    }

    /// Increases with every table published.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The vhost route for a raw `Host` value and a path (ports 80/443).
    pub fn route(&self, host: &[u8], path: &str) -> Option<&HttpRoute> {
        self.http.route(host, path)
    }

    /// The frontend of a service-port listener.
    pub fn service_port(&self, port: u16) -> Option<&ServicePortFrontend> {
        let i = self
            .service_ports
            .binary_search_by_key(&port, |f| f.port)
            .ok()?;
        Some(&self.service_ports[i])
    }

    /// The backend for an `X-Marathon-App-Id` value (port 9091).
    pub fn app(&self, app_id: &str) -> Option<&Arc<Backend>> {
        self.app_ids.get(app_id)
    }

    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    pub fn http_routes(&self) -> Vec<&HttpRoute> {
        self.http.routes()
    }

    pub fn service_ports(&self) -> impl Iterator<Item = &ServicePortFrontend> {
        self.service_ports.iter()
    }

    /// The app-id map, sorted by app id.
    pub fn app_ids(&self) -> Vec<(&str, &Arc<Backend>)> {
        let mut ids: Vec<_> = self.app_ids.iter().map(|(k, v)| (&**k, v)).collect();
        ids.sort_by(|a, b| a.0.cmp(b.0));
        ids
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }
}

fn no_routable_task(service: &Service) -> Problem {
    Problem::port(
        service.app_id.as_str(),
        service.port_index,
        ProblemKind::NoRoutableTask,
        "no task is running (and healthy, where the app has health checks); the port is left \
         out until one is: no vhost, app-id or service-port route",
    )
}

/// Runs `a` and `b`, on two threads when `parallel`.
fn join<A: Send, B: Send>(
    parallel: bool,
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    if parallel {
        rayon::join(a, b)
    } else {
        (a(), b())
    }
}

/// A route per vhost of every backend, in backend order.
fn http_routes(backends: &[Arc<Backend>]) -> Vec<HttpRoute> {
    let mut routes = Vec::with_capacity(backends.iter().map(|b| b.labels().vhosts.len()).sum());
    for backend in backends {
        let service = &backend.service;
        for vhost in &service.labels.vhosts {
            routes.push(HttpRoute {
                vhost: vhost.clone(),
                path: service.labels.path.clone(),
                weight: service.weight,
                backend: backend.clone(),
            });
        }
    }
    routes
}

/// The `X-Marathon-App-Id` map: an app's first http backend in service order.
fn app_id_map(backends: &[Arc<Backend>]) -> HashMap<Arc<str>, Arc<Backend>, ahash::RandomState> {
    let mut app_ids = HashMap::with_capacity_and_hasher(backends.len(), ahash::RandomState::new());
    for backend in backends {
        if backend.mode() == Mode::Http {
            app_ids
                .entry(backend.app_id().shared().clone())
                .or_insert_with(|| backend.clone());
        }
    }
    app_ids
}
