//! What requests are looked up by: the vhost rules, the `X-Marathon-App-Id` map and the
//! service-port listeners. Each entry names its backend by its place in the table's backends,
//! so a table whose changed backends route exactly as the ones they replace (a task started,
//! killed or found unhealthy) shares the last table's indexes instead of building them again.

use std::collections::HashMap;
use std::sync::Arc;

use super::host::{HostRouter, HttpRoute};
use super::service_ports::service_port_frontends;
use super::{Backend, BuildOptions, ServicePortFrontend};
use crate::model::{Mode, Problem};

/// The indexes of one set of backends.
#[derive(Debug, Default)]
pub(super) struct Indexes {
    pub(super) http: HostRouter,
    /// Sorted by port, one frontend per port.
    pub(super) service_ports: Vec<ServicePortFrontend>,
    pub(super) app_ids: HashMap<Arc<str>, u32, ahash::RandomState>,
    /// The service-port claims refused (a reserved port, a port already taken).
    pub(super) problems: Vec<Problem>,
}

impl Indexes {
    /// Builds the indexes of `backends` (sorted by app id and port index), each in Marathon-LB's
    /// service order: (app id, service port). Large tables build them side by side.
    pub(super) fn build(backends: &[Arc<Backend>], options: &BuildOptions) -> Indexes {
        let order = service_order(backends);
        let parallel = backends.len() >= super::PARALLEL_PART;
        let ((http, app_ids), (service_ports, problems)) = super::join(
            parallel,
            || {
                super::join(
                    parallel,
                    || HostRouter::new(http_routes(backends, &order)),
                    || app_id_map(backends, &order),
                )
            },
            || service_port_frontends(backends, &order, options),
        );
        Indexes {
            http,
            service_ports,
            app_ids,
            problems,
        }
    }
}

/// Whether `new` may take `old`'s place in the indexes: everything they look at is the same
/// (where it routes from, its port and mode, its place in the rule order), whatever its tasks.
pub(super) fn routes_alike(old: &Backend, new: &Backend) -> bool {
    let (a, b) = (&old.service, &new.service);
    a.app_id == b.app_id
        && a.port_index == b.port_index
        && a.service_port == b.service_port
        && a.mode == b.mode
        && a.weight == b.weight
        && a.labels.vhosts == b.labels.vhosts
        && a.labels.path == b.labels.path
        && a.labels.bind_addr == b.labels.bind_addr
        && a.labels.ssl_cert == b.labels.ssl_cert
}

/// The places of `backends` in service order: by app id (as they are), then service port.
fn service_order(backends: &[Arc<Backend>]) -> Vec<u32> {
    let mut order: Vec<u32> = (0..backends.len() as u32).collect();
    // Only an app's own ports can be out of service order; each app's run is sorted alone.
    let mut start = 0;
    while start < backends.len() {
        let app = backends[start].app_id();
        let len = backends[start..]
            .iter()
            .take_while(|b| b.app_id() == app)
            .count();
        if len > 1 {
            order[start..start + len].sort_by_key(|&at| {
                let service = &backends[at as usize].service;
                (service.service_port, service.port_index)
            });
        }
        start += len;
    }
    order
}

/// A route per vhost of every backend, in service order.
fn http_routes(backends: &[Arc<Backend>], order: &[u32]) -> Vec<HttpRoute> {
    let mut routes = Vec::with_capacity(backends.iter().map(|b| b.labels().vhosts.len()).sum());
    for &at in order {
        let service = &backends[at as usize].service;
        for vhost in &service.labels.vhosts {
            routes.push(HttpRoute {
                vhost: vhost.clone(),
                path: service.labels.path.clone(),
                weight: service.weight,
                at,
            });
        }
    }
    routes
}

/// The `X-Marathon-App-Id` map: an app's first http backend in service order.
fn app_id_map(
    backends: &[Arc<Backend>],
    order: &[u32],
) -> HashMap<Arc<str>, u32, ahash::RandomState> {
    let mut app_ids = HashMap::with_capacity_and_hasher(backends.len(), ahash::RandomState::new());
    for &at in order {
        let backend = &backends[at as usize];
        if backend.mode() == Mode::Http {
            app_ids
                .entry(backend.app_id().shared().clone())
                .or_insert(at);
        }
    }
    app_ids
}
