//! Wire apps → [`Catalog`]: services with typed labels and routable endpoints, plus problems.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use super::deployment::{self, MergedApp};
use super::health::{active_check, health_check_for, routable_state, HealthPass};
use super::labels::{AppLabels, Mode, PortLabelSet, PortLabels};
use super::network::{self, AgentAddrs, NetworkMode, ServicePortAssigner, TaskIp};
use super::{AppId, Catalog, Endpoint, HealthMemory, ModelOptions, Problem, ProblemKind, Service};
use crate::marathon::wire;

/// Builds the catalog of one refresh. Deterministic: the result does not depend on the order of
/// apps or tasks in `apps`. `health` carries last health verdicts from the previous refresh.
pub fn catalog(
    apps: &[wire::App],
    options: &ModelOptions,
    agents: &AgentAddrs,
    health: &mut HealthMemory,
) -> Catalog {
    let (services, problems) = build(apps.iter(), options, agents, health, false);
    sorted(services, problems)
}

/// Whether [`catalog_patch`] can rebuild this app alone: it is in no deployment group (groups
/// merge apps) and gets no auto-assigned service port (those depend on every other app).
pub fn patchable(app: &wire::App) -> bool {
    let mode = NetworkMode::of(app);
    let auto_assigned =
        mode == NetworkMode::Container && network::declared_service_ports(app, mode).is_empty();
    !app.labels.contains_key("HAPROXY_DEPLOYMENT_GROUP") && !auto_assigned
}

/// The catalog after only the apps in `changed` changed: their services and problems are
/// rebuilt from `apps` (where they still are), every other app's are taken from `previous`.
/// Gives what [`catalog`] gives when `previous` was built with the same options and agents and
/// every changed app, old and new, is [`patchable`]; the caller checks that. Health verdicts of
/// tasks that went away are forgotten at the next full build.
pub fn catalog_patch(
    previous: &Catalog,
    apps: &[wire::App],
    changed: &BTreeSet<String>,
    options: &ModelOptions,
    agents: &AgentAddrs,
    health: &mut HealthMemory,
) -> Catalog {
    let changed_apps = apps.iter().filter(|app| changed.contains(&app.id));
    let (mut services, mut problems) = build(changed_apps, options, agents, health, true);
    let unchanged = |id: &str| !changed.contains(id);
    services.extend(
        previous
            .services
            .iter()
            .filter(|s| unchanged(s.app_id.as_str()))
            .cloned(),
    );
    problems.extend(
        previous
            .problems
            .iter()
            .filter(|p| p.app_id.as_deref().is_none_or(unchanged))
            .cloned(),
    );
    sorted(services, problems)
}

fn sorted(mut services: Vec<Service>, mut problems: Vec<Problem>) -> Catalog {
    services.sort_by(|a, b| (&a.app_id, a.port_index).cmp(&(&b.app_id, b.port_index)));
    problems.sort();
    Catalog { services, problems }
}

/// The services and problems of `apps`. `keep_health`: add this pass's verdicts to the memory
/// instead of replacing it (only some apps were looked at).
fn build<'a>(
    apps: impl Iterator<Item = &'a wire::App>,
    options: &ModelOptions,
    agents: &AgentAddrs,
    health: &mut HealthMemory,
    keep_health: bool,
) -> (Vec<Service>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut sorted: Vec<&wire::App> = apps
        .filter(|app| !is_the_balancer_itself(app, options))
        .collect();
    sorted.sort_by(|a, b| a.id.cmp(&b.id));

    let labelled = sorted.into_iter().map(|app| {
        let mut labels = AppLabels::parse(&app.labels);
        // App-level issues belong to the app that carries them, before any merge.
        for issue in labels.issues.drain(..) {
            problems.push(Problem::from_label(&app.id, None, issue));
        }
        (app, labels)
    });
    let merged = deployment::merge(labelled.collect::<Vec<_>>());

    let mut builder = Builder {
        options,
        agents,
        health: HealthPass::new(health),
        assigner: ServicePortAssigner::new(options.ip_per_task_ports.clone()),
        services: Vec::with_capacity(merged.len()),
        problems,
        agent_cache: HashMap::default(),
    };
    for app in merged {
        builder.add_app(app);
    }
    if keep_health {
        builder.health.finish_adding();
    } else {
        builder.health.finish();
    }
    (builder.services, builder.problems)
}

fn is_the_balancer_itself(app: &wire::App, options: &ModelOptions) -> bool {
    options
        .framework_name
        .as_deref()
        .is_some_and(|name| app.id.strip_prefix('/') == Some(name))
}

struct Builder<'a, 'o, 'm> {
    options: &'o ModelOptions,
    agents: &'o AgentAddrs,
    health: HealthPass<'m>,
    assigner: ServicePortAssigner,
    services: Vec<Service>,
    problems: Vec<Problem>,
    /// Each agent once: its shared name and address, however many tasks run there.
    agent_cache: HashMap<&'a str, (Arc<str>, Option<IpAddr>), ahash::RandomState>,
}

/// A service port being built, before its endpoints are known.
struct PortPlan {
    index: usize,
    service: Service,
}

impl<'a> Builder<'a, '_, '_> {
    fn add_app(&mut self, mut app: MergedApp<'a>) {
        let definition = app.definition;
        let mode = NetworkMode::of(definition);
        let service_ports = self.service_ports(&app, mode);

        for &index in app.labels.ports.keys() {
            if index >= service_ports.len() {
                self.problems.push(Problem {
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

        let mut plans = Vec::new();
        for (index, &declared) in service_ports.iter().enumerate() {
            let set = app.labels.ports.remove(&index).unwrap_or_default();
            if let Some(plan) = self.plan_port(&app, index, declared, set) {
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
            if checked && !self.health.is_healthy(task) {
                continue;
            }
            let agents = self.agents;
            let (agent, agent_ip) = self
                .agent_cache
                .entry(host)
                .or_insert_with(|| (host.into(), agents.get(host)))
                .clone();
            let ip = match network::task_ip(mode, task, agent_ip) {
                TaskIp::Ip(ip) => ip,
                TaskIp::NotYet => continue,
                TaskIp::Unresolved => {
                    self.problems.push(Problem::app(
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
                plan.service.endpoints.push(Endpoint {
                    addr: SocketAddr::new(ip, port),
                    task_id: task_id.clone(),
                    agent: agent.clone(),
                    state,
                    draining: merged.draining,
                    health_check_port,
                });
            }
        }
        self.services.extend(plans.into_iter().map(|p| p.service));
    }

    /// The service ports of an app in index order; `None` where a port is unusable (reported).
    fn service_ports(&mut self, app: &MergedApp<'_>, mode: NetworkMode) -> Vec<Option<u16>> {
        let declared = network::declared_service_ports(app.definition, mode);
        if !declared.is_empty() || mode != NetworkMode::Container {
            return declared
                .into_iter()
                .enumerate()
                .map(|(index, port)| match u16::try_from(port) {
                    Ok(port) => Some(port),
                    Err(_) => {
                        self.problems.push(Problem::port(
                            &app.id,
                            index,
                            ProblemKind::InvalidPort,
                            format!("service port {port} is out of range"),
                        ));
                        None
                    }
                })
                .collect();
        }
        // IP-per-task without service ports: assign from the range, from the first task's ports.
        let Some(first) = app
            .tasks
            .iter()
            .map(|t| t.task)
            .min_by(|a, b| a.id.cmp(&b.id))
        else {
            return Vec::new();
        };
        network::task_ports(app.definition, mode, first)
            .iter()
            .copied()
            .enumerate()
            .map(|(index, task_port)| {
                let assigned = self.assigner.assign(&app.id, task_port);
                if assigned.is_none() {
                    self.problems.push(Problem::port(
                        &app.id,
                        index,
                        ProblemKind::ServicePortsExhausted,
                        format!(
                            "no free port left in {}-{} to auto-assign",
                            self.options.ip_per_task_ports.start(),
                            self.options.ip_per_task_ports.end()
                        ),
                    ));
                }
                assigned
            })
            .collect()
    }

    /// Decides whether a port is served and with what configuration; reports why not.
    fn plan_port(
        &mut self,
        app: &MergedApp<'_>,
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
            self.problems.push(Problem::port(
                &app.id,
                index,
                ProblemKind::NotInGroup,
                message,
            ));
            return None;
        }
        for issue in issues {
            self.problems
                .push(Problem::from_label(&app.id, Some(index), issue));
        }
        if invalid {
            return None;
        }
        let enabled = labels.enabled.unwrap_or(!self.options.strict_mode);
        if !enabled {
            let message = if labels.enabled == Some(false) {
                "HAPROXY_{n}_ENABLED is false".to_owned()
            } else {
                "--strict-mode: only ports with HAPROXY_{n}_ENABLED=true are served".to_owned()
            };
            self.problems.push(Problem {
                label: Some(format!("HAPROXY_{index}_ENABLED")),
                ..Problem::port(&app.id, index, ProblemKind::Disabled, message)
            });
            return None;
        }

        let mode = self.resolve_mode(app.definition, index, &labels);
        if mode == Mode::Tcp && !labels.vhosts.is_empty() {
            self.problems.push(Problem {
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
                app_id: AppId::new(&app.id),
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
    let mut names: Vec<&str> = app
        .definition
        .labels
        .keys()
        .filter(|k| k.starts_with(&prefix))
        .map(String::as_str)
        .collect();
    names.sort_unstable();
    (!names.is_empty()).then(|| names.join(","))
}
