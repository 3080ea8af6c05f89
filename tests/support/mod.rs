//! Helpers shared by the integration tests: Marathon app JSON in, routing table out.
#![allow(dead_code)]

use serde_json::{json, Value};
use switchyard::marathon::parse_apps;
use switchyard::model::{
    self, AgentAddrs, Groups, HealthMemory, ModelOptions, Problem, ProblemKind,
};
use switchyard::routing::{BuildOptions, RoutingTable};

/// Options as the Universe package runs Marathon-LB: `--group external --health-check`.
pub fn options() -> ModelOptions {
    ModelOptions::default()
}

pub fn options_with_groups(groups: &str) -> ModelOptions {
    ModelOptions {
        groups: Groups::parse(groups),
        ..ModelOptions::default()
    }
}

/// Builds a table from a `{"apps": [...]}` document, through the same wire parser Marathon's
/// responses go through. Task hosts are IP literals, so no resolution is needed.
pub fn table(apps: Value, options: &ModelOptions) -> RoutingTable {
    table_with_memory(apps, options, &mut HealthMemory::default())
}

pub fn table_with_memory(
    apps: Value,
    options: &ModelOptions,
    memory: &mut HealthMemory,
) -> RoutingTable {
    RoutingTable::build(catalog(apps, options, memory), &BuildOptions::default(), 1)
}

/// The catalog of a `{"apps": [...]}` document, through the wire parser.
pub fn catalog(apps: Value, options: &ModelOptions, memory: &mut HealthMemory) -> model::Catalog {
    let body = serde_json::to_vec(&json!({ "apps": apps })).unwrap();
    let snapshot = parse_apps(&body).unwrap();
    model::catalog(&snapshot.apps, options, &AgentAddrs::default(), memory)
}

/// Two agent addresses for the tasks of `host_app` and hand-written apps.
pub const A: &str = "127.0.0.1";
pub const B: &str = "127.0.0.2";

/// A host-networking app with one task per `(host, port)` on service port `service_port`.
pub fn host_app(id: &str, service_port: u16, labels: Value, tasks: &[(&str, u16)]) -> Value {
    json!({
        "id": id,
        "instances": tasks.len(),
        "labels": labels,
        "portDefinitions": [{"port": service_port, "protocol": "tcp"}],
        "tasks": tasks.iter().enumerate().map(|(i, (host, port))| json!({
            "id": format!("{}.task-{i}", id.trim_start_matches('/').replace('/', "_")),
            "appId": id,
            "host": host,
            "state": "TASK_RUNNING",
            "ports": [port],
        })).collect::<Vec<_>>(),
    })
}

/// The app id a request with this Host and path is routed to on the vhost port.
pub fn routed(table: &RoutingTable, host: &str, path: &str) -> Option<String> {
    table
        .route(host.as_bytes(), path)
        .map(|r| r.backend.app_id().to_string())
}

/// The endpoint addresses of the backend for `(app id, port index)`.
pub fn endpoints(table: &RoutingTable, app_id: &str, port_index: usize) -> Vec<String> {
    table
        .backends()
        .iter()
        .find(|b| b.app_id().as_str() == app_id && b.service.port_index == port_index)
        .map(|b| b.endpoints().iter().map(|e| e.addr.to_string()).collect())
        .unwrap_or_default()
}

pub fn problems_of(table: &RoutingTable, kind: ProblemKind) -> Vec<&Problem> {
    table.problems().iter().filter(|p| p.kind == kind).collect()
}
pub mod grpc;
pub mod process;
pub mod proxy;
pub mod raw;
pub mod scrape;

/// A sample's value in a `/metrics` text, e.g. `metric(text, "switchyard_x_total")` or with
/// its labels `metric(text, "switchyard_x_total{kind=\"full\"}")`; 0 when absent.
pub fn metric(text: &str, sample: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(sample)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}
