//! Building tables: endpoint state carried across tables by address, a patched rebuild reusing
//! the unchanged apps' backends, a parallel build equal to the one-thread build, and the
//! catalog's (id, port index) order.

use crate::support;

use serde_json::json;
use support::*;
use switchyard::model::ModelOptions;

#[test]
fn endpoint_state_carries_across_tables_by_address() {
    use switchyard::routing::{BuildOptions, RoutingTable};
    use switchyard::upstream::Registry;
    let registry = Registry::default();
    let build = |ports: &[u16], generation| {
        let apps = json!([host_app(
            "/app",
            10001,
            json!({"HAPROXY_GROUP": "external"}),
            &ports.iter().map(|p| (A, *p)).collect::<Vec<_>>()
        )]);
        let catalog = catalog(apps, &options(), &mut Default::default());
        RoutingTable::build_with(catalog, &BuildOptions::default(), generation, &registry)
    };
    let first = build(&[1, 2], 1);
    let state_of = |t: &RoutingTable, port: u16| {
        t.backends()[0]
            .targets
            .iter()
            .find(|x| x.addr().port() == port)
            .map(|x| x.state.clone())
    };
    let kept = state_of(&first, 2).unwrap();
    let _in_flight = kept.begin();
    let second = build(&[2, 3], 2);
    let carried = state_of(&second, 2).unwrap();
    assert!(
        std::sync::Arc::ptr_eq(&kept, &carried),
        "same state for the same address"
    );
    assert_eq!(carried.in_flight(), 1, "in-flight count survives the swap");
    assert_eq!(
        registry.len(),
        3,
        "the first table still holds the removed endpoint"
    );
    drop(first);
    let third = build(&[2, 3], 3);
    assert!(std::sync::Arc::ptr_eq(&kept, &state_of(&third, 2).unwrap()));
    assert_eq!(
        registry.len(),
        2,
        "the removed endpoint's state is forgotten once no table holds it"
    );
}

/// A patched rebuild builds only the changed app's backend: the others are the last table's
/// (same endpoint states, same round-robin position), and a later full build still finds
/// their endpoint states in the registry.
#[test]
fn a_patched_rebuild_reuses_the_unchanged_apps_backends() {
    use std::sync::Arc;
    use switchyard::routing::RoutingTable;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let snapshot = |web_ports: &[u16]| {
        let web: Vec<_> = web_ports.iter().map(|p| (A, *p)).collect();
        let apps = json!([
            host_app(
                "/api",
                10001,
                json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "api.example.com"}),
                &[(B, 1), (B, 2)]
            ),
            host_app(
                "/web",
                10002,
                json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"}),
                &web
            ),
        ]);
        let body = serde_json::to_vec(&json!({ "apps": apps })).unwrap();
        switchyard::marathon::parse_apps(&body).unwrap()
    };
    let backend = |t: &RoutingTable, id: &str| {
        t.backends()
            .iter()
            .find(|b| b.app_id().as_str() == id)
            .unwrap()
            .clone()
    };
    let mut pipeline = switchyard::serve::pipeline::Pipeline::new(options(), Default::default());
    let first = runtime.block_on(pipeline.rebuild(&snapshot(&[3])));
    let api = backend(&first, "/api");
    let in_flight = api.targets[0].state.begin();
    let changed: std::collections::BTreeSet<String> = ["/web".to_owned()].into();
    let second = runtime.block_on(pipeline.rebuild_changed(&snapshot(&[3, 4]), &changed));
    assert!(
        Arc::ptr_eq(&api, &backend(&second, "/api")),
        "the unchanged app's backend is the last table's"
    );
    assert!(!Arc::ptr_eq(
        &backend(&first, "/web"),
        &backend(&second, "/web")
    ));
    assert_eq!(
        backend(&second, "/web").targets.len(),
        2,
        "the change is in"
    );
    assert_eq!(
        routed(&second, "api.example.com", "/").as_deref(),
        Some("/api")
    );
    // A full build makes new backends; the reused one's endpoint states were kept for it.
    let third = runtime.block_on(pipeline.rebuild(&snapshot(&[3, 4])));
    let rebuilt = backend(&third, "/api");
    assert!(!Arc::ptr_eq(&api, &rebuilt), "a full build builds anew");
    assert!(
        Arc::ptr_eq(&api.targets[0].state, &rebuilt.targets[0].state),
        "the endpoint state outlived the reuse"
    );
    assert_eq!(rebuilt.targets[0].state.in_flight(), 1);
    drop(in_flight);
}

/// A table large enough to be built in parallel parts is the very table one thread builds, and
/// the health memory is the same: problems, conflicts, health and deployment groups included.
#[test]
fn a_large_table_built_in_parallel_parts_is_the_one_thread_table() {
    use switchyard::marathon::wire;
    use switchyard::model::{self, HealthMemory};
    use switchyard::routing::report::RoutesReport;
    use switchyard::routing::{BuildOptions, RoutingTable};
    use switchyard::sim::synthetic::{self, Shape};

    let mut apps = synthetic::apps(&Shape {
        exact_apps: 4_000,
        wildcard_apps: 500,
        path_apps: 20,
        tasks_per_app: 3,
        ..Shape::default()
    });
    for (i, app) in apps.iter_mut().enumerate() {
        if i % 7 == 0 {
            app.labels
                .insert("HAPROXY_0_BALANCE".into(), "bogus".into());
        }
        if i % 11 == 0 {
            // The service port of the app before: a conflict.
            app.port_definitions[0].port = Some(10000 + i.saturating_sub(1) as u32);
        }
        if i % 13 == 0 {
            app.health_checks = vec![wire::HealthCheck::default()];
            for (t, task) in app.tasks.iter_mut().enumerate() {
                task.health_check_results = match t {
                    0 => Some(vec![wire::HealthCheckResult { alive: true }]),
                    1 => Some(vec![wire::HealthCheckResult { alive: false }]),
                    _ => None,
                };
            }
        }
        if i % 17 == 0 {
            app.labels.insert(
                "HAPROXY_DEPLOYMENT_GROUP".into(),
                format!("group-{}", i % 3),
            );
        }
        if i % 19 == 0 {
            // IP-per-task without service ports: ports assigned in app order, across parts.
            app.port_definitions.clear();
            app.ip_address = Some(wire::IpAddressSpec {
                discovery: Some(wire::Discovery {
                    ports: vec![wire::DiscoveryPort { number: Some(8080) }],
                }),
            });
            for (t, task) in app.tasks.iter_mut().enumerate() {
                task.ip_addresses = vec![wire::TaskIpAddress {
                    ip_address: Some(format!("10.9.{}.{}", i / 250, t + 1)),
                }];
            }
        }
    }
    let auto_assigned = apps
        .iter()
        .filter(|a| a.ip_address.is_some() && !a.labels.contains_key("HAPROXY_DEPLOYMENT_GROUP"))
        .count();
    assert!(
        auto_assigned > 200,
        "the set has apps whose ports are assigned"
    );
    let build = |threads: usize, apps: &[wire::App]| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| {
            let mut memory = HealthMemory::default();
            let catalog = model::catalog(
                apps,
                &ModelOptions::default(),
                &Default::default(),
                &mut memory,
            );
            let table = RoutingTable::build(catalog, &BuildOptions::default(), 1);
            let report = serde_json::to_value(RoutesReport::new(&table)).unwrap();
            (report, memory.len())
        })
    };
    let (one, one_memory) = build(1, &apps);
    assert!(
        one["problems"].as_array().is_some_and(|p| p.len() > 500),
        "the set has problems to compare"
    );
    // More apps than the range (10050-10100) has ports: which ones get a port and which are
    // reported depends on the order of assignment.
    assert!(
        one.to_string().contains("service_ports_exhausted"),
        "the assignment range ran out"
    );
    let (four, four_memory) = build(4, &apps);
    assert_eq!(one, four, "one thread and four build the same table");
    assert_eq!(one_memory, four_memory);
    assert!(one_memory > 0, "health verdicts were remembered");

    apps.reverse();
    let (reversed, _) = build(4, &apps);
    assert_eq!(one, reversed, "input order does not matter either");
}

#[test]
fn two_apps_with_one_id_still_give_a_catalog_in_id_and_port_order() {
    // Marathon never sends two apps with one id, but a document could. Each app has two
    // ports: in app order their services interleave wrongly (p0 p1 p0 p1), and the catalog's
    // lookups need (id, port index) order (p0 p0 p1 p1).
    let app = |first_port: u16| {
        json!({
            "id": "/twin",
            "labels": {"HAPROXY_GROUP": "external"},
            "portDefinitions": [{"port": first_port}, {"port": first_port + 1}],
            "tasks": [{"id": format!("twin.{first_port}"), "host": A, "state": "TASK_RUNNING",
                       "ports": [first_port + 100, first_port + 101]}],
        })
    };
    let catalog = catalog(
        json!([app(10001), app(10011)]),
        &options(),
        &mut Default::default(),
    );
    let order: Vec<_> = catalog
        .services
        .iter()
        .map(|s| (s.app_id.to_string(), s.port_index, s.service_port))
        .collect();
    let twin = |index, port| ("/twin".to_owned(), index, port);
    assert_eq!(
        order,
        [
            twin(0, 10001),
            twin(0, 10011),
            twin(1, 10002),
            twin(1, 10012)
        ]
    );
    assert!(catalog.service("/twin", 1).is_some());
}
