//! Synthetic Marathon app sets of any size, for benchmarks, load tests and the demo.
//!
//! Deterministic: the same arguments always give the same apps. Tasks run on loopback
//! addresses (`127.0.x.y`), so a set can be served on this machine without reaching anything else.

use crate::marathon::wire;
use crate::model::{self, ModelOptions};
use crate::routing::{BuildOptions, RoutingTable};

/// The shape of a generated app set.
#[derive(Debug, Clone)]
pub struct Shape {
    /// Apps with an exact vhost `app-<i>.example.com`.
    pub exact_apps: usize,
    /// Apps with a wildcard vhost `*.wild-<i>.example.net`.
    pub wildcard_apps: usize,
    /// Path-prefix routes added on the host `paths.example.com` (one app each).
    pub path_apps: usize,
    pub tasks_per_app: usize,
    /// Group label on every app.
    pub group: &'static str,
}

impl Default for Shape {
    fn default() -> Self {
        Shape {
            exact_apps: 100,
            wildcard_apps: 0,
            path_apps: 0,
            tasks_per_app: 3,
            group: "external",
        }
    }
}

/// Generates the apps; service ports start at 10000 and never collide.
pub fn apps(shape: &Shape) -> Vec<wire::App> {
    let total = shape.exact_apps + shape.wildcard_apps + shape.path_apps;
    (0..total)
        .map(|i| {
            let mut labels = wire::Labels::default();
            labels.insert("HAPROXY_GROUP".to_owned(), shape.group.to_owned());
            let vhost = if i < shape.exact_apps {
                format!("app-{i}.example.com")
            } else if i < shape.exact_apps + shape.wildcard_apps {
                format!("*.wild-{i}.example.net")
            } else {
                labels.insert(
                    "HAPROXY_0_PATH".to_owned(),
                    format!("/p{}", i - shape.exact_apps - shape.wildcard_apps),
                );
                "paths.example.com".to_owned()
            };
            labels.insert("HAPROXY_0_VHOST".to_owned(), vhost);
            let service_port = 10000 + (i % 50000) as u32;
            wire::App {
                id: format!("/synthetic/app-{i:05}"),
                labels,
                instances: shape.tasks_per_app as u32,
                port_definitions: vec![wire::PortDefinition {
                    port: Some(service_port),
                }],
                tasks: (0..shape.tasks_per_app)
                    .map(|t| wire::Task {
                        id: format!("synthetic_app-{i:05}.instance-{t:04}._app.1").into(),
                        host: Some(format!("127.0.{}.{}", (t / 250) % 250, t % 250 + 1)),
                        state: Some(wire::TaskStatus::Running),
                        ports: vec![20000 + (i % 40000) as u32],
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }
        })
        .collect()
}

/// The routing table the balancer builds from [`apps`] with default options.
pub fn table(shape: &Shape) -> RoutingTable {
    let catalog = model::catalog(
        &apps(shape),
        &ModelOptions::default(),
        &Default::default(),
        &mut Default::default(),
    );
    RoutingTable::build(catalog, &BuildOptions::default(), 1)
}
