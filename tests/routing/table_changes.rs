//! What a table changed in the last (the serve loop's log line): read from the changed apps
//! (or the backends a patch replaced) alone, it is what comparing the two whole tables finds,
//! a listener conflict that moves onto an unchanged app included.

use crate::support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use support::*;
use switchyard::marathon::AppsSnapshot;
use switchyard::model::ProblemKind;
use switchyard::routing::{RoutingTable, Scope, TableChanges};
use switchyard::serve::pipeline::Pipeline;

fn snapshot(apps: Value) -> AppsSnapshot {
    let body = serde_json::to_vec(&json!({ "apps": apps })).unwrap();
    switchyard::marathon::parse_apps(&body).unwrap()
}

fn external(more: Value) -> Value {
    let mut labels = json!({"HAPROXY_GROUP": "external"});
    labels
        .as_object_mut()
        .unwrap()
        .extend(more.as_object().unwrap().clone());
    labels
}

/// The apps: `/api` on `api_port` (two tasks), `/web` on 10002 with `web_tasks`, `/other` with
/// `balance` for its balance label.
fn apps(api_port: u16, web_tasks: &[u16], balance: &str) -> AppsSnapshot {
    let web: Vec<_> = web_tasks.iter().map(|p| (A, *p)).collect();
    snapshot(json!([
        host_app("/api", api_port, external(json!({})), &[(B, 1), (B, 2)]),
        host_app(
            "/other",
            10003,
            external(json!({ "HAPROXY_0_BALANCE": balance })),
            &[(B, 3)]
        ),
        host_app(
            "/web",
            10002,
            external(json!({"HAPROXY_0_VHOST": "web.example.com"})),
            &web
        ),
    ]))
}

/// What the scoped reading finds, checked against comparing the whole tables.
fn scoped<'t>(
    table: &'t RoutingTable,
    last: &'t RoutingTable,
    changed: &BTreeSet<String>,
) -> TableChanges<'t> {
    let replaced = table.replaced_in(last);
    let scope = Scope {
        apps: Some(changed),
        replaced: replaced.as_ref(),
    };
    let changes = table.changes_since(last, scope);
    let whole = table.changes_since(last, Scope::default());
    assert_eq!(changes.backends, whole.backends);
    assert_eq!(
        (changes.backends_added, changes.backends_removed),
        (whole.backends_added, whole.backends_removed)
    );
    assert_eq!(changes.backends_changed, whole.backends_changed);
    assert_eq!(
        (changes.endpoints_added, changes.endpoints_removed),
        (whole.endpoints_added, whole.endpoints_removed)
    );
    assert_eq!(changes.problems_found, whole.problems_found);
    assert_eq!(changes.problems_resolved, whole.problems_resolved);
    changes
}

#[test]
fn the_changes_read_from_the_changed_apps_are_those_of_the_whole_tables() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pipeline = Pipeline::new(options(), Default::default());
    let empty = RoutingTable::default();
    let first = runtime.block_on(pipeline.rebuild(&apps(10001, &[5], "fastest")));
    let all = first.changes_since(&empty, Scope::default());
    // /other's balance label is unusable and it has no last good one: not served.
    assert_eq!((all.backends_added, all.endpoints_added), (2, 3));
    assert_eq!(
        all.to_string(),
        "api_10001 added (2 endpoints); web_10002 added (1 endpoint)"
    );
    let kinds: Vec<_> = all.problems_found.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [ProblemKind::InvalidLabel]);

    // A task of /web started: the table shares the last one's indexes.
    let web: BTreeSet<String> = ["/web".to_owned()].into();
    let second = runtime.block_on(pipeline.rebuild_changed(&apps(10001, &[5, 6], "fastest"), &web));
    assert!(pipeline.last_build_patched());
    assert!(second.shares_indexes_with(&first));
    let changes = scoped(&second, &first, &web);
    assert_eq!(changes.to_string(), "web_10002: 1 endpoint added");
    assert!(changes.problems_found.is_empty() && changes.problems_resolved.is_empty());

    // /api takes /web's service port: /api keeps it (first by app id), and the conflict is
    // /web's, an app that did not change.
    let api: BTreeSet<String> = ["/api".to_owned()].into();
    let third = runtime.block_on(pipeline.rebuild_changed(&apps(10002, &[5, 6], "fastest"), &api));
    assert!(pipeline.last_build_patched());
    let changes = scoped(&third, &second, &api);
    assert_eq!(
        changes.to_string(),
        "api_10002 (was api_10001): configuration changed"
    );
    let conflict = changes
        .problems_found
        .iter()
        .find(|p| p.kind == ProblemKind::PortConflict)
        .unwrap_or_else(|| panic!("{:#?}", changes.problems_found));
    assert_eq!(conflict.app_id.as_deref(), Some("/web"));

    // /other's label fixed: served, and the problem resolved.
    let other: BTreeSet<String> = ["/other".to_owned()].into();
    let fourth =
        runtime.block_on(pipeline.rebuild_changed(&apps(10002, &[5, 6], "leastconn"), &other));
    let changes = scoped(&fourth, &third, &other);
    assert_eq!(changes.to_string(), "other_10003 added (1 endpoint)");
    let kinds: Vec<_> = changes.problems_resolved.iter().map(|p| p.kind).collect();
    assert_eq!(kinds, [ProblemKind::InvalidLabel]);
}

/// A zero-downtime deployment: old tasks that start draining are a change, said as such.
#[test]
fn endpoints_that_start_draining_are_named() {
    let blue = json!({
        "id": "/web-blue", "instances": 3,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com",
                   "HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_STARTED_AT": "2021-01-01T00:00:00Z"},
        "portDefinitions": [{"port": 10001}],
        "tasks": [
            {"id": "web-blue.1", "host": A, "state": "TASK_RUNNING", "ports": [1]},
            {"id": "web-blue.2", "host": A, "state": "TASK_RUNNING", "ports": [2]},
            {"id": "web-blue.3", "host": A, "state": "TASK_RUNNING", "ports": [3]}
        ]
    });
    let green = |healthy: usize| {
        let tasks: Vec<Value> = (1..=3)
            .map(|i| {
                let mut task = json!({"id": format!("web-green.{i}"), "host": B,
                                      "state": "TASK_RUNNING", "ports": [10 + i]});
                if i <= healthy {
                    task["healthCheckResults"] = json!([{"alive": true}]);
                }
                task
            })
            .collect();
        json!({
            "id": "/web-green", "instances": 3,
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com",
                       "HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_STARTED_AT": "2021-01-02T00:00:00Z",
                       "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "3", "HAPROXY_DEPLOYMENT_NEW_INSTANCES": "3"},
            "portDefinitions": [{"port": 10002}],
            "healthChecks": [{"protocol": "MESOS_HTTP", "portIndex": 0}],
            "tasks": tasks
        })
    };
    let before = table(json!([blue, green(0)]), &options());
    let after = table(json!([blue, green(2)]), &options());
    let changes = after.changes_since(&before, Scope::default());
    assert_eq!(changes.endpoints_draining, 2);
    assert_eq!(changes.to_string(), "web_10001: 2 endpoints draining");
}
