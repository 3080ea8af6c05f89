//! Bad input costs only its own part: a bad label excludes its port (or the port keeps its last
//! good labels, through patched and full rebuilds), and a malformed app is a problem while the
//! rest is served.

use crate::support;

use serde_json::json;
use support::*;
use switchyard::model::ProblemKind;

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
