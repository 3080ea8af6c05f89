//! Service-port listeners: each service claims its port; the balancer's own ports and a port
//! already claimed are refused, deterministically, and reported.

use std::sync::Arc;

use super::{Backend, BuildOptions, ServicePortFrontend};
use crate::model::{Problem, ProblemKind, Service};

/// The listeners: every service's claim on its port, settled; and the claims refused.
pub(super) fn service_port_frontends(
    backends: &[Arc<Backend>],
    options: &BuildOptions,
) -> (Vec<ServicePortFrontend>, Vec<Problem>) {
    let mut problems = Vec::new();
    let claims = backends
        .iter()
        .filter_map(|backend| claim_service_port(backend, options, &mut problems))
        .collect();
    let frontends = settle_port_conflicts(claims, &mut problems);
    (frontends, problems)
}

/// The service's claim on its port, unless the port is one of the balancer's own (reported).
fn claim_service_port(
    backend: &Arc<Backend>,
    options: &BuildOptions,
    problems: &mut Vec<Problem>,
) -> Option<ServicePortFrontend> {
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
        return None;
    }
    Some(ServicePortFrontend {
        port,
        bind_addr: service.labels.bind_addr,
        mode: service.mode,
        backend: backend.clone(),
    })
}

/// One listener per port: of the claims (in Marathon-LB's service order), the first on a port
/// wins and every later one is reported. Returns the winners sorted by port.
fn settle_port_conflicts(
    mut claims: Vec<ServicePortFrontend>,
    problems: &mut Vec<Problem>,
) -> Vec<ServicePortFrontend> {
    // Stable: among claims on one port, service order is kept.
    claims.sort_by_key(|c| c.port);
    let mut winners: Vec<ServicePortFrontend> = Vec::with_capacity(claims.len());
    for claim in claims {
        let Some(holder) = winners.last().filter(|w| w.port == claim.port) else {
            winners.push(claim);
            continue;
        };
        let service = &claim.backend.service;
        problems.push(Problem {
            label: port_label(service),
            ..Problem::port(
                service.app_id.as_str(),
                service.port_index,
                ProblemKind::PortConflict,
                format!(
                    "service port {} is already bound by {} (port index {}); no listener opened for this one",
                    claim.port,
                    holder.backend.app_id(),
                    holder.backend.service.port_index
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
