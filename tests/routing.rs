//! Marathon-LB's label semantics, end to end: app JSON → table → lookups and problems.

use crate::support;

use serde_json::json;
use support::*;
use switchyard::model::{Balance, Mode, ModelOptions, ProblemKind};

const A: &str = "127.0.0.1";
const B: &str = "127.0.0.2";

#[test]
fn exact_vhost_beats_wildcard_and_wildcards_go_most_specific_first() {
    let apps = json!([
        host_app(
            "/exact",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "api.example.com"}),
            &[(A, 1)]
        ),
        host_app(
            "/wild",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "*.example.com"}),
            &[(A, 2)]
        ),
        host_app(
            "/deeper",
            10003,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "*.eu.example.com"}),
            &[(A, 3)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        routed(&t, "api.example.com", "/").as_deref(),
        Some("/exact")
    );
    assert_eq!(
        routed(&t, "API.Example.COM:8080", "/x").as_deref(),
        Some("/exact")
    );
    assert_eq!(routed(&t, "www.example.com", "/").as_deref(), Some("/wild"));
    assert_eq!(routed(&t, "a.b.example.com", "/").as_deref(), Some("/wild"));
    assert_eq!(
        routed(&t, "shop.eu.example.com", "/").as_deref(),
        Some("/deeper")
    );
    assert_eq!(routed(&t, "eu.example.com", "/").as_deref(), Some("/wild"));
    assert_eq!(
        routed(&t, "example.com", "/"),
        None,
        "a wildcard needs a label in front"
    );
    assert_eq!(routed(&t, "example.org", "/"), None);
    assert_eq!(routed(&t, "", "/"), None);
}

#[test]
fn exact_host_without_a_matching_path_falls_back_to_a_wildcard() {
    let apps = json!([
        host_app(
            "/api",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com", "HAPROXY_0_PATH": "/api"}),
            &[(A, 1)]
        ),
        host_app(
            "/catchall",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "*.example.com"}),
            &[(A, 2)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        routed(&t, "shop.example.com", "/api/v1").as_deref(),
        Some("/api")
    );
    assert_eq!(
        routed(&t, "shop.example.com", "/").as_deref(),
        Some("/catchall")
    );
}

#[test]
fn two_apps_on_one_vhost_without_paths_the_smaller_id_takes_everything() {
    let apps = json!([
        host_app(
            "/b-app",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shared.example.com"}),
            &[(A, 2)]
        ),
        host_app(
            "/a-app",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shared.example.com"}),
            &[(A, 1)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        routed(&t, "shared.example.com", "/").as_deref(),
        Some("/a-app")
    );
    assert_eq!(
        routed(&t, "shared.example.com", "/anything").as_deref(),
        Some("/a-app")
    );
}

#[test]
fn path_routes_come_before_path_less_routes_on_the_same_vhost() {
    let apps = json!([
        host_app(
            "/a-web",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com"}),
            &[(A, 1)]
        ),
        host_app(
            "/z-api",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "shop.example.com", "HAPROXY_0_PATH": "/api /v2"}),
            &[(A, 2)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        routed(&t, "shop.example.com", "/api/cart").as_deref(),
        Some("/z-api")
    );
    assert_eq!(
        routed(&t, "shop.example.com", "/v2").as_deref(),
        Some("/z-api")
    );
    assert_eq!(
        routed(&t, "shop.example.com", "/apiary").as_deref(),
        Some("/z-api"),
        "path_beg is a plain prefix"
    );
    assert_eq!(
        routed(&t, "shop.example.com", "/").as_deref(),
        Some("/a-web")
    );
    assert_eq!(
        routed(&t, "shop.example.com", "/API").as_deref(),
        Some("/a-web"),
        "case-sensitive without -i"
    );
}

#[test]
fn routes_of_hosts_that_interleave_in_app_order_are_grouped_in_rule_order() {
    // App order interleaves two hosts; each host's rules must come out together, by weight,
    // equal weights in app order.
    let specs = [
        ("/a", "one.example.com", json!({})),
        ("/b", "two.example.com", json!({})),
        ("/c", "one.example.com", json!({"HAPROXY_0_PATH": "/c"})),
        (
            "/d",
            "two.example.com,one.example.com",
            json!({"HAPROXY_0_BACKEND_WEIGHT": "3"}),
        ),
        ("/e", "one.example.com", json!({})),
        ("/f", "*.example.com", json!({})),
    ];
    let apps: Vec<_> = specs
        .iter()
        .zip(10001u16..)
        .map(|((id, vhost, extra), port)| {
            let mut labels = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": vhost});
            let extra = extra.as_object().unwrap().clone();
            labels.as_object_mut().unwrap().extend(extra);
            host_app(id, port, labels, &[(A, port)])
        })
        .collect();
    let apps = json!(apps);
    let t = table(apps, &options());
    let order: Vec<_> = t
        .http_routes()
        .iter()
        .map(|r| {
            (
                r.vhost.to_string(),
                r.backend.app_id().to_string(),
                r.weight,
            )
        })
        .collect();
    let expected = [
        ("one.example.com", "/d", 3),
        ("one.example.com", "/c", 1),
        ("one.example.com", "/a", 0),
        ("one.example.com", "/e", 0),
        ("two.example.com", "/d", 3),
        ("two.example.com", "/b", 0),
        ("*.example.com", "/f", 0),
    ];
    let expected: Vec<_> = expected
        .iter()
        .map(|(host, app, weight)| (host.to_string(), app.to_string(), *weight))
        .collect();
    assert_eq!(order, expected);
    assert_eq!(routed(&t, "one.example.com", "/c/x").as_deref(), Some("/d"));
    assert_eq!(routed(&t, "two.example.com", "/").as_deref(), Some("/d"));
    assert_eq!(routed(&t, "three.example.com", "/").as_deref(), Some("/f"));
}

#[test]
fn backend_weight_orders_routes_on_a_vhost() {
    // Without weights the path rule (weight raised to 1) would win; a weight of 5 puts the
    // path-less app first, and it then takes everything.
    let apps = json!([
        host_app(
            "/api",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "w.example.com", "HAPROXY_0_PATH": "/api"}),
            &[(A, 1)]
        ),
        host_app(
            "/heavy",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "w.example.com", "HAPROXY_0_BACKEND_WEIGHT": "5"}),
            &[(A, 2)]
        ),
        host_app(
            "/light",
            10003,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "w.example.com", "HAPROXY_0_PATH": "/light", "HAPROXY_0_BACKEND_WEIGHT": "-1"}),
            &[(A, 3)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        routed(&t, "w.example.com", "/api").as_deref(),
        Some("/heavy")
    );
    let order: Vec<_> = t
        .http_routes()
        .iter()
        .map(|r| (r.backend.app_id().to_string(), r.weight))
        .collect();
    assert_eq!(
        order,
        [
            ("/heavy".to_owned(), 5),
            ("/api".to_owned(), 1),
            ("/light".to_owned(), -1)
        ]
    );

    // An explicit weight of 0 with a path is raised to 1, as in Marathon-LB.
    let apps = json!([
        host_app(
            "/a",
            10001,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "z.example.com"}),
            &[(A, 1)]
        ),
        host_app(
            "/b",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "z.example.com", "HAPROXY_0_PATH": "/b", "HAPROXY_0_BACKEND_WEIGHT": "0"}),
            &[(A, 2)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(routed(&t, "z.example.com", "/b").as_deref(), Some("/b"));
}

#[test]
fn an_app_in_two_groups_is_served_by_either() {
    let app = || {
        json!([host_app(
            "/both",
            10001,
            json!({"HAPROXY_GROUP": "external,internal", "HAPROXY_0_VHOST": "both.example.com"}),
            &[(A, 1)]
        )])
    };
    for groups in ["external", "internal", "*", "other,internal"] {
        let t = table(app(), &options_with_groups(groups));
        assert_eq!(
            routed(&t, "both.example.com", "/").as_deref(),
            Some("/both"),
            "--group {groups}"
        );
    }
    let t = table(app(), &options_with_groups("other"));
    assert_eq!(routed(&t, "both.example.com", "/"), None);
    let hidden = problems_of(&t, ProblemKind::NotInGroup);
    assert_eq!(hidden.len(), 1);
    assert!(
        hidden[0].message.contains("external,internal"),
        "{}",
        hidden[0].message
    );
}

#[test]
fn apps_without_a_group_need_the_star_group() {
    let app = || {
        json!([host_app(
            "/nogroup",
            10001,
            json!({"HAPROXY_0_VHOST": "n.example.com"}),
            &[(A, 1)]
        )])
    };
    assert_eq!(
        routed(&table(app(), &options()), "n.example.com", "/"),
        None
    );
    assert_eq!(
        routed(
            &table(app(), &options_with_groups("*")),
            "n.example.com",
            "/"
        )
        .as_deref(),
        Some("/nogroup")
    );
}

#[test]
fn a_port_group_overrides_the_app_group() {
    let app = json!([{
        "id": "/mixed",
        "labels": {
            "HAPROXY_GROUP": "internal",
            "HAPROXY_0_GROUP": "external",
            "HAPROXY_0_VHOST": "public.example.com",
            "HAPROXY_1_VHOST": "private.example.com"
        },
        "portDefinitions": [{"port": 10001}, {"port": 10002}],
        "tasks": [{"id": "mixed.t1", "host": A, "state": "TASK_RUNNING", "ports": [31001, 31002]}]
    }]);
    let t = table(app.clone(), &options_with_groups("external"));
    assert_eq!(
        routed(&t, "public.example.com", "/").as_deref(),
        Some("/mixed")
    );
    assert_eq!(routed(&t, "private.example.com", "/"), None);
    assert_eq!(endpoints(&t, "/mixed", 0), ["127.0.0.1:31001"]);
    let t = table(app, &options_with_groups("internal"));
    assert_eq!(routed(&t, "public.example.com", "/"), None);
    assert_eq!(
        routed(&t, "private.example.com", "/").as_deref(),
        Some("/mixed")
    );
    assert_eq!(endpoints(&t, "/mixed", 1), ["127.0.0.1:31002"]);
}

#[test]
fn strict_mode_serves_only_enabled_ports() {
    let apps = || {
        json!([
            host_app(
                "/on",
                10001,
                json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "on.example.com", "HAPROXY_0_ENABLED": "true"}),
                &[(A, 1)]
            ),
            host_app(
                "/unset",
                10002,
                json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "unset.example.com"}),
                &[(A, 2)]
            ),
            host_app(
                "/off",
                10003,
                json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "off.example.com", "HAPROXY_0_ENABLED": "false"}),
                &[(A, 3)]
            ),
        ])
    };
    let strict = ModelOptions {
        strict_mode: true,
        ..options()
    };
    let t = table(apps(), &strict);
    assert_eq!(routed(&t, "on.example.com", "/").as_deref(), Some("/on"));
    assert_eq!(routed(&t, "unset.example.com", "/"), None);
    assert_eq!(routed(&t, "off.example.com", "/"), None);
    assert_eq!(problems_of(&t, ProblemKind::Disabled).len(), 2);

    let t = table(apps(), &options());
    assert_eq!(
        routed(&t, "unset.example.com", "/").as_deref(),
        Some("/unset")
    );
    assert_eq!(routed(&t, "off.example.com", "/"), None);
}

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

#[test]
fn a_bad_label_excludes_its_port_only() {
    let apps = json!([
        {
            "id": "/two-ports",
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_BALANCE": "fastest", "HAPROXY_1_VHOST": "fine.example.com"},
            "portDefinitions": [{"port": 10001}, {"port": 10002}],
            "tasks": [{"id": "two.t1", "host": A, "state": "TASK_RUNNING", "ports": [31001, 31002]}]
        },
        host_app("/neighbour", 10003, json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "n.example.com"}), &[(B, 3)]),
    ]);
    let t = table(apps, &options());
    assert!(t.service_port(10001).is_none());
    assert_eq!(
        t.service_port(10002).unwrap().backend.app_id().as_str(),
        "/two-ports"
    );
    assert_eq!(
        routed(&t, "fine.example.com", "/").as_deref(),
        Some("/two-ports")
    );
    assert_eq!(
        routed(&t, "n.example.com", "/").as_deref(),
        Some("/neighbour")
    );
    let bad = problems_of(&t, ProblemKind::InvalidLabel);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].app_id.as_deref(), Some("/two-ports"));
    assert_eq!(bad[0].port_index, Some(0));
    assert_eq!(bad[0].label.as_deref(), Some("HAPROXY_0_BALANCE"));
    assert!(bad[0].message.contains("fastest"));
}

#[test]
fn a_port_whose_labels_turn_bad_keeps_its_last_good_labels_on_its_current_tasks() {
    use serde_json::Value;
    use switchyard::model::{self, AgentAddrs, HealthMemory};
    use switchyard::routing::{BuildOptions, RoutingTable};
    let app = |labels: Value, tasks: &[(&str, u16)]| json!({"apps": [host_app("/web", 10001, labels, tasks)]});
    let good = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"});
    let bad = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "new.example.com", "HAPROXY_0_BALANCE": "fastest"});
    let catalog_after = |previous: &model::Catalog, doc: Value| {
        let snapshot =
            switchyard::marathon::parse_apps(&serde_json::to_vec(&doc).unwrap()).unwrap();
        model::catalog_after(
            previous,
            &snapshot.apps,
            &options(),
            &AgentAddrs::default(),
            &mut HealthMemory::default(),
        )
    };
    let first = catalog_after(&model::Catalog::default(), app(good, &[(A, 1)]));
    let kept = catalog_after(&first, app(bad.clone(), &[(A, 1), (B, 2)]));
    let t = RoutingTable::build(kept.clone(), &BuildOptions::default(), 2);
    let route = t
        .route(b"web.example.com", "/")
        .expect("the last good vhost still routes");
    assert_eq!(route.backend.endpoints().len(), 2, "on the current tasks");
    assert!(
        t.route(b"new.example.com", "/").is_none(),
        "nothing of the bad labels applies"
    );
    let bad_label = problems_of(&t, ProblemKind::InvalidLabel);
    assert_eq!(bad_label.len(), 1);
    assert_eq!(bad_label[0].label.as_deref(), Some("HAPROXY_0_BALANCE"));
    assert!(
        bad_label[0].message.contains("last good"),
        "{:?}",
        bad_label[0]
    );
    // Still bad a refresh later: still the last good labels.
    let still = catalog_after(&kept, app(bad.clone(), &[(A, 1)]));
    assert_eq!(still.services.len(), 1);
    assert_eq!(still.services[0].labels, first.services[0].labels);
    // Without a last good configuration the port is not served.
    let fresh = catalog_after(&model::Catalog::default(), app(bad, &[(A, 1)]));
    assert!(fresh.services.is_empty());
}

/// Through the pipeline, whichever way the next table is built (patched for the changed app,
/// or in full because a deployment-group app makes patching impossible), a port keeps its last
/// good labels.
#[test]
fn last_good_labels_survive_patched_and_full_rebuilds() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let snapshot = |web_labels: serde_json::Value, grouped: bool| {
        let mut apps = vec![host_app("/web", 10001, web_labels, &[(A, 1)])];
        if grouped {
            apps.push(host_app(
                "/blue",
                10002,
                json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "bg.example.com", "HAPROXY_DEPLOYMENT_GROUP": "bg"}),
                &[(B, 2)],
            ));
        }
        let body = serde_json::to_vec(&json!({ "apps": apps })).unwrap();
        switchyard::marathon::parse_apps(&body).unwrap()
    };
    let good = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com"});
    let bad = json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "web.example.com", "HAPROXY_0_BALANCE": "fastest"});
    let changed: std::collections::BTreeSet<String> = ["/web".to_owned()].into();
    for grouped in [false, true] {
        let mut pipeline =
            switchyard::serve::pipeline::Pipeline::new(options(), Default::default());
        runtime.block_on(pipeline.rebuild(&snapshot(good.clone(), grouped)));
        let t =
            runtime.block_on(pipeline.rebuild_changed(&snapshot(bad.clone(), grouped), &changed));
        assert_eq!(
            routed(&t, "web.example.com", "/").as_deref(),
            Some("/web"),
            "grouped: {grouped}"
        );
        assert_eq!(problems_of(&t, ProblemKind::InvalidLabel).len(), 1);
    }
}

#[test]
fn a_malformed_app_is_a_problem_and_the_rest_is_served() {
    let body = serde_json::to_vec(&json!({"apps": [
        host_app("/good", 10001, json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "good.example.com"}), &[(A, 1)]),
        {"id": "/broken", "portDefinitions": "not-a-list"},
    ]}))
    .unwrap();
    let snapshot = switchyard::marathon::parse_apps(&body).unwrap();
    assert_eq!(snapshot.errors.len(), 1);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut pipeline = switchyard::serve::pipeline::Pipeline::new(options(), Default::default());
    let t = runtime.block_on(pipeline.rebuild(&snapshot));
    assert_eq!(
        routed(&t, "good.example.com", "/").as_deref(),
        Some("/good")
    );
    let malformed = problems_of(&t, ProblemKind::MalformedApp);
    assert_eq!(malformed.len(), 1);
    assert_eq!(malformed[0].app_id.as_deref(), Some("/broken"));
    assert_eq!(t.generation(), 1);
}

#[test]
fn mode_precedence_label_then_http_check_then_vhost_then_tcp() {
    let app = |id: &str, labels: serde_json::Value, checks: serde_json::Value, port: u16| {
        json!({
            "id": id, "labels": labels, "healthChecks": checks,
            "portDefinitions": [{"port": port}, {"port": port + 1}],
            "tasks": [{"id": format!("{}.t", &id[1..]), "host": A, "state": "TASK_RUNNING", "ports": [1, 2],
                       "healthCheckResults": [{"alive": true}]}]
        })
    };
    let g = |extra: serde_json::Value| {
        let mut labels = json!({"HAPROXY_GROUP": "external"});
        labels
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        labels
    };
    let apps = json!([
        app("/plain", g(json!({})), json!([]), 10010),
        app(
            "/vhost",
            g(json!({"HAPROXY_0_VHOST": "v.example.com"})),
            json!([]),
            10020
        ),
        app(
            "/httpcheck",
            g(json!({})),
            json!([{"protocol": "HTTP", "portIndex": 0}]),
            10030
        ),
        app(
            "/mesoshttp",
            g(json!({})),
            json!([{"protocol": "MESOS_HTTP", "portIndex": 0}]),
            10040
        ),
        app(
            "/label",
            g(json!({"HAPROXY_0_MODE": "tcp"})),
            json!([{"protocol": "HTTP", "portIndex": 0}]),
            10050
        ),
        app(
            "/borrowed",
            g(json!({"HAPROXY_0_BACKEND_HEALTHCHECK_PORT_INDEX": "1"})),
            json!([{"protocol": "MESOS_HTTP", "portIndex": 1}]),
            10060
        ),
        app(
            "/explicitport",
            g(json!({})),
            json!([{"protocol": "HTTP", "port": 8080}]),
            10070
        ),
        app(
            "/conflict",
            g(json!({"HAPROXY_0_VHOST": "c.example.com", "HAPROXY_0_MODE": "tcp"})),
            json!([]),
            10080
        ),
    ]);
    let t = table(apps, &options());
    let mode = |port: u16| t.service_port(port).map(|f| f.mode);
    assert_eq!(mode(10010), Some(Mode::Tcp));
    assert_eq!(mode(10020), Some(Mode::Http));
    assert_eq!(mode(10030), Some(Mode::Http));
    assert_eq!(
        mode(10031),
        Some(Mode::Tcp),
        "the check is for port index 0 only"
    );
    assert_eq!(
        mode(10040),
        Some(Mode::Tcp),
        "MESOS_HTTP does not flip the mode"
    );
    assert_eq!(
        mode(10050),
        Some(Mode::Tcp),
        "the label overrides the check"
    );
    assert_eq!(
        mode(10060),
        Some(Mode::Http),
        "borrowed MESOS_HTTP check through PORT_INDEX"
    );
    let borrowed = t.service_port(10060).unwrap();
    assert_eq!(borrowed.backend.endpoints()[0].health_check_port, Some(2));
    assert_eq!(mode(10070), Some(Mode::Http));
    assert_eq!(
        mode(10071),
        Some(Mode::Http),
        "a check with an explicit port applies to every port"
    );
    assert_eq!(
        mode(10080),
        None,
        "vhost with MODE=tcp is an error on that port"
    );
    let conflict = problems_of(&t, ProblemKind::InvalidLabel);
    assert_eq!(conflict[0].label.as_deref(), Some("HAPROXY_0_MODE"));
    assert_eq!(
        mode(10081),
        Some(Mode::Tcp),
        "the other port of that app is unaffected"
    );
}

#[test]
fn service_port_conflicts_are_settled_by_app_id_and_reported() {
    let apps = json!([
        host_app(
            "/zeta",
            10001,
            json!({"HAPROXY_GROUP": "external"}),
            &[(A, 2)]
        ),
        host_app(
            "/alpha",
            10001,
            json!({"HAPROXY_GROUP": "external"}),
            &[(A, 1)]
        ),
        host_app(
            "/web",
            10002,
            json!({"HAPROXY_GROUP": "external", "HAPROXY_0_PORT": "80", "HAPROXY_0_VHOST": "w.example.com"}),
            &[(A, 3)]
        ),
        host_app(
            "/admin-clash",
            9090,
            json!({"HAPROXY_GROUP": "external"}),
            &[(A, 4)]
        ),
    ]);
    let t = table(apps, &options());
    assert_eq!(
        t.service_port(10001).unwrap().backend.app_id().as_str(),
        "/alpha"
    );
    let conflict = problems_of(&t, ProblemKind::PortConflict);
    assert_eq!(conflict.len(), 1);
    assert_eq!(conflict[0].app_id.as_deref(), Some("/zeta"));
    assert!(conflict[0].message.contains("/alpha"));

    assert!(t.service_port(80).is_none());
    assert!(
        t.service_port(10002).is_none(),
        "HAPROXY_0_PORT replaces the service port"
    );
    assert_eq!(
        routed(&t, "w.example.com", "/").as_deref(),
        Some("/web"),
        "vhost still routed"
    );
    assert!(t.service_port(9090).is_none());
    let reserved = problems_of(&t, ProblemKind::ReservedPort);
    let reserved: Vec<_> = reserved
        .iter()
        .map(|p| (p.app_id.as_deref(), p.label.as_deref()))
        .collect();
    assert_eq!(
        reserved,
        [
            (Some("/admin-clash"), None),
            (Some("/web"), Some("HAPROXY_0_PORT"))
        ]
    );
}

#[test]
fn service_port_settings_and_the_app_id_map() {
    let apps = json!([
        {
            "id": "/multi",
            "labels": {"HAPROXY_GROUP": "external", "HAPROXY_0_BIND_ADDR": "127.0.0.5", "HAPROXY_0_MODE": "http",
                       "HAPROXY_1_MODE": "http", "HAPROXY_2_BALANCE": "source", "HAPROXY_1_STICKY": "true"},
            "portDefinitions": [{"port": 10003}, {"port": 10001}, {"port": 10002}],
            "tasks": [{"id": "multi.t1", "host": A, "state": "TASK_RUNNING", "ports": [1, 2, 3]}]
        },
        host_app("/prod/web", 10010, json!({"HAPROXY_GROUP": "external", "HAPROXY_0_VHOST": "p.example.com"}), &[(A, 4)]),
    ]);
    let t = table(apps, &options());
    let p0 = t.service_port(10003).unwrap();
    assert_eq!(p0.bind_addr, Some("127.0.0.5".parse().unwrap()));
    assert!(t.service_port(10001).unwrap().backend.labels().sticky);
    assert_eq!(
        t.service_port(10002).unwrap().backend.labels().balance,
        Balance::Source
    );
    assert_eq!(t.service_port(10002).unwrap().mode, Mode::Tcp);
    // The app-id map takes the app's lowest HTTP service port, as Marathon-LB's map file does.
    assert_eq!(t.app("/multi").unwrap().service.service_port, 10001);
    assert_eq!(&*t.app("/prod/web").unwrap().name, "prod_web_10010");
    assert!(t.app("/nope").is_none());
}

#[test]
fn the_balancer_skips_its_own_app() {
    let apps = || {
        json!([host_app(
            "/marathon-lb",
            10001,
            json!({"HAPROXY_GROUP": "external"}),
            &[(A, 1)]
        )])
    };
    let own = ModelOptions {
        framework_name: Some("marathon-lb".to_owned()),
        ..options()
    };
    assert!(table(apps(), &own).backends().is_empty());
    assert_eq!(table(apps(), &options()).backends().len(), 1);
}

#[test]
fn labels_for_missing_ports_and_unsupported_templates_are_reported() {
    let apps = json!([host_app(
        "/t",
        10001,
        json!({
            "HAPROXY_GROUP": "external",
            "HAPROXY_0_BACKEND_HEAD": "option x",
            "HAPROXY_3_VHOST": "three.example.com"
        }),
        &[(A, 1)]
    )]);
    let t = table(apps, &options());
    assert!(
        t.service_port(10001).is_some(),
        "templates never exclude a port"
    );
    let template = problems_of(&t, ProblemKind::UnsupportedTemplate);
    assert_eq!(template[0].label.as_deref(), Some("HAPROXY_0_BACKEND_HEAD"));
    let missing = problems_of(&t, ProblemKind::LabelWithoutPort);
    assert_eq!(missing[0].port_index, Some(3));
    assert_eq!(missing[0].label.as_deref(), Some("HAPROXY_3_VHOST"));
}

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
