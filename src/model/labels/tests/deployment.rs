//! The zero-downtime deployment labels (`zdd.py`'s).

use super::*;

#[test]
fn deployment_labels() {
    let labels = parse(&[
        ("HAPROXY_DEPLOYMENT_GROUP", "web"),
        ("HAPROXY_DEPLOYMENT_STARTED_AT", "2021-02-03T10:00:00.000Z"),
        ("HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "4"),
        ("HAPROXY_DEPLOYMENT_NEW_INSTANCES", "0"),
        ("HAPROXY_DEPLOYMENT_ALT_PORT", "10101"),
        ("HAPROXY_DEPLOYMENT_COLOUR", "blue"),
    ]);
    assert!(labels.issues.is_empty(), "{:?}", labels.issues);
    let d = labels.deployment.unwrap();
    assert_eq!(d.group, "/web");
    assert!(matches!(d.started_at, StartedAt::At(_)));
    assert_eq!(d.target_instances, Some(4));
    assert!(d.has_new_instances);
    assert_eq!(d.new_instances, Some(0));
    assert_eq!(d.alt_port, Some(10101));
    assert_eq!(d.colour.as_deref(), Some("blue"));
}

#[test]
fn deployment_start_times_as_zdd_py_and_rfc_3339_write_them() {
    let at = |v: &str| StartedAt::parse(v).map(|t| t.to_string());
    let naive = Some("2016-02-01 14:13:42.499089".to_owned());
    assert_eq!(
        at("2016-02-01T14:13:42.499089"),
        naive,
        "Python's isoformat()"
    );
    assert_eq!(at("2016-02-01 14:13:42.499089"), naive);
    assert_eq!(
        at("2016-02-01T14:13:42"),
        Some("2016-02-01 14:13:42".to_owned())
    );
    assert_eq!(at("2016-02-01T16:13:42.499089+02:00"), naive, "to UTC");
    assert_eq!(at("2016-02-01T14:13:42.499089Z"), naive);
    assert_eq!(at("2016-02-01T14:13:42.499089+0000"), naive);
    assert_eq!(at("2016-02-01"), Some("2016-02-01 00:00:00".to_owned()));
    assert_eq!(at("yesterday"), None);
    assert!(StartedAt::Missing < StartedAt::At(StartedAt::parse("1970-01-01").unwrap()));
}

#[test]
fn zdd_py_s_app_id_label_is_known() {
    let labels = parse(&[("HAPROXY_APP_ID", "/web")]);
    assert!(labels.issues.is_empty(), "{:?}", labels.issues);
}

#[test]
fn bad_deployment_labels_are_reported_and_read_as_unset() {
    let labels = parse(&[
        ("HAPROXY_DEPLOYMENT_GROUP", "/web"),
        ("HAPROXY_DEPLOYMENT_STARTED_AT", "yesterday"),
        ("HAPROXY_DEPLOYMENT_TARGET_INSTANCES", "-1"),
        ("HAPROXY_DEPLOYMENT_ALT_PORT", "99999"),
    ]);
    let d = labels.deployment.as_ref().unwrap();
    assert_eq!(d.group, "/web");
    assert_eq!(
        (d.started_at, d.target_instances, d.alt_port),
        (StartedAt::Unreadable, None, None)
    );
    let named: Vec<_> = labels.issues.iter().map(|i| i.label.as_str()).collect();
    assert_eq!(
        named,
        [
            "HAPROXY_DEPLOYMENT_STARTED_AT",
            "HAPROXY_DEPLOYMENT_TARGET_INSTANCES",
            "HAPROXY_DEPLOYMENT_ALT_PORT"
        ]
    );
    let empty = parse(&[("HAPROXY_DEPLOYMENT_GROUP", " ")]);
    assert!(empty.deployment.is_none());
    assert_eq!(empty.issues[0].kind, LabelIssueKind::Invalid);
}
