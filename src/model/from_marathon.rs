//! Wire apps → [`Catalog`]: services with typed labels and routable endpoints, plus problems.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use rayon::prelude::*;

use super::app_services::{AppContext, Part, ServicePorts};
use super::deployment::{self, MergedApp};
use super::labels::AppLabels;
use super::network::{self, AgentAddrs, NetworkMode, ServicePortAssigner};
use super::{Catalog, HealthMemory, ModelOptions, Problem, ProblemKind, Service};
use crate::marathon::wire;

/// Builds the catalog of one refresh, with no history. Deterministic: the result does not
/// depend on the order of apps or tasks in `apps`. `health` carries last health verdicts from
/// the previous refresh.
pub fn catalog(
    apps: &[wire::App],
    options: &ModelOptions,
    agents: &AgentAddrs,
    health: &mut HealthMemory,
) -> Catalog {
    catalog_after(&Catalog::default(), apps, options, agents, health)
}

/// Like [`catalog`], after `previous`: a port whose labels became invalid keeps the labels it
/// was served with in `previous` (its last good ones) instead of going dark; the invalid labels
/// are reported all the same.
pub fn catalog_after(
    previous: &Catalog,
    apps: &[wire::App],
    options: &ModelOptions,
    agents: &AgentAddrs,
    health: &mut HealthMemory,
) -> Catalog {
    let built = build(previous, apps.iter(), options, agents, health, false);
    if built.in_order {
        let Built {
            services,
            mut problems,
            ..
        } = built;
        problems.sort();
        return Catalog { services, problems };
    }
    sorted(built.services, built.problems)
}

/// Whether [`catalog_patch`] can rebuild this app alone: it is in no deployment group (groups
/// merge apps) and gets no auto-assigned service port (those depend on every other app).
pub fn patchable(app: &wire::App) -> bool {
    let mode = NetworkMode::of(app);
    let auto_assigned =
        mode == NetworkMode::Container && network::declared_service_ports(app, mode).is_empty();
    !super::labels::in_deployment_group(&app.labels) && !auto_assigned
}

/// The catalog after only the apps in `changed` changed: their services and problems are
/// rebuilt from `apps` (where they still are), every other app's are taken from `previous`.
/// Gives what [`catalog_after`] `previous` gives when `previous` was built with the same options and agents and
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
    let Built {
        mut services,
        mut problems,
        ..
    } = build(previous, changed_apps, options, agents, health, true);
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

fn sorted(mut services: Vec<Arc<Service>>, mut problems: Vec<Problem>) -> Catalog {
    services.sort_by(|a, b| (&a.app_id, a.port_index).cmp(&(&b.app_id, b.port_index)));
    problems.sort();
    Catalog { services, problems }
}

/// What [`build`] made of a refresh.
struct Built {
    services: Vec<Arc<Service>>,
    problems: Vec<Problem>,
    /// Whether `services` are already in catalog order, (app id, port index): they come out
    /// in app order unless apps were merged or given ports after the others, or two apps had
    /// one id. A 10,000-app refresh skips a sort that reads every service and its id.
    in_order: bool,
}

/// The services and problems of `apps`. `keep_health`: add this pass's verdicts to the memory
/// instead of replacing it (only some apps were looked at).
///
/// Large refreshes use every core the process may run on: labels are read, and apps turned
/// into services, in parallel parts. Service ports are assigned in between, in app order,
/// because an auto-assigned port depends on the apps before it.
fn build<'a>(
    previous: &Catalog,
    apps: impl Iterator<Item = &'a wire::App>,
    options: &ModelOptions,
    agents: &AgentAddrs,
    health: &mut HealthMemory,
    keep_health: bool,
) -> Built {
    let mut problems = Vec::new();
    let mut sorted: Vec<&wire::App> = apps
        .filter(|app| !is_the_balancer_itself(app, options))
        .collect();
    // In parallel above 2,000 apps (rayon sorts shorter slices on this thread). A sort
    // compares every two items that end up next to each other, so two apps with one id are
    // always seen here.
    let same_ids = AtomicBool::new(false);
    sorted.par_sort_by(|a, b| {
        let order = a.id.cmp(&b.id);
        if order == std::cmp::Ordering::Equal {
            same_ids.store(true, Ordering::Relaxed);
        }
        order
    });

    let context = AppContext {
        options,
        agents,
        health,
        previous,
    };
    // One parallel pass: an app's labels are read and, for an app in no deployment group with
    // declared service ports (nearly all), its services made there and then. Apps of
    // deployment groups are set aside to be merged, and IP-per-task apps without service ports
    // to be given ports, both in app order. (Each pass over 10,000 apps and each vector of
    // them cost a large build more in memory traffic than in work.)
    let mut parts: Vec<Part> = sorted
        .into_par_iter()
        .enumerate()
        .with_min_len(PARALLEL_PART)
        .fold(Part::default, |mut part, (at, app)| {
            let mut labels = AppLabels::parse(&app.labels);
            // App-level issues belong to the app that carries them, before any merge.
            for issue in labels.issues.drain(..) {
                part.problems
                    .push(Problem::from_label(&app.id, None, issue));
            }
            if labels.deployment.is_some() {
                part.grouped.push((at, app, labels));
            } else {
                add_or_set_aside(&context, &mut part, at, MergedApp::plain(app, labels));
            }
            part
        })
        .collect();
    let grouped: Vec<_> = parts
        .iter_mut()
        .flat_map(|part| std::mem::take(&mut part.grouped))
        .collect();
    let mut merged_or_assigned = grouped.len();
    let mut groups = Part::default();
    for (at, merged) in deployment::merge_at(grouped) {
        add_or_set_aside(&context, &mut groups, at, merged);
    }
    parts.push(groups);

    let mut unassigned: Vec<_> = parts
        .iter_mut()
        .flat_map(|part| std::mem::take(&mut part.unassigned))
        .collect();
    merged_or_assigned += unassigned.len();
    unassigned.sort_by_key(|(at, _)| *at);
    let mut assigner = ServicePortAssigner::new(options.ip_per_task_ports.clone());
    let assigned: Vec<_> = unassigned
        .into_iter()
        .map(|(_, app)| {
            let ports = assigned_service_ports(&app, options, &mut assigner, &mut problems);
            (app, ports)
        })
        .collect();
    parts.extend(
        assigned
            .into_par_iter()
            .with_min_len(PARALLEL_PART)
            .fold(Part::default, |mut part, (app, ports)| {
                context.add_app(&mut part, app, ports);
                part
            })
            .collect::<Vec<Part>>(),
    );
    let part = Part::concat(parts);
    if keep_health {
        health.extend(part.verdicts);
    } else {
        health.replace(part.verdicts);
    }
    problems.extend(part.problems);
    Built {
        services: part.services,
        problems,
        in_order: merged_or_assigned == 0 && !same_ids.into_inner(),
    }
}

/// Makes an app's services if it declares its service ports; otherwise sets it aside, with
/// its place in app order, for ports to be assigned.
fn add_or_set_aside<'a>(
    context: &AppContext<'_>,
    part: &mut Part<'a>,
    at: usize,
    app: MergedApp<'a>,
) {
    match declared_service_ports(&app) {
        Some((ports, port_problems)) => {
            part.problems.extend(port_problems);
            context.add_app(part, app, ports);
        }
        None => part.unassigned.push((at, app)),
    }
}

/// Apps per parallel part: below this a refresh runs on the calling thread alone.
const PARALLEL_PART: usize = 1024;

fn is_the_balancer_itself(app: &wire::App, options: &ModelOptions) -> bool {
    options
        .framework_name
        .as_deref()
        .is_some_and(|name| app.id.strip_prefix('/') == Some(name))
}

/// The service ports an app declares, in index order (`None` where a port is unusable, with
/// the problem); `None` for an IP-per-task app without any, whose ports are assigned.
fn declared_service_ports(app: &MergedApp<'_>) -> Option<(ServicePorts, Vec<Problem>)> {
    let mode = NetworkMode::of(app.definition);
    let declared = network::declared_service_ports(app.definition, mode);
    if declared.is_empty() && mode == NetworkMode::Container {
        return None;
    }
    let mut problems = Vec::new();
    let ports = declared
        .into_iter()
        .enumerate()
        .map(|(index, port)| match u16::try_from(port) {
            Ok(port) => Some(port),
            Err(_) => {
                problems.push(Problem::port(
                    &app.id,
                    index,
                    ProblemKind::InvalidPort,
                    format!("service port {port} is out of range"),
                ));
                None
            }
        })
        .collect();
    Some((ports, problems))
}

/// Service ports auto-assigned to an IP-per-task app without any, from the range; `None` where
/// the range is used up (reported).
fn assigned_service_ports(
    app: &MergedApp<'_>,
    options: &ModelOptions,
    assigner: &mut ServicePortAssigner,
    problems: &mut Vec<Problem>,
) -> ServicePorts {
    let mode = NetworkMode::of(app.definition);
    // IP-per-task without service ports: assign from the range, from the first task's ports.
    let Some(first) = app
        .tasks
        .iter()
        .map(|t| t.task)
        .min_by(|a, b| a.id.cmp(&b.id))
    else {
        return ServicePorts::new();
    };
    network::task_ports(app.definition, mode, first)
        .iter()
        .copied()
        .enumerate()
        .map(|(index, task_port)| {
            let assigned = assigner.assign(&app.id, task_port);
            if assigned.is_none() {
                problems.push(Problem::port(
                    &app.id,
                    index,
                    ProblemKind::ServicePortsExhausted,
                    format!(
                        "no free port left in {}-{} to auto-assign",
                        options.ip_per_task_ports.start(),
                        options.ip_per_task_ports.end()
                    ),
                ));
            }
            assigned
        })
        .collect()
}
