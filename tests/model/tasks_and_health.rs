//! Which tasks are routed: task states, health check results (and the last verdict kept while
//! results are missing), `--no-health-check`, and apps without health checks.

use crate::support;

use serde_json::json;
use support::*;
use switchyard::model::ModelOptions;

#[test]
fn task_states_and_health_decide_what_is_routed() {
    let task = |id: &str, state: &str, port: u16, health: Option<serde_json::Value>| {
        let mut t = json!({"id": id, "host": A, "state": state, "ports": [port]});
        if let Some(h) = health {
            t["healthCheckResults"] = h;
        }
        t
    };
    let app = |tasks: Vec<serde_json::Value>| {
        json!([{
            "id": "/checked",
            "labels": {"HAPROXY_GROUP": "external"},
            "portDefinitions": [{"port": 10001}],
            "healthChecks": [{"protocol": "MESOS_TCP", "portIndex": 0}],
            "tasks": tasks
        }])
    };
    let mut memory = Default::default();
    let first = app(vec![
        task(
            "t1-healthy",
            "TASK_RUNNING",
            1,
            Some(json!([{"alive": false}, {"alive": true}])),
        ),
        task(
            "t2-unhealthy",
            "TASK_RUNNING",
            2,
            Some(json!([{"alive": false}])),
        ),
        task("t3-new", "TASK_RUNNING", 3, None),
        task(
            "t4-staging",
            "TASK_STAGING",
            4,
            Some(json!([{"alive": true}])),
        ),
        task(
            "t5-unreachable",
            "TASK_UNREACHABLE",
            5,
            Some(json!([{"alive": true}])),
        ),
        task(
            "t6-killing",
            "TASK_KILLING",
            6,
            Some(json!([{"alive": true}])),
        ),
        task("t7-lost", "TASK_LOST", 7, Some(json!([{"alive": true}]))),
        task("t8-starting", "TASK_STARTING", 8, None),
    ]);
    let t = table_with_memory(first, &options(), &mut memory);
    assert_eq!(
        endpoints(&t, "/checked", 0),
        ["127.0.0.1:1", "127.0.0.1:5", "127.0.0.1:7"]
    );

    // Results briefly missing: each task keeps its last verdict.
    let second = app(vec![
        task("t1-healthy", "TASK_RUNNING", 1, None),
        task("t2-unhealthy", "TASK_RUNNING", 2, Some(json!([]))),
        task("t3-new", "TASK_RUNNING", 3, Some(json!([{"alive": true}]))),
    ]);
    let t = table_with_memory(second, &options(), &mut memory);
    assert_eq!(endpoints(&t, "/checked", 0), ["127.0.0.1:1", "127.0.0.1:3"]);

    // --no-health-check routes every running task.
    let unchecked = ModelOptions {
        health_check: false,
        ..options()
    };
    let t = table(
        app(vec![task(
            "t2-unhealthy",
            "TASK_RUNNING",
            2,
            Some(json!([{"alive": false}])),
        )]),
        &unchecked,
    );
    assert_eq!(endpoints(&t, "/checked", 0), ["127.0.0.1:2"]);
}

#[test]
fn apps_without_health_checks_route_every_running_task() {
    let apps = json!([host_app(
        "/plain",
        10001,
        json!({"HAPROXY_GROUP": "external"}),
        &[(A, 1), (B, 2)]
    )]);
    assert_eq!(
        endpoints(&table(apps, &options()), "/plain", 0),
        ["127.0.0.1:1", "127.0.0.2:2"]
    );
}
