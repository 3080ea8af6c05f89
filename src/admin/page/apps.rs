//! The page's apps as the server renders them: one card per app with its routes, each backend
//! (one per port) with its endpoints once, whatever the listeners. The same markup as the
//! script's `appCard` (`apps.js`), which adds rates and charts and replaces this list.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::Escape;
use crate::model::{Balance, Mode, TaskEndpoint};
use crate::routing::report::{BackendRow, RouteRow, RoutesReport};
use crate::routing::{Backend, RoutingTable};
use crate::upstream::Target;

/// Apps rendered without the script (alphabetically); `/routes` and the script's search reach
/// the rest.
pub const SERVER_APPS: usize = 100;

#[derive(Default)]
struct App<'r, 't> {
    routes: Vec<&'r RouteRow<'t>>,
    backends: Vec<&'r BackendRow<'t>>,
}

pub fn apps(table: &RoutingTable, report: &RoutesReport<'_>, out: &mut String) {
    let mut apps: BTreeMap<&str, App<'_, '_>> = BTreeMap::new();
    for backend in &report.backends {
        apps.entry(backend.app_id)
            .or_default()
            .backends
            .push(backend);
    }
    for route in &report.routes {
        apps.entry(route.app_id).or_default().routes.push(route);
    }
    let backends: BTreeMap<&str, &Backend> =
        table.backends().iter().map(|b| (&*b.name, &**b)).collect();
    for (id, app) in apps.iter().take(SERVER_APPS) {
        app_card(id, app, &backends, out);
    }
    if apps.is_empty() {
        out.push_str(r#"<p class="empty">No apps: no app is exposed by this balancer.</p>"#);
    }
    if apps.len() > SERVER_APPS {
        let _ = write!(
            out,
            r#"<p class="more">… and {} more apps: <a href="/routes">/routes</a> lists them all.</p>"#,
            apps.len() - SERVER_APPS
        );
    }
}

fn app_card(id: &str, app: &App<'_, '_>, backends: &BTreeMap<&str, &Backend>, out: &mut String) {
    let _ = write!(
        out,
        r#"<article class="app" data-app="{id}"><div class="app-head"><h3>{id}</h3></div><ul class="routes">"#,
        id = Escape(id),
    );
    for route in &app.routes {
        route_chip(route, out);
    }
    out.push_str("</ul>");
    for row in &app.backends {
        let _ = write!(
            out,
            r#"<div class="backend" data-backend="{name}"><div class="backend-head"><span class="name">{name}</span><span class="about">{about}</span></div><div class="endpoints">"#,
            name = Escape(row.name),
            about = Escape(&about(row)),
        );
        match backends.get(row.name) {
            Some(backend) if !backend.targets.is_empty() => {
                for (endpoint, target) in backend.endpoints().iter().zip(&backend.targets) {
                    endpoint_chip(endpoint, target, out);
                }
            }
            _ => out.push_str(r#"<span class="none">no endpoints</span>"#),
        }
        out.push_str("</div></div>");
    }
    out.push_str("</article>\n");
}

/// The same words as the script's `about`.
fn about(row: &BackendRow<'_>) -> String {
    let mode = match row.mode {
        Mode::Http => "http",
        Mode::Tcp => "tcp",
    };
    let balance = match row.balance {
        Balance::RoundRobin => "roundrobin",
        Balance::LeastConn => "leastconn",
        Balance::Source => "source",
    };
    let sticky = if row.sticky { " · sticky" } else { "" };
    format!(
        "port {} · service port {} · {mode} · {protocol} · {balance}{sticky}",
        row.port_index,
        row.service_port,
        protocol = row.protocol
    )
}

/// A route as a chip: the listener, then the host and path it matches (none on a service
/// port). The same markup as the script's `routeChip`.
fn route_chip(route: &RouteRow<'_>, out: &mut String) {
    let host = if route.host == "*" { "" } else { &route.host };
    let path = if route.path == "*" { "" } else { &route.path };
    let _ = write!(
        out,
        r#"<li class="route" data-listener="{listener}" data-host="{host_attr}" data-path="{path_attr}" data-app="{app}" data-backend="{backend}"><span class="listener">{listener}</span><span class="where">{host}{path}</span></li>"#,
        listener = Escape(&route.listener),
        host_attr = Escape(&route.host),
        path_attr = Escape(&route.path),
        app = Escape(route.app_id),
        backend = Escape(route.backend),
        host = Escape(host),
        path = Escape(path),
    );
}

/// The same markup as the script's `endpoint`.
fn endpoint_chip(endpoint: &TaskEndpoint, target: &Target, out: &mut String) {
    let (key, label) = health(target);
    let in_flight = target.state.in_flight();
    let _ = write!(
        out,
        r#"<span class="ep {key}" data-endpoint="{addr}" data-health="{key}" data-in-flight="{in_flight}" title="task {task} ({state}): {label}, {in_flight} in flight"><i class="dot"></i><span class="addr">{addr}</span>"#,
        addr = endpoint.addr,
        task = Escape(&endpoint.task_id),
        state = format!("{:?}", endpoint.state).to_lowercase(),
    );
    if key != "up" {
        let _ = write!(out, "<em>{label}</em>");
    }
    let busy = if in_flight > 0 {
        r#" class="busy""#
    } else {
        ""
    };
    let _ = write!(out, "<b{busy}>{in_flight}</b></span>");
}

/// (class, words): an active check failing says the most, then a passive back-off, then a drain.
fn health(target: &Target) -> (&'static str, &'static str) {
    if target.state.is_check_failed() {
        ("check-failed", "check failed")
    } else if target.state.is_down() {
        ("down", "down")
    } else if target.draining {
        ("draining", "draining")
    } else {
        ("up", "up")
    }
}
