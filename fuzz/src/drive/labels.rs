//! One app with an arbitrary label map (keys mostly the real `HAPROXY_*` names) → model →
//! table, with the invariants the model promises.

use std::collections::HashMap;

use arbitrary::Arbitrary;
use serde_json::json;
use switchyard::marathon;
use switchyard::model::ProblemKind;
use switchyard::routing::report::RoutesReport;

use super::apps::build_table;

/// Marathon-LB's per-port label names (`HAPROXY_{n}_<NAME>`), plus two of its templates.
const PORT_LABELS: &[&str] = &[
    "VHOST",
    "PATH",
    "BACKEND_WEIGHT",
    "PORT",
    "MODE",
    "BALANCE",
    "STICKY",
    "ENABLED",
    "GROUP",
    "REDIRECT_TO_HTTPS",
    "USE_HSTS",
    "AUTH",
    "SSL_CERT",
    "BIND_ADDR",
    "BIND_OPTIONS",
    "HTTP_BACKEND_PROXYPASS_PATH",
    "HTTP_BACKEND_REVPROXY_PATH",
    "HTTP_BACKEND_REDIR",
    "BACKEND_NETWORK_ALLOWED_ACL",
    "BACKEND_HEALTHCHECK_PORT_INDEX",
    "FRONTEND_HEAD",
    "BACKEND_HEAD",
];

/// App-level `HAPROXY_<NAME>` labels.
const APP_LABELS: &[&str] = &[
    "GROUP",
    "DEPLOYMENT_GROUP",
    "DEPLOYMENT_ALT_PORT",
    "DEPLOYMENT_COLOUR",
    "DEPLOYMENT_STARTED_AT",
    "DEPLOYMENT_TARGET_INSTANCES",
    "DEPLOYMENT_NEW_INSTANCES",
];

/// Values the parsers have special cases for.
const VALUES: &[&str] = &[
    "",
    "true",
    "false",
    "0",
    "80",
    "65536",
    "-1",
    "http",
    "tcp",
    "roundrobin",
    "leastconn",
    "source",
    "a.example.test,*.example.test",
    "/api /v2",
    "realm:user:$1$salt$hash",
    "10.0.0.0/8,127.0.0.1",
    "external",
    "*",
    "2026-11-26T12:00:00Z",
];

#[derive(Debug, Arbitrary)]
pub struct LabelsInput {
    labels: Vec<(Key, Value)>,
    /// Service ports of the app (host networking), 0 to a few.
    service_ports: Vec<u16>,
    tasks: u8,
    /// Run with Marathon's health checks present and failing for odd tasks.
    health_checks: bool,
}

#[derive(Debug, Arbitrary)]
enum Key {
    Port(u8, u8),
    App(u8),
    Raw(String),
}

#[derive(Debug, Arbitrary)]
enum Value {
    Known(u8),
    Raw(String),
}

impl Key {
    fn render(&self) -> String {
        match self {
            Key::Port(index, name) => {
                let name = PORT_LABELS[usize::from(*name) % PORT_LABELS.len()];
                // Mostly the ports the app has; sometimes one it does not.
                let index = if index & 0x80 == 0 { index % 3 } else { *index };
                format!("HAPROXY_{index}_{name}")
            }
            Key::App(name) => format!(
                "HAPROXY_{}",
                APP_LABELS[usize::from(*name) % APP_LABELS.len()]
            ),
            Key::Raw(raw) => raw.clone(),
        }
    }
}

impl Value {
    fn render(&self) -> String {
        match self {
            Value::Known(i) => VALUES[usize::from(*i) % VALUES.len()].to_owned(),
            Value::Raw(raw) => raw.clone(),
        }
    }
}

/// Drives one app.
pub fn labels(input: &LabelsInput) {
    let mut labels: HashMap<String, String> = input
        .labels
        .iter()
        .map(|(k, v)| (k.render(), v.render()))
        .collect();
    labels
        .entry("HAPROXY_GROUP".to_owned())
        .or_insert_with(|| "external".to_owned());
    let ports: Vec<u16> = input.service_ports.iter().take(4).copied().collect();
    let tasks: Vec<_> = (0..input.tasks % 4)
        .map(|i| {
            let mut task = json!({
                "id": format!("web.task-{i}"),
                "host": if i == 3 { "agent.invalid" } else { "127.0.0.1" },
                "state": "TASK_RUNNING",
                "ports": ports.iter().enumerate().map(|(p, _)| 31000 + u32::from(i) * 10 + p as u32).collect::<Vec<_>>(),
            });
            if input.health_checks {
                task["healthCheckResults"] = json!([{"alive": i % 2 == 0}]);
            }
            task
        })
        .collect();
    let health_checks = if input.health_checks {
        json!([{"protocol": "MARATHON_HTTP", "path": "/health", "portIndex": 0}])
    } else {
        json!([])
    };
    let app = json!({
        "id": "/fuzz/web",
        "instances": tasks.len(),
        "labels": labels,
        "portDefinitions": ports.iter().map(|p| json!({"port": p})).collect::<Vec<_>>(),
        "healthChecks": health_checks,
        "tasks": tasks,
    });
    let body = serde_json::to_vec(&json!({ "apps": [app] })).expect("JSON renders");
    let snapshot = marathon::parse_apps(&body).expect("a rendered app list parses");
    assert!(
        snapshot.errors.is_empty(),
        "a rendered app parses: {:?}",
        snapshot.errors
    );

    // Apps of a blue/green deployment group are served (and reported) as one app named after
    // the group, as Marathon-LB merges them.
    let merged_id = labels
        .get("HAPROXY_DEPLOYMENT_GROUP")
        .map(|g| g.trim())
        .filter(|g| !g.is_empty() && *g != "/")
        .map(|g| match g.starts_with('/') {
            true => g.to_owned(),
            false => format!("/{g}"),
        });
    let table = build_table(&snapshot);
    for problem in table.problems() {
        assert!(
            problem.app_id.as_deref() == Some("/fuzz/web") || problem.app_id == merged_id,
            "a problem names its app (or the deployment group it is merged into): {problem:?}"
        );
        // One label, or the list of a port's labels joined by commas (labels for a port the
        // app lacks; a name may hold a comma itself, so the list is compared whole).
        if let Some(label) = &problem.label {
            let port_labels = |index: usize| {
                let prefix = format!("HAPROXY_{index}_");
                let mut names: Vec<&str> = labels
                    .keys()
                    .map(|k| k.as_str())
                    .filter(|k| k.starts_with(&prefix))
                    .collect();
                names.sort_unstable();
                names.join(",")
            };
            assert!(
                labels.contains_key(label)
                    || problem.port_index.is_some_and(|i| *label == port_labels(i)),
                "a problem names labels the app has: {problem:?}"
            );
        }
        // An unusable value takes its port out of service.
        if problem.kind == ProblemKind::InvalidLabel {
            if let Some(index) = problem.port_index {
                assert!(
                    table
                        .backends()
                        .iter()
                        .all(|b| b.service.port_index != index),
                    "port {index} is served despite {problem:?}"
                );
            }
        }
    }
    // Deterministic: the same input gives the same table.
    let again = build_table(&snapshot);
    assert_eq!(
        RoutesReport::new(&table).to_text(),
        RoutesReport::new(&again).to_text(),
        "two builds of one input differ"
    );
}
