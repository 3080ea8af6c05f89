//! Service-port listeners: each service claims its port; the balancer's own ports and a port
//! already claimed are refused, deterministically, and reported.

use std::sync::Arc;

use super::{Backend, BuildOptions, ServicePortFrontend};
use crate::model::{Problem, ProblemKind, Service};

/// The listeners: every service's claim on its port, settled; and the claims refused.
/// `order`: the backends' places in service order.
pub(super) fn service_port_frontends(
    backends: &[Arc<Backend>],
    order: &[u32],
    options: &BuildOptions,
) -> (Vec<ServicePortFrontend>, Vec<Problem>) {
    let mut problems = Vec::new();
    // Each claim as (port, its backend's rank in service order, its place): sorted without
    // moving the frontends, and with no buffer (the ranks make the order total, so unstable is
    // stable).
    let mut claims: Vec<(u16, u32, u32)> = order
        .iter()
        .enumerate()
        .filter(|&(_, &at)| claimable(&backends[at as usize], options, &mut problems))
        .map(|(rank, &at)| (backends[at as usize].service.service_port, rank as u32, at))
        .collect();
    claims.sort_unstable();
    let frontends = settle_port_conflicts(backends, &claims, &mut problems);
    (frontends, problems)
}

/// Whether the service may claim its port: not one of the balancer's own (reported).
fn claimable(backend: &Backend, options: &BuildOptions, problems: &mut Vec<Problem>) -> bool {
    let service = &backend.service;
    let port = service.service_port;
    if let Some((_, what)) = options.reserved_ports.iter().find(|(p, _)| *p == port) {
        let routed = if service.labels.vhosts.is_empty() {
            ""
        } else {
            "; its vhost routes still work"
        };
        problems.push(Problem {
            label: port_label(service),
            ..Problem::port(
                service.app_id.as_str(),
                service.port_index,
                ProblemKind::ReservedPort,
                format!("service port {port} is the balancer's {what} port; no listener opened for it{routed}"),
            )
        });
        return false;
    }
    true
}

/// One listener per port: of the claims (sorted by port, then service order, Marathon-LB's),
/// the first on a port wins and every later one is reported. Returns the winners by port.
fn settle_port_conflicts(
    backends: &[Arc<Backend>],
    claims: &[(u16, u32, u32)],
    problems: &mut Vec<Problem>,
) -> Vec<ServicePortFrontend> {
    let mut winners: Vec<ServicePortFrontend> = Vec::with_capacity(claims.len());
    for &(port, _, at) in claims {
        let backend = &backends[at as usize];
        let Some(holder) = winners.last().filter(|w| w.port == port) else {
            winners.push(ServicePortFrontend {
                port,
                bind_addr: backend.service.labels.bind_addr,
                mode: backend.service.mode,
                at,
            });
            continue;
        };
        let holder = &backends[holder.at as usize];
        let service = &backend.service;
        problems.push(Problem {
            label: port_label(service),
            ..Problem::port(
                service.app_id.as_str(),
                service.port_index,
                ProblemKind::PortConflict,
                format!(
                    "service port {port} is already bound by {} (port index {}); no listener opened for this one",
                    holder.app_id(),
                    holder.service.port_index
                ),
            )
        });
    }
    winners
}

/// The label that set a service's port, if one did.
fn port_label(service: &Service) -> Option<String> {
    service
        .labels
        .port
        .map(|_| format!("HAPROXY_{}_PORT", service.port_index))
}
