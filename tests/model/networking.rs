//! Task addresses by networking mode (bridge, IP-per-task, host, IPv6; Marathon 1.4's and 1.5+'s
//! forms), service ports auto-assigned in app order, and the same routes from Marathon 1.4 and
//! 1.11 documents.

use crate::support;

use serde_json::json;
use support::*;
use switchyard::model::{ModelOptions, ProblemKind};

#[test]
fn addresses_follow_the_networking_mode() {
    let apps = json!([
        {   // 1.5+ bridge: agent address and host port, never the Docker bridge address.
            "id": "/bridge",
            "labels": {"HAPROXY_GROUP": "external"},
            "networks": [{"mode": "container/bridge"}],
            "container": {"type": "DOCKER", "portMappings": [{"containerPort": 80, "hostPort": 0, "servicePort": 10001}]},
            "tasks": [{"id": "bridge.t1", "host": "127.0.0.3", "state": "TASK_RUNNING", "ports": [31005],
                       "ipAddresses": [{"ipAddress": "172.17.0.2", "protocol": "IPv4"}]}]
        },
        {   // 1.5+ IP-per-task: the task's own address and the container port.
            "id": "/ippertask",
            "labels": {"HAPROXY_GROUP": "external"},
            "networks": [{"mode": "container", "name": "dcos"}],
            "container": {"type": "MESOS", "portMappings": [{"containerPort": 8080, "servicePort": 10002}]},
            "tasks": [{"id": "ippertask.t1", "host": "127.0.0.3", "state": "TASK_RUNNING", "ports": [],
                       "ipAddresses": [{"ipAddress": "127.0.9.9", "protocol": "IPv4"}]}]
        },
        {   // Host networking: agent address and host port.
            "id": "/host",
            "labels": {"HAPROXY_GROUP": "external"},
            "portDefinitions": [{"port": 10003}],
            "tasks": [{"id": "host.t1", "host": "127.0.0.4", "state": "TASK_RUNNING", "ports": [31007]}]
        },
        {   // 1.4 IP-per-task: discovery ports, no service port reported → auto-assigned.
            "id": "/legacy-user",
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "legacy.example.com"},
            "container": {"type": "DOCKER", "docker": {"image": "x", "network": "USER"}},
            "ipAddress": {"networkName": "dcos", "discovery": {"ports": [{"number": 8443, "name": "http", "protocol": "tcp"}]}},
            "tasks": [{"id": "legacy-user.t1", "host": "127.0.0.3", "state": "TASK_RUNNING",
                       "ipAddresses": [{"ipAddress": "127.0.9.10", "protocol": "IPv4"}]},
                      {"id": "legacy-user.t2", "host": "127.0.0.3", "state": "TASK_RUNNING", "ipAddresses": []}]
        },
        {   // IPv6 task address.
            "id": "/v6",
            "labels": {"HAPROXY_GROUP": "external"},
            "networks": [{"mode": "container", "name": "dcos6"}],
            "container": {"type": "MESOS", "portMappings": [{"containerPort": 80, "servicePort": 10004}]},
            "tasks": [{"id": "v6.t1", "host": "127.0.0.3", "state": "TASK_RUNNING",
                       "ipAddresses": [{"ipAddress": "::1", "protocol": "IPv6"}]}]
        }
    ]);
    let t = table(apps, &options());
    assert_eq!(endpoints(&t, "/bridge", 0), ["127.0.0.3:31005"]);
    assert_eq!(endpoints(&t, "/ippertask", 0), ["127.0.9.9:8080"]);
    assert_eq!(endpoints(&t, "/host", 0), ["127.0.0.4:31007"]);
    assert_eq!(
        endpoints(&t, "/legacy-user", 0),
        ["127.0.9.10:8443"],
        "task without an IP yet is skipped"
    );
    assert_eq!(endpoints(&t, "/v6", 0), ["[::1]:80"]);
    let legacy = t
        .backends()
        .iter()
        .find(|b| b.app_id().as_str() == "/legacy-user")
        .unwrap();
    assert!(
        (10050..=10100).contains(&legacy.service.service_port),
        "auto-assigned from the range"
    );
    assert_eq!(
        routed(&t, "legacy.example.com", "/").as_deref(),
        Some("/legacy-user")
    );
    assert!(t.problems().is_empty(), "{:#?}", t.problems());
}

/// Ports are auto-assigned in app order (by id), whatever the app: a deployment group takes its
/// first member's place. With a range of two ports, the group of `/a-blue` and `/b` get them
/// and `/c`, last by id, is reported.
#[test]
fn auto_assigned_service_ports_follow_app_order_groups_included() {
    let ip_per_task = |id: &str, labels: serde_json::Value, ip: &str| {
        json!({
            "id": id,
            "labels": labels,
            "container": {"type": "DOCKER", "docker": {"image": "x", "network": "USER"}},
            "ipAddress": {"networkName": "dcos", "discovery": {"ports": [{"number": 8080}]}},
            "tasks": [{"id": format!("{id}.t1"), "host": "127.0.0.3", "state": "TASK_RUNNING",
                       "ipAddresses": [{"ipAddress": ip, "protocol": "IPv4"}]}]
        })
    };
    let apps = json!([
        ip_per_task("/c", json!({"HAPROXY_GROUP": "external"}), "127.0.9.3"),
        ip_per_task("/b", json!({"HAPROXY_GROUP": "external"}), "127.0.9.2"),
        ip_per_task(
            "/a-blue",
            json!({"HAPROXY_GROUP": "external", "HAPROXY_DEPLOYMENT_GROUP": "a"}),
            "127.0.9.1"
        ),
    ]);
    let two_ports = ModelOptions {
        ip_per_task_ports: 10050..=10051,
        ..options()
    };
    let t = table(apps, &two_ports);
    let has_port = |app: &str| t.backends().iter().any(|b| b.app_id().as_str() == app);
    assert!(has_port("/a"), "the group, first by id");
    assert!(has_port("/b"));
    assert!(!has_port("/c"), "last by id: the range is used up");
    assert!(
        t.problems()
            .iter()
            .any(|p| p.app_id.as_deref() == Some("/c")
                && p.kind == ProblemKind::ServicePortsExhausted)
    );
}

#[test]
fn marathon_1_4_and_1_11_documents_give_the_same_routes() {
    let v14 = std::fs::read("tests/fixtures/marathon-1.4-apps.json").unwrap();
    let v111 = std::fs::read("tests/fixtures/marathon-1.11-apps.json").unwrap();
    let build = |body: &[u8]| {
        let snapshot = switchyard::marathon::parse_apps(body).unwrap();
        assert!(snapshot.errors.is_empty(), "{:?}", snapshot.errors);
        let catalog = switchyard::model::catalog(
            &snapshot.apps,
            &options(),
            &Default::default(),
            &mut Default::default(),
        );
        switchyard::routing::RoutingTable::build(catalog, &Default::default(), 1)
    };
    let (old, new) = (build(&v14), build(&v111));
    let summary = |t: &switchyard::routing::RoutingTable| {
        t.backends()
            .iter()
            .map(|b| {
                let eps: Vec<_> = b.endpoints().iter().map(|e| e.addr.to_string()).collect();
                format!(
                    "{} {} {:?} {:?}",
                    b.name,
                    b.service.service_port,
                    b.mode(),
                    eps
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&old), summary(&new));
    assert_eq!(
        summary(&new),
        [
            "shop_web_10010 10010 Http [\"127.0.0.3:31010\"]",
            "tweeter_10000 10000 Http [\"127.0.0.1:31001\", \"127.0.0.2:31002\"]",
            "users_10077 10077 Tcp [\"127.0.8.1:9000\"]",
        ]
    );
    assert_eq!(
        routed(&new, "shop.example.com", "/").as_deref(),
        Some("/shop/web")
    );
}
