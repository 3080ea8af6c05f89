//! Property tests: the table does not depend on input order, and no input panics the parsers.

use crate::support;

use std::collections::HashMap;

use proptest::prelude::*;
use serde_json::{json, Value};
use switchyard::marathon::labels::Labels;
use switchyard::model::labels::AppLabels;
use switchyard::model::vhost::{normalize_host, VHostError, MAX_HOST_LEN};
use switchyard::model::VHost;
use switchyard::routing::report::RoutesReport;

const HOSTS: &[&str] = &[
    "a.example.com",
    "b.example.com",
    "*.example.com",
    "*.b.example.com",
    "c.example.org",
];
const PATHS: &[&str] = &["/api", "/v2 /v3", "-i /Admin", "/"];
const STATES: &[&str] = &[
    "TASK_RUNNING",
    "TASK_RUNNING",
    "TASK_STAGING",
    "TASK_LOST",
    "TASK_KILLING",
];

/// One random app: a few ports, labels drawn from small pools so that apps collide on vhosts,
/// paths and service ports, tasks with random states and health.
fn app_strategy(index: usize) -> impl Strategy<Value = Value> {
    (
        1usize..=2,
        prop::collection::vec((0..HOSTS.len(), prop::option::of(0..PATHS.len()), -1i64..3), 2),
        prop::collection::vec((0..STATES.len(), prop::option::of(any::<bool>()), 1u8..=3), 0..4),
        0u16..4,
        any::<bool>(),
        any::<bool>(),
        (any::<bool>(), prop::option::of(1u8..=3)),
    )
        .prop_map(move |(ports, port_labels, tasks, port_base, has_checks, in_group, (ip_per_task, deployment))| {
            let mut labels = serde_json::Map::new();
            if in_group {
                labels.insert("HAPROXY_GROUP".into(), json!("external"));
            }
            for (i, (host, path, weight)) in port_labels.iter().enumerate().take(ports) {
                labels.insert(format!("HAPROXY_{i}_VHOST"), json!(HOSTS[*host]));
                if let Some(p) = path {
                    labels.insert(format!("HAPROXY_{i}_PATH"), json!(PATHS[*p]));
                }
                if *weight != 0 {
                    labels.insert(format!("HAPROXY_{i}_BACKEND_WEIGHT"), json!(weight.to_string()));
                }
            }
            if let Some(day) = deployment {
                // Apps sharing a deployment group merge, so input order must not matter there either.
                labels.insert("HAPROXY_DEPLOYMENT_GROUP".into(), json!("dg"));
                labels.insert("HAPROXY_DEPLOYMENT_STARTED_AT".into(), json!(format!("2021-01-0{day}T00:00:00Z")));
            }
            let id = format!("/app-{index:02}");
            if ip_per_task {
                // 1.4 IP-per-task without service ports: ports are auto-assigned in app order.
                return json!({
                    "id": id,
                    "labels": labels,
                    "ipAddress": {"discovery": {"ports": (0..ports).map(|p| json!({"number": 8080 + p})).collect::<Vec<_>>()}},
                    "tasks": tasks.iter().enumerate().map(|(t, (state, _, host))| json!({
                        "id": format!("app-{index:02}.task-{t}"),
                        "host": "127.0.0.1",
                        "state": STATES[*state],
                        "ipAddresses": [{"ipAddress": format!("127.0.1.{host}"), "protocol": "IPv4"}],
                    })).collect::<Vec<_>>(),
                });
            }
            json!({
                "id": id,
                "labels": labels,
                "healthChecks": if has_checks { json!([{"protocol": "MESOS_TCP", "portIndex": 0}]) } else { json!([]) },
                "portDefinitions": (0..ports).map(|p| json!({"port": 10000 + port_base + p as u16})).collect::<Vec<_>>(),
                "tasks": tasks.iter().enumerate().map(|(t, (state, alive, host))| {
                    let mut task = json!({
                        "id": format!("app-{index:02}.task-{t}"),
                        "host": format!("127.0.0.{host}"),
                        "state": STATES[*state],
                        "ports": [20000 + t as u16, 21000 + t as u16],
                    });
                    if let Some(alive) = alive {
                        task["healthCheckResults"] = json!([{"alive": alive}]);
                    }
                    task
                }).collect::<Vec<_>>(),
            })
        })
}

fn apps_strategy() -> impl Strategy<Value = Vec<Value>> {
    (1usize..8).prop_flat_map(|n| (0..n).map(app_strategy).collect::<Vec<_>>())
}

fn dump(apps: Vec<Value>) -> String {
    let table = support::table(Value::Array(apps), &support::options());
    serde_json::to_string(&RoutesReport::new(&table)).unwrap()
}

fn shuffled(mut apps: Vec<Value>, seed: u64) -> Vec<Value> {
    // A small deterministic shuffle driven by the seed (apps and each app's tasks).
    let mut state = seed | 1;
    let mut next = move |bound: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % bound as u64) as usize
    };
    for i in (1..apps.len()).rev() {
        apps.swap(i, next(i + 1));
    }
    for app in &mut apps {
        if let Some(tasks) = app["tasks"].as_array_mut() {
            for i in (1..tasks.len()).rev() {
                tasks.swap(i, next(i + 1));
            }
        }
    }
    apps
}

fn snapshot(apps: &[Value]) -> switchyard::marathon::AppsSnapshot {
    let body = serde_json::to_vec(&json!({ "apps": apps })).unwrap();
    switchyard::marathon::parse_apps(&body).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Rebuilding only the apps that changed gives the catalog a full build gives, whenever the
    /// pipeline would take that path (every app patchable).
    #[test]
    fn patching_changed_apps_equals_a_full_build(before in apps_strategy(), after in apps_strategy()) {
        use switchyard::model::{self, AgentAddrs, HealthMemory};
        // The pipeline rebuilds everything when deployment groups or auto-assigned ports are
        // involved: take those out here.
        let plain = |apps: Vec<Value>| -> Vec<Value> {
            apps.into_iter()
                .filter(|a| a.get("ipAddress").is_none())
                .map(|mut a| {
                    if let Some(labels) = a["labels"].as_object_mut() {
                        labels.retain(|k, _| !k.starts_with("HAPROXY_DEPLOYMENT"));
                    }
                    a
                })
                .collect()
        };
        let (before, after) = (plain(before), plain(after));
        let (old, new) = (snapshot(&before), snapshot(&after));
        prop_assume!(old.apps.iter().chain(&new.apps).all(model::patchable));
        let ids = |apps: &[Value]| -> HashMap<String, Value> {
            apps.iter().map(|a| (a["id"].as_str().unwrap().to_owned(), a.clone())).collect()
        };
        let (old_ids, new_ids) = (ids(&before), ids(&after));
        let changed: std::collections::BTreeSet<String> = old_ids.keys().chain(new_ids.keys())
            .filter(|id| old_ids.get(*id) != new_ids.get(*id))
            .cloned()
            .collect();
        let (options, agents) = (support::options(), AgentAddrs::default());
        let mut memory = HealthMemory::default();
        let previous = model::catalog(&old.apps, &options, &agents, &mut memory);
        let mut full_memory = memory.clone();
        let full = model::catalog_after(&previous, &new.apps, &options, &agents, &mut full_memory);
        let patched = model::catalog_patch(&previous, &new.apps, &changed, &options, &agents, &mut memory);
        prop_assert_eq!(format!("{patched:?}"), format!("{full:?}"));
    }

    /// A table built after the last one, taking over its unchanged backends and, where no
    /// route changed, its indexes, is the table a fresh build gives: same listing, same
    /// problems, same lookups. Half the cases change only tasks (the indexes are shared).
    #[test]
    fn a_table_built_after_the_last_equals_a_fresh_build(
        before in apps_strategy(),
        after in apps_strategy(),
        tasks_only in any::<bool>(),
    ) {
        use switchyard::model::{self, AgentAddrs, HealthMemory};
        use switchyard::routing::{BuildOptions, RoutingTable};
        use switchyard::upstream::Registry;
        let after = if tasks_only {
            let mut moved = before.clone();
            for (app, new) in moved.iter_mut().zip(&after) {
                app["tasks"] = new["tasks"].clone();
            }
            moved
        } else {
            after
        };
        let (old, new) = (snapshot(&before), snapshot(&after));
        let (options, agents, build) = (support::options(), AgentAddrs::default(), BuildOptions::default());
        let mut memory = HealthMemory::default();
        let registry = Registry::default();
        let first = model::catalog(&old.apps, &options, &agents, &mut memory);
        let last = RoutingTable::build_with(first.clone(), &build, 1, &registry);
        // The catalog the pipeline would serve next: every unchanged app's services shared.
        let catalog = model::catalog_after(&first, &new.apps, &options, &agents, &mut memory.clone());
        let changed: std::collections::BTreeSet<String> = old.apps.iter().chain(&new.apps)
            .filter(|a| old.app(&a.id) != new.app(&a.id))
            .map(|a| a.id.clone())
            .collect();
        let catalog = if old.apps.iter().chain(&new.apps).all(model::patchable) {
            model::catalog_patch(&first, &new.apps, &changed, &options, &agents, &mut memory)
        } else {
            catalog
        };
        let after_last = RoutingTable::build_after(catalog.clone(), &build, 2, &registry, &last.reusable());
        let fresh = RoutingTable::build_with(catalog, &build, 2, &Registry::default());
        let report = |t: &RoutingTable| serde_json::to_string(&RoutesReport::new(t)).unwrap();
        prop_assert_eq!(report(&after_last), report(&fresh));
        for host in HOSTS {
            let name = host.replace('*', "x");
            for path in ["/", "/api/x", "/v3", "/admin"] {
                let found = |t: &RoutingTable| t.route(name.as_bytes(), path).map(|r| r.backend.name.clone());
                prop_assert_eq!(found(&after_last), found(&fresh), "{} {}", name, path);
            }
        }
        for port in 10000..10006 {
            let found = |t: &RoutingTable| t.service_port(port).map(|f| (f.mode, f.backend.name.clone()));
            prop_assert_eq!(found(&after_last), found(&fresh), "port {}", port);
        }
        for app in &new.apps {
            let found = |t: &RoutingTable| t.app(&app.id).map(|b| b.name.clone());
            prop_assert_eq!(found(&after_last), found(&fresh), "app {}", &app.id);
        }
    }

    #[test]
    fn shuffled_input_builds_the_same_table(apps in apps_strategy(), seed in any::<u64>()) {
        let expected = dump(apps.clone());
        prop_assert_eq!(dump(shuffled(apps, seed)), expected);
    }

    #[test]
    fn lookups_agree_with_the_listing(apps in apps_strategy(), host in 0..HOSTS.len(), sub in "[a-z]{1,3}") {
        // Whatever the table, a lookup returns a route the table lists for a matching vhost.
        let table = support::table(Value::Array(apps), &support::options());
        let name = HOSTS[host].replace('*', &sub);
        if let Some(route) = table.route(name.as_bytes(), "/api/x") {
            prop_assert!(route.vhost.matches(&name));
            let listed = table.http_routes().iter().any(|r| std::ptr::eq(r.entry(), route.entry()));
            prop_assert!(listed);
        }
    }

    #[test]
    fn vhost_parsing_never_panics(raw in "\\PC{0,80}") {
        if let Ok(vhost) = raw.parse::<VHost>() {
            // Whatever parses prints back to something that parses to the same value.
            prop_assert_eq!(vhost.to_string().parse::<VHost>(), Ok(vhost));
        }
    }

    #[test]
    fn host_normalisation_never_panics(raw in prop::collection::vec(any::<u8>(), 0..300)) {
        let mut buf = [0u8; MAX_HOST_LEN];
        if let Some(host) = normalize_host(&raw, &mut buf) {
            prop_assert!(!host.bytes().any(|b| b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn label_parsing_never_panics(pairs in prop::collection::vec(("HAPROXY_[0-9]{0,2}_?[A-Z_]{0,40}", "\\PC{0,40}"), 0..12)) {
        let map: Labels = pairs.into_iter().collect();
        let _ = AppLabels::parse(&map);
    }

    /// The one-pass `VHost` parser accepts, normalises and refuses exactly as the plain
    /// definition does (trim, one trailing dot, lower case, `*.` prefix, allowed characters,
    /// no empty label), with the same error.
    #[test]
    fn vhost_parse_matches_its_definition(raw in "[ a-zA-Z0-9._*,\\-]{0,24}|\\PC{0,12}") {
        prop_assert_eq!(raw.parse::<VHost>(), reference_vhost(&raw));
    }
}

fn reference_vhost(raw: &str) -> Result<VHost, VHostError> {
    let trimmed = raw.trim();
    let name = trimmed
        .strip_suffix('.')
        .unwrap_or(trimmed)
        .to_ascii_lowercase();
    if name.is_empty() {
        return Err(VHostError::Empty);
    }
    if name.len() > MAX_HOST_LEN {
        return Err(VHostError::TooLong);
    }
    let (wildcard, rest) = match name.strip_prefix("*.") {
        Some(rest) => (true, rest),
        None => (false, &*name),
    };
    if rest.contains('*') {
        return Err(VHostError::BadWildcard(trimmed.to_owned()));
    }
    if !rest
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(VHostError::BadCharacter(trimmed.to_owned()));
    }
    if rest.is_empty() || rest.split('.').any(str::is_empty) {
        return Err(VHostError::EmptyLabel(trimmed.to_owned()));
    }
    Ok(if wildcard {
        VHost::Wildcard(rest.into())
    } else {
        VHost::Exact(rest.into())
    })
}
