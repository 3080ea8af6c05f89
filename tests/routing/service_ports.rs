//! Service ports in the table: conflicts settled by app id and reported, reserved ports,
//! per-port settings (bind address, stickiness, balance), and the app-id map.

use crate::support;

use serde_json::json;
use support::*;
use switchyard::model::{Balance, Mode, ProblemKind};

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
