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
mod changes;
mod host;
mod indexes;
mod observe;
pub mod report;
mod service_ports;
mod shared;

use std::net::IpAddr;
use std::sync::Arc;

pub use backend::Backend;
pub use changes::{BackendChange, ChangeKind, Scope, TableChanges};
pub use host::{HostRouter, HttpRoute};
pub use shared::SharedTable;

use backend::reusable;
use indexes::Indexes;

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
    backends: Arc<[Arc<Backend>]>,
    /// Shared with the last table when every changed backend routes as the one it replaces.
    indexes: Arc<Indexes>,
    /// Sorted.
    problems: Vec<Problem>,
    /// Endpoints of every backend together.
    endpoints: usize,
}

/// The listener for one service port.
#[derive(Debug, Clone)]
pub struct ServicePortFrontend {
    pub port: u16,
    /// `HAPROXY_{n}_BIND_ADDR`; `None` = the balancer's bind address.
    pub bind_addr: Option<IpAddr>,
    pub mode: Mode,
    /// Its backend's place in the table's backends.
    at: u32,
}

/// An index entry (a vhost rule, a service-port frontend) with the backend it names.
#[derive(Debug, Clone, Copy)]
pub struct Bound<'t, T> {
    entry: &'t T,
    pub backend: &'t Arc<Backend>,
}

impl<T> std::ops::Deref for Bound<'_, T> {
    type Target = T;

    fn deref(&self) -> &T {
        self.entry
    }
}

impl<'t, T> Bound<'t, T> {
    /// The entry itself, as the index holds it.
    pub fn entry(&self) -> &'t T {
        self.entry
    }
}

/// Backends one table replaced in the one before, place by place.
#[derive(Debug)]
pub struct Replaced {
    pub old: Vec<Arc<Backend>>,
    pub new: Vec<Arc<Backend>>,
}

/// What a later build may take over from a table: its backends and its indexes.
#[derive(Debug, Clone, Default)]
pub struct Reusable {
    backends: Arc<[Arc<Backend>]>,
    indexes: Arc<Indexes>,
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
        RoutingTable::build_after(catalog, options, generation, registry, &Reusable::default())
    }

    /// Like [`RoutingTable::build_with`], taking over what it can of the last table
    /// ([`RoutingTable::reusable`]): a backend whose service is the very one in `catalog` (a
    /// patched catalog shares every unchanged app's services, so a change to one app of
    /// thousands builds one backend, not thousands), and the indexes when every new backend
    /// routes as the one whose place it takes (so a task started, stopped or found unhealthy
    /// rebuilds no index). A reused backend keeps its endpoint states, metric handles and
    /// round-robin position, which a new one would look up or start again anyway.
    pub fn build_after(
        catalog: Catalog,
        options: &BuildOptions,
        generation: u64,
        registry: &Registry,
        previous: &Reusable,
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
        // The catalog's order already (a sort of sorted services reads each once); in
        // parallel above 2,000 services (rayon sorts shorter slices on this thread).
        services.par_sort_by(|a, b| (&a.app_id, a.port_index).cmp(&(&b.app_id, b.port_index)));

        let old = &previous.backends;
        let states = registry.build();
        let endpoints = services.iter().map(|s| s.endpoints.len()).sum();
        states.expect(endpoints);
        // Each backend on its own (in parallel parts when there are many): the one in the same
        // place of the last table when built from this very service (a patch moves no other),
        // else one found by key, else a new one.
        let backends: Vec<Arc<Backend>> = services
            .into_par_iter()
            .enumerate()
            .with_min_len(PARALLEL_PART)
            .map(|(at, service)| {
                match old
                    .get(at)
                    .filter(|b| Arc::ptr_eq(&b.service, &service))
                    .or_else(|| reusable(old, &service))
                {
                    // Its endpoint states stay in the registry: the backend holds them.
                    Some(backend) => backend.clone(),
                    None => Arc::new(Backend::new(service, &states, options)),
                }
            })
            .collect();
        let kept = backends
            .iter()
            .zip(old.iter())
            .filter(|(new, old)| Arc::ptr_eq(new, old))
            .count();
        states.finish(backends.len() - kept, backends.len());

        let indexes = if same_places(old, &backends) {
            previous.indexes.clone()
        } else {
            Arc::new(Indexes::build(&backends, options))
        };
        problems.extend(indexes.problems.iter().cloned());
        problems.sort();
        RoutingTable {
            generation,
            backends: backends.into(),
            indexes,
            problems,
            endpoints,
        }
    }

    /// What the next build may take over from this table.
    pub fn reusable(&self) -> Reusable {
        Reusable {
            backends: self.backends.clone(),
            indexes: self.indexes.clone(),
        }
    }

    /// Whether this table looks requests up by the same indexes as `other`: only backends'
    /// tasks differ, and the same listeners serve both.
    pub fn shares_indexes_with(&self, other: &RoutingTable) -> bool {
        Arc::ptr_eq(&self.indexes, &other.indexes)
    }

    /// The backends of `last` this table replaced and those that took their places, when it
    /// shares `last`'s indexes (`None`: it was built anew, and every backend may differ).
    pub fn replaced_in(&self, last: &RoutingTable) -> Option<Replaced> {
        if !self.shares_indexes_with(last) {
            return None;
        }
        let (mut old, mut new) = (Vec::new(), Vec::new());
        for (was, is) in last.backends.iter().zip(self.backends.iter()) {
            if !Arc::ptr_eq(was, is) {
                old.push(was.clone());
                new.push(is.clone());
            }
        }
        Some(Replaced { old, new })
    }

    /// Increases with every table published.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The vhost route for a raw `Host` value and a path (ports 80/443).
    pub fn route(&self, host: &[u8], path: &str) -> Option<Bound<'_, HttpRoute>> {
        let route = self.indexes.http.route(host, path)?;
        Some(self.bind(route, route.at))
    }

    /// The frontend of a service-port listener.
    pub fn service_port(&self, port: u16) -> Option<Bound<'_, ServicePortFrontend>> {
        let frontends = &self.indexes.service_ports;
        let i = frontends.binary_search_by_key(&port, |f| f.port).ok()?;
        Some(self.bind(&frontends[i], frontends[i].at))
    }

    /// The backend for an `X-Marathon-App-Id` value (port 9091).
    pub fn app(&self, app_id: &str) -> Option<&Arc<Backend>> {
        let &at = self.indexes.app_ids.get(app_id)?;
        Some(&self.backends[at as usize])
    }

    pub fn backends(&self) -> &[Arc<Backend>] {
        &self.backends
    }

    /// The backends of `app_id`, by port index.
    pub fn backends_of(&self, app_id: &str) -> &[Arc<Backend>] {
        let start = self
            .backends
            .partition_point(|b| b.app_id().as_str() < app_id);
        let len = self.backends[start..]
            .iter()
            .take_while(|b| b.app_id().as_str() == app_id)
            .count();
        &self.backends[start..start + len]
    }

    /// The backend of `app_id` named `name`.
    pub fn backend(&self, app_id: &str, name: &str) -> Option<&Arc<Backend>> {
        self.backends_of(app_id).iter().find(|b| &*b.name == name)
    }

    /// Endpoints of every backend together.
    pub fn endpoint_count(&self) -> usize {
        self.endpoints
    }

    /// Vhost rules, service-port listeners and app-id entries, together.
    pub fn route_count(&self) -> usize {
        let indexes = &self.indexes;
        indexes.http.len() + indexes.service_ports.len() + indexes.app_ids.len()
    }

    pub fn http_routes(&self) -> Vec<Bound<'_, HttpRoute>> {
        let routes = self.indexes.http.routes();
        routes.into_iter().map(|r| self.bind(r, r.at)).collect()
    }

    pub fn service_ports(&self) -> impl Iterator<Item = Bound<'_, ServicePortFrontend>> {
        let frontends = self.indexes.service_ports.iter();
        frontends.map(|f| self.bind(f, f.at))
    }

    /// The app-id map, sorted by app id.
    pub fn app_ids(&self) -> Vec<(&str, &Arc<Backend>)> {
        let ids = self.indexes.app_ids.iter();
        let mut ids: Vec<_> = ids
            .map(|(k, &at)| (&**k, &self.backends[at as usize]))
            .collect();
        ids.sort_by(|a, b| a.0.cmp(b.0));
        ids
    }

    pub fn problems(&self) -> &[Problem] {
        &self.problems
    }

    fn bind<'t, T>(&'t self, entry: &'t T, at: u32) -> Bound<'t, T> {
        Bound {
            entry,
            backend: &self.backends[at as usize],
        }
    }
}

/// Whether every backend of `new` may take the place of the one at its place in `old`.
fn same_places(old: &[Arc<Backend>], new: &[Arc<Backend>]) -> bool {
    old.len() == new.len()
        && !old.is_empty()
        && old
            .iter()
            .zip(new)
            .all(|(old, new)| Arc::ptr_eq(old, new) || indexes::routes_alike(old, new))
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
