//! Which apps and ports a balancer serves: `HAPROXY_GROUP` (the app's or a port's) against
//! `--group`, `HAPROXY_{n}_ENABLED` under `--strict-mode`, and never the balancer's own app.

use crate::support;

use serde_json::json;
use support::*;
use switchyard::model::{ModelOptions, ProblemKind};

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
