//! `/v2/apps` bytes → parse → model → routing table, as `switchyard routes --apps-file` does,
//! then the routes report and a few lookups on the table.

use std::collections::{BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr};

use switchyard::marathon::{self, AppsSnapshot};
use switchyard::model::{
    self, AgentAddrs, Catalog, HealthMemory, ModelOptions, Problem, ProblemKind,
};
use switchyard::routing::report::RoutesReport;
use switchyard::routing::{BuildOptions, RoutingTable};

/// Drives one `/v2/apps` answer.
pub fn marathon_apps(data: &[u8]) {
    let Ok(snapshot) = marathon::parse_apps(data) else {
        return;
    };
    let table = build_table(&snapshot);
    let report = RoutesReport::new(&table);
    let _ = report.to_text();
    serde_json::to_string(&report).expect("the routes report always renders as JSON");
    for problem in table.problems() {
        if problem.kind == ProblemKind::MalformedApp {
            assert!(
                problem.app_id.is_some(),
                "a malformed app is named: {problem:?}"
            );
        }
    }
    lookups(&table, data);
    patch_matches_full_build(&snapshot);
}

/// Agents resolve without DNS: every name to 127.0.0.1, except `*.invalid` (unresolvable).
pub fn agents(apps: &[marathon::wire::App]) -> AgentAddrs {
    let resolved: HashMap<String, IpAddr> = AgentAddrs::names_to_resolve(apps.iter())
        .into_iter()
        .filter(|name| !name.ends_with(".invalid"))
        .map(|name| (name, IpAddr::V4(Ipv4Addr::LOCALHOST)))
        .collect();
    AgentAddrs::new(resolved)
}

/// What `Pipeline::rebuild` does after resolving agents: the catalog, parse errors as problems,
/// the table.
pub fn build_table(snapshot: &AppsSnapshot) -> RoutingTable {
    let options = ModelOptions::default();
    let agents = agents(&snapshot.apps);
    let mut catalog = model::catalog(
        &snapshot.apps,
        &options,
        &agents,
        &mut HealthMemory::default(),
    );
    catalog.problems.extend(
        snapshot
            .errors
            .iter()
            .map(|e| Problem::app(&e.app_id, ProblemKind::MalformedApp, e.to_string())),
    );
    RoutingTable::build(catalog, &BuildOptions::default(), 1)
}

/// A vhost, an app id and a service port of the table, looked up the way requests do; and the
/// input's tail as a raw Host value.
fn lookups(table: &RoutingTable, data: &[u8]) {
    if let Some(route) = table.http_routes().first() {
        let host = format!("{}:80", route.vhost.to_string().to_uppercase());
        let _ = table.route(host.as_bytes(), "/");
        let _ = table.route(route.vhost.to_string().as_bytes(), "/a/b?c");
    }
    if let Some(backend) = table.backends().first() {
        let found = table.app(backend.app_id().as_str());
        if backend.mode() == model::Mode::Http {
            assert!(found.is_some(), "an HTTP backend is reachable by app id");
        }
        let _ = table.service_port(backend.service.service_port);
    }
    let tail = &data[data.len().saturating_sub(40)..];
    let _ = table.route(tail, "/");
}

/// `catalog_patch`'s contract: when every app is patchable, rebuilding one app over the catalog
/// of the others gives what a full build gives.
fn patch_matches_full_build(snapshot: &AppsSnapshot) {
    let apps = &snapshot.apps;
    let Some(last) = apps.last() else { return };
    if !apps.iter().all(model::patchable) {
        return;
    }
    let options = ModelOptions::default();
    let agents = agents(apps);
    let full = model::catalog(apps, &options, &agents, &mut HealthMemory::default());
    let others: Vec<_> = apps.iter().filter(|a| a.id != last.id).cloned().collect();
    let previous = model::catalog(&others, &options, &agents, &mut HealthMemory::default());
    let changed = BTreeSet::from([last.id.clone()]);
    let patched = model::catalog_patch(
        &previous,
        apps,
        &changed,
        &options,
        &agents,
        &mut HealthMemory::default(),
    );
    assert_same(&full, &patched, &last.id);
}

fn assert_same(full: &Catalog, patched: &Catalog, changed: &str) {
    assert_eq!(
        full.services, patched.services,
        "patching {changed} gave other services than a full build"
    );
    assert_eq!(
        full.problems, patched.problems,
        "patching {changed} gave other problems than a full build"
    );
}
