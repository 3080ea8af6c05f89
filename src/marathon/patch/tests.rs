use super::*;

fn snapshot() -> AppsSnapshot {
    crate::marathon::parse_apps(
        br#"{"apps":[{"id":"/web","healthChecks":[{"protocol":"HTTP"}],"tasks":[{"id":"web.1","host":"10.0.0.1","state":"TASK_RUNNING","ports":[31000],
            "healthCheckResults":[{"alive":true}]}]}]}"#,
    )
    .unwrap()
}

fn tasks(s: &AppsSnapshot) -> Vec<(String, Option<TaskStatus>, Vec<u32>)> {
    s.apps[0]
        .tasks
        .iter()
        .map(|t| (t.id.to_string(), t.state, t.ports.clone()))
        .collect()
}

#[test]
fn a_status_update_adds_replaces_and_removes_a_task() {
    let mut s = snapshot();
    let start = r#"{"appId":"/web","taskId":"web.2","taskStatus":"TASK_RUNNING","host":"10.0.0.2",
        "ports":[31001],"ipAddresses":[{"ipAddress":"10.0.0.2","protocol":"IPv4"}],"version":"2026-01-01T00:00:00.000Z"}"#;
    let patch = patch_of("status_update_event", start).unwrap();
    assert!(s.apply(&patch));
    assert_eq!(
        tasks(&s)[1],
        ("web.2".into(), Some(TaskStatus::Running), vec![31001])
    );
    assert!(
        s.apps[0].tasks[1].health_check_results.is_none(),
        "no verdict yet"
    );

    let killing = r#"{"appId":"/web","taskId":"web.1","taskStatus":"TASK_KILLING","host":"10.0.0.1","ports":[31000]}"#;
    assert!(s.apply(&patch_of("status_update_event", killing).unwrap()));
    assert_eq!(tasks(&s)[0].1, Some(TaskStatus::Killing));
    assert!(s.apps[0].tasks[0].health_check_results.is_some(), "kept");

    let killed =
        r#"{"appId":"/web","taskId":"web.1","taskStatus":"TASK_KILLED","host":"10.0.0.1"}"#;
    assert!(s.apply(&patch_of("status_update_event", killed).unwrap()));
    assert_eq!(
        tasks(&s),
        [("web.2".into(), Some(TaskStatus::Running), vec![31001])]
    );
    assert!(
        !s.apply(&patch_of("status_update_event", killed).unwrap()),
        "already gone"
    );
}

#[test]
fn health_and_removal_patch_and_unknown_apps_are_left_to_the_read() {
    let mut s = snapshot();
    let sick = r#"{"appId":"/web","taskId":"web.1","alive":false}"#;
    assert!(s.apply(&patch_of("health_status_changed_event", sick).unwrap()));
    assert_eq!(
        s.apps[0].tasks[0].health_check_results,
        Some(vec![HealthCheckResult { alive: false }])
    );
    let other =
        r#"{"appId":"/other","taskId":"o.1","taskStatus":"TASK_RUNNING","host":"h","ports":[1]}"#;
    assert!(!s.apply(&patch_of("status_update_event", other).unwrap()));
    assert!(s.apply(&patch_of("app_terminated_event", r#"{"appId":"/web"}"#).unwrap()));
    assert!(s.apps.is_empty());
}

#[test]
fn events_without_what_a_patch_needs_patch_nothing() {
    for (kind, data) in [
        // A running task without ports cannot be routed from the event.
        (
            "status_update_event",
            r#"{"appId":"/web","taskId":"web.2","taskStatus":"TASK_RUNNING"}"#,
        ),
        ("status_update_event", r#"{"appId":"/web"}"#),
        (
            "status_update_event",
            r#"{"appId":"web","taskId":"t","taskStatus":"TASK_KILLED"}"#,
        ),
        // Not yet known, or naming nothing.
        (
            "instance_health_changed_event",
            r#"{"runSpecId":"/web","instanceId":"web.instance-1","healthy":null}"#,
        ),
        (
            "health_status_changed_event",
            r#"{"appId":"/web","alive":true}"#,
        ),
        // A running instance without ports.
        (
            "instance_changed_event",
            r#"{"runSpecId":"/web","instanceId":"web.instance-1","condition":"Running"}"#,
        ),
        ("api_post_event", r#"{"appDefinition":{"id":"/web"}}"#),
        (
            "instance_changed_event",
            r#"{"runSpecId":"/web","instanceId":"i"}"#,
        ),
        ("status_update_event", "not json"),
    ] {
        assert_eq!(patch_of(kind, data), None, "{kind} {data}");
    }
}

fn instances() -> AppsSnapshot {
    crate::marathon::parse_apps(
        br#"{"apps":[{"id":"/web","healthChecks":[{"protocol":"COMMAND"}],"tasks":[
            {"id":"web.instance-1._app.1","host":"h","state":"TASK_RUNNING","ports":[1]},
            {"id":"web.instance-10._app","host":"h","state":"TASK_RUNNING","ports":[2]},
            {"id":"web.5b3c","host":"h","state":"TASK_RUNNING","ports":[3]}]}]}"#,
    )
    .unwrap()
}

fn alive(s: &AppsSnapshot) -> Vec<Option<bool>> {
    s.apps[0]
        .tasks
        .iter()
        .map(|t| t.health_check_results.as_ref().map(|r| r[0].alive))
        .collect()
}

#[test]
fn health_events_naming_instances_patch_their_tasks_only() {
    let mut s = instances();
    let event = r#"{"appId":"/web","instanceId":"web.instance-1","version":"v","alive":true}"#;
    assert!(s.apply(&patch_of("health_status_changed_event", event).unwrap()));
    assert_eq!(alive(&s), [Some(true), None, None], "not instance-10");
    // Marathon sends both health events for one verdict: the second changes nothing.
    let twin = r#"{"instanceId":"web.instance-1","runSpecId":"/web","healthy":true}"#;
    assert!(!s.apply(&patch_of("instance_health_changed_event", twin).unwrap()));
    let sick = r#"{"instanceId":"web.instance-10","runSpecId":"/web","healthy":false}"#;
    assert!(s.apply(&patch_of("instance_health_changed_event", sick).unwrap()));
    assert_eq!(alive(&s), [Some(true), Some(false), None]);
    // A legacy task id belongs to its `marathon-` instance.
    let legacy = r#"{"appId":"/web","instanceId":"web.marathon-5b3c","alive":false}"#;
    assert!(s.apply(&patch_of("health_status_changed_event", legacy).unwrap()));
    assert_eq!(alive(&s), [Some(true), Some(false), Some(false)]);
}

#[test]
fn an_instance_that_ended_leaves_with_its_tasks() {
    let mut s = instances();
    let killed = r#"{"instanceId":"web.instance-1","condition":"Killed","runSpecId":"/web","agentId":"a","host":"h","runSpecVersion":"v"}"#;
    assert!(s.apply(&patch_of("instance_changed_event", killed).unwrap()));
    let ids: Vec<_> = s.apps[0].tasks.iter().map(|t| t.id.to_string()).collect();
    assert_eq!(ids, ["web.instance-10._app", "web.5b3c"]);
    assert!(!s.apply(&patch_of("instance_changed_event", killed).unwrap()));
}

#[test]
fn the_same_status_report_twice_changes_nothing() {
    let mut s = snapshot();
    let running = r#"{"appId":"/web","taskId":"web.1","taskStatus":"TASK_RUNNING","host":"10.0.0.1","ports":[31000]}"#;
    let patch = patch_of("status_update_event", running).unwrap();
    s.apply(&patch);
    assert!(!s.apply(&patch));
}

#[test]
fn health_events_for_an_app_without_health_checks_change_nothing() {
    let mut s = crate::marathon::parse_apps(
        br#"{"apps":[{"id":"/web","tasks":[{"id":"web.1","host":"h","state":"TASK_RUNNING","ports":[1]}]}]}"#,
    )
    .unwrap();
    let event = r#"{"appId":"/web","taskId":"web.1","alive":false}"#;
    assert!(!s.apply(&patch_of("health_status_changed_event", event).unwrap()));
    assert!(s.apps[0].tasks[0].health_check_results.is_none());
}
