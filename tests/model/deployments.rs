//! Blue-green deployments: a deployment group's apps merge into one backend and old tasks drain
//! as new ones turn healthy.

use crate::support;

use serde_json::json;
use support::*;

#[test]
fn deployment_group_merges_into_one_backend_and_drains_old_tasks() {
    let blue = json!({
        "id": "/web-blue", "instances": 3,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com",
                   "HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_STARTED_AT": "2021-01-01T00:00:00Z"},
        "portDefinitions": [{"port": 10001}],
        "tasks": [
            {"id": "web-blue.3", "host": A, "state": "TASK_RUNNING", "ports": [3]},
            {"id": "web-blue.1", "host": A, "state": "TASK_RUNNING", "ports": [1]},
            {"id": "web-blue.2", "host": A, "state": "TASK_RUNNING", "ports": [2]}
        ]
    });
    let green = json!({
        "id": "/web-green", "instances": 3,
        "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "green-only.example.com",
                   "HAPROXY_DEPLOYMENT_GROUP": "web", "HAPROXY_DEPLOYMENT_STARTED_AT": "2021-01-02T00:00:00Z",
                   "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": "3", "HAPROXY_DEPLOYMENT_NEW_INSTANCES": "3"},
        "portDefinitions": [{"port": 10002}],
        "healthChecks": [{"protocol": "MESOS_HTTP", "portIndex": 0}],
        "tasks": [
            {"id": "web-green.1", "host": B, "state": "TASK_RUNNING", "ports": [11], "healthCheckResults": [{"alive": true}]},
            {"id": "web-green.2", "host": B, "state": "TASK_RUNNING", "ports": [12], "healthCheckResults": [{"alive": true}]},
            {"id": "web-green.3", "host": B, "state": "TASK_RUNNING", "ports": [13]}
        ]
    });
    let t = table(json!([green, blue]), &options());
    assert_eq!(t.backends().len(), 1, "one merged backend");
    let backend = &t.backends()[0];
    assert_eq!(backend.app_id().as_str(), "/web");
    assert_eq!(backend.service.service_port, 10001, "older app's port");
    assert_eq!(routed(&t, "web.example.com", "/").as_deref(), Some("/web"));
    assert_eq!(
        routed(&t, "green-only.example.com", "/"),
        None,
        "newer app's labels are not used"
    );
    // healthy new = 2, drainable = 2 + 3 − 3 = 2 → blue.1 and blue.2 drain. The merged app
    // uses blue's definition, which has no health checks, so every running task is routed.
    let state: Vec<_> = backend
        .endpoints()
        .iter()
        .map(|e| (&*e.task_id, e.draining))
        .collect();
    assert_eq!(
        state,
        [
            ("web-blue.1", true),
            ("web-blue.2", true),
            ("web-blue.3", false),
            ("web-green.1", false),
            ("web-green.2", false),
            ("web-green.3", false),
        ]
    );
}
