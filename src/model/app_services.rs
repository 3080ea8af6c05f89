//! One app → its services: which ports are served and how, and each task's endpoints.
//!
//! Works on one app at a time with shared, read-only context, so that parts of a refresh can
//! run on several threads; each part collects into its own [`Part`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use smallvec::SmallVec;

use super::deployment::MergedApp;
use super::health::{active_check, health_check_for, routable_state, Verdicts};
use super::labels::{AppLabels, Mode, PortLabelSet, PortLabels};
use super::network::{self, AgentAddrs, NetworkMode, TaskIp};
use super::{
    AppId, Catalog, HealthMemory, ModelOptions, Problem, ProblemKind, Service, TaskEndpoint,
};
use crate::marathon::wire;

/// What every app of a refresh reads.
pub(super) struct AppContext<'o> {
    pub options: &'o ModelOptions,
    pub agents: &'o AgentAddrs,
    /// Last refresh's verdicts.
    pub health: &'o HealthMemory,
    /// Last refresh's services, for the last good labels of a port whose labels turned bad.
    pub previous: &'o Catalog,
}

/// What one part of a refresh found.
#[derive(Default)]
pub(super) struct Part<'a> {
    /// Shared from the start: the catalog and the table hold these, without copies.
    pub services: Vec<Arc<Service>>,
    pub problems: Vec<Problem>,
    pub verdicts: Verdicts,
    /// Apps of deployment groups, with their place in app order: merged once every part is
    /// done (a group's apps may fall in different parts).
    pub grouped: Vec<(usize, &'a wire::App, AppLabels)>,
    /// IP-per-task apps without service ports, with their place in app order: their ports are
    /// assigned, in that order, once every part is done.
    pub unassigned: Vec<(usize, MergedApp<'a>)>,
    /// Each agent once: its shared name and address, however many tasks run there.
    agent_cache: HashMap<&'a str, (Arc<str>, Option<IpAddr>), ahash::RandomState>,
}

impl<'a> Part<'a> {
    /// Joins parts, in order, moving each part's services and problems once (appending parts
    /// pairwise copied the first ones at every level of the join).
    pub fn concat(parts: Vec<Part<'a>>) -> Part<'a> {
        let mut out = Part {
            services: Vec::with_capacity(parts.iter().map(|p| p.services.len()).sum()),
            problems: Vec::with_capacity(parts.iter().map(|p| p.problems.len()).sum()),
            ..Part::default()
        };
        for part in parts {
            out.services.extend(part.services);
            out.problems.extend(part.problems);
            out.verdicts.append(part.verdicts);
        }
        out
    }
}

/// An app's service ports in index order (`None` where unusable); most apps have one or two.
pub(super) type ServicePorts = SmallVec<[Option<u16>; 4]>;

/// A service port being built, before its endpoints are known.
struct PortPlan {
    index: usize,
    service: Service,
}

impl<'a> AppContext<'_> {
    /// Adds the services (and problems) of one app, whose service ports are already known.
    pub(super) fn add_app(
        &self,
        part: &mut Part<'a>,
        mut app: MergedApp<'a>,
        service_ports: ServicePorts,
    ) {
        let definition = app.definition;
        let mode = NetworkMode::of(definition);

        for index in app.labels.port_indexes() {
            if index >= service_ports.len() {
                part.problems.push(Problem {
                    label: set_label_names(&app, index),
                    ..Problem::port(
                        &app.id,
                        index,
                        ProblemKind::LabelWithoutPort,
                        format!(
                            "labels for port index {index}, but the app has {} service port(s)",
                            service_ports.len()
                        ),
                    )
                });
            }
        }

        // One id shared by all of the app's services: one allocation an app, not one a port.
        let app_id = AppId::new(&app.id);
        let mut plans: SmallVec<[PortPlan; 1]> = SmallVec::new();
        for (index, &declared) in service_ports.iter().enumerate() {
            let set = app.labels.take_port(index);
            if let Some(plan) = self.plan_port(part, &app, &app_id, index, declared, set) {
                plans.push(plan);
            }
        }
        if plans.is_empty() {
            return;
        }

        for plan in &mut plans {
            plan.service.endpoints.reserve_exact(app.tasks.len());
        }
        let mut tasks = std::mem::take(&mut app.tasks);
        if !tasks.is_sorted_by(|a, b| a.task.id <= b.task.id) {
            tasks.sort_unstable_by(|a, b| a.task.id.cmp(&b.task.id));
        }
        let checked = self.options.health_check && !definition.health_checks.is_empty();
        for merged in tasks {
            let task: &'a wire::Task = merged.task;
            let Some(state) = routable_state(task) else {
                continue;
            };
            let host = match task.host.as_deref() {
                Some(host) if !host.is_empty() => host,
                _ => continue,
            };
            if checked && !self.health.is_healthy(task, &mut part.verdicts) {
                continue;
            }
            let agents = self.agents;
            let (agent, agent_ip) = part
                .agent_cache
                .entry(host)
                .or_insert_with(|| (host.into(), agents.get(host)))
                .clone();
            let ip = match network::task_ip(mode, task, agent_ip) {
                TaskIp::Ip(ip) => ip,
                TaskIp::NotYet => continue,
                TaskIp::Unresolved => {
                    part.problems.push(Problem::app(
                        &app.id,
                        ProblemKind::UnresolvableHost,
                        format!(
                            "task {} runs on agent `{}`, which does not resolve; not routed",
                            task.id,
                            task.host.as_deref().unwrap_or_default()
                        ),
                    ));
                    continue;
                }
            };
            let ports = network::task_ports(definition, mode, task);
            let ports = &*ports;
            let task_id = task.id.clone();
            for plan in &mut plans {
                // Service port i pairs with task port i; versions with fewer ports pair fewer.
                let Some(port) = ports.get(plan.index).and_then(|&p| u16::try_from(p).ok()) else {
                    continue;
                };
                if port == 0 {
                    continue;
                }
                let health_check_port = plan
                    .service
                    .labels
                    .healthcheck_port_index
                    .and_then(|i| ports.get(i))
                    .and_then(|&p| u16::try_from(p).ok());
                plan.service.endpoints.push(TaskEndpoint {
                    addr: SocketAddr::new(ip, port),
                    task_id: task_id.clone(),
                    agent: agent.clone(),
                    state,
                    draining: merged.draining,
                    health_check_port,
                });
            }
        }
        part.services
            .extend(plans.into_iter().map(|p| Arc::new(p.service)));
    }

    /// Decides whether a port is served and with what configuration; reports why not.
    fn plan_port(
        &self,
        part: &mut Part<'_>,
        app: &MergedApp<'_>,
        app_id: &AppId,
        index: usize,
        declared: Option<u16>,
        set: PortLabelSet,
    ) -> Option<PortPlan> {
        let declared = declared?;
        let invalid = set.is_invalid();
        let PortLabelSet { labels, issues } = set;
        let groups = labels.groups.as_ref().or(app.labels.groups.as_ref());
        let served = match groups {
            Some(groups) => groups.served_by(&self.options.groups),
            None => super::Groups::default().served_by(&self.options.groups),
        };
        if !served {
            let message = match groups {
                Some(g) if !g.is_empty() => format!(
                    "in group(s) `{g}`, not served by --group {}",
                    self.options.groups
                ),
                _ => format!(
                    "has no HAPROXY_GROUP; only --group '*' serves it (this balancer: --group {})",
                    self.options.groups
                ),
            };
            part.problems.push(Problem::port(
                &app.id,
                index,
                ProblemKind::NotInGroup,
                message,
            ));
            return None;
        }
        // A port that was served keeps its last good labels while its new ones are invalid
        // (Marathon-LB would stop updating every app instead; dropping the port would take a
        // working app offline for a typo).
        let last_good = invalid
            .then(|| self.previous.service(&app.id, index))
            .flatten();
        for issue in issues {
            let mut problem = Problem::from_label(&app.id, Some(index), issue);
            if last_good.is_some() && problem.kind == ProblemKind::InvalidLabel {
                problem
                    .message
                    .push_str("; the port keeps its last good labels");
            }
            part.problems.push(problem);
        }
        let labels = match last_good {
            Some(service) => service.labels.clone(),
            None if invalid => return None,
            None => labels,
        };
        let enabled = labels.enabled.unwrap_or(!self.options.strict_mode);
        if !enabled {
            let message = if labels.enabled == Some(false) {
                "HAPROXY_{n}_ENABLED is false".to_owned()
            } else {
                "--strict-mode: only ports with HAPROXY_{n}_ENABLED=true are served".to_owned()
            };
            part.problems.push(Problem {
                label: Some(format!("HAPROXY_{index}_ENABLED")),
                ..Problem::port(&app.id, index, ProblemKind::Disabled, message)
            });
            return None;
        }

        let mode = self.resolve_mode(app.definition, index, &labels);
        if mode == Mode::Tcp && !labels.vhosts.is_empty() {
            part.problems.push(Problem {
                label: Some(format!("HAPROXY_{index}_MODE")),
                ..Problem::port(
                    &app.id,
                    index,
                    ProblemKind::InvalidLabel,
                    "MODE=tcp cannot serve HAPROXY_{n}_VHOST (virtual hosts need http)",
                )
            });
            return None;
        }
        let weight = match (labels.backend_weight.unwrap_or(0), &labels.path) {
            (0, Some(_)) => 1,
            (weight, _) => weight,
        };
        Some(PortPlan {
            index,
            service: Service {
                app_id: app_id.clone(),
                port_index: index,
                service_port: labels.port.unwrap_or(declared),
                mode,
                weight,
                health_check: active_check(app.definition, index, &labels),
                labels,
                endpoints: Vec::new(),
            },
        })
    }

    /// `HAPROXY_{n}_MODE` > a health check with protocol exactly `HTTP` > http for a vhost > tcp.
    fn resolve_mode(&self, app: &wire::App, index: usize, labels: &PortLabels) -> Mode {
        if let Some(mode) = labels.mode {
            return mode;
        }
        fn protocol(check: &wire::HealthCheck) -> &str {
            check.protocol.as_deref().unwrap_or("HTTP")
        }
        match health_check_for(app, index) {
            Some(check) if protocol(check) == "HTTP" => return Mode::Http,
            Some(_) => {}
            None => {
                // A port health-checked through another port's check is http when that check is.
                let borrowed = labels
                    .healthcheck_port_index
                    .and_then(|other| health_check_for(app, other));
                if borrowed.is_some_and(|c| {
                    matches!(protocol(c), "HTTP" | "HTTPS" | "MESOS_HTTP" | "MESOS_HTTPS")
                }) {
                    return Mode::Http;
                }
            }
        }
        if labels.vhosts.is_empty() {
            Mode::Tcp
        } else {
            Mode::Http
        }
    }
}

fn set_label_names(app: &MergedApp<'_>, index: usize) -> Option<String> {
    let prefix = format!("HAPROXY_{index}_");
    // Sorted already; a run found by binary search, so that an app labelling thousands of
    // missing ports costs thousands of searches, not thousands of scans of every label.
    let names: Vec<&str> = app
        .definition
        .labels
        .with_prefix(&prefix)
        .map(|(k, _)| k.as_str())
        .collect();
    (!names.is_empty()).then(|| names.join(","))
}
