//! What a port's labels make of it: its mode (the label, then an HTTP health check, then a vhost,
//! else TCP), and labels for missing ports or unsupported templates reported.

use crate::support;

use serde_json::json;
use support::*;
use switchyard::model::{Mode, ProblemKind};

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
