use serde_json::json;

use super::*;
use crate::zdd::balancers::EndpointView;

/// An app of group `/web` with `tasks` running (healthy when `healthy`).
fn app(id: &str, instances: u32, tasks: &[&str], healthy: bool, target: u32) -> Deployed {
    let tasks: Vec<_> = tasks
        .iter()
        .map(|t| json!({"id": t, "state": "TASK_RUNNING", "healthCheckResults": [{"alive": healthy}]}))
        .collect();
    Deployed::from_json(json!({
        "id": id, "instances": instances, "tasks": tasks,
        "healthChecks": [{"protocol": "HTTP"}],
        "labels": {"HAPROXY_DEPLOYMENT_GROUP": "web",
                   "HAPROXY_DEPLOYMENT_TARGET_INSTANCES": target.to_string()},
    }))
    .unwrap()
}

fn view(entries: &[(&str, bool, usize)]) -> Result<View, String> {
    Ok(entries
        .iter()
        .map(|(id, draining, in_flight)| {
            let e = EndpointView {
                draining: *draining,
                down: false,
                in_flight: *in_flight,
            };
            (id.to_string(), e)
        })
        .collect())
}

#[test]
fn nothing_is_killed_until_every_balancer_routes_the_new_tasks() {
    let old = app("/web-blue", 3, &["b1", "b2", "b3"], true, 3);
    let new = app("/web-green", 1, &["g1"], true, 3);
    let fast = view(&[
        ("b1", true, 0),
        ("b2", false, 0),
        ("b3", false, 0),
        ("g1", false, 0),
    ]);
    let slow = view(&[("b1", false, 0), ("b2", false, 0), ("b3", false, 0)]);
    let (status, next) = decide(Some(&old), &new, &[fast.clone(), slow], Mode::Whole, 0);
    assert_eq!(next, Next::Wait(Why::NotRouted));
    assert_eq!((status.routed_on, status.balancers), (1, 2));
    let (_, next) = decide(Some(&old), &new, &[fast.clone(), fast], Mode::Whole, 0);
    assert_eq!(next, Next::Kill(vec!["b1".into()]));
}

#[test]
fn requests_in_flight_hold_a_kill_and_an_unhealthy_app_waits() {
    let old = app("/web-blue", 3, &["b1", "b2", "b3"], true, 3);
    let new = app("/web-green", 1, &["g1"], true, 3);
    let busy = view(&[
        ("b1", true, 2),
        ("b2", false, 0),
        ("b3", false, 0),
        ("g1", false, 0),
    ]);
    let (status, next) = decide(Some(&old), &new, &[busy], Mode::Whole, 0);
    // Scaling up goes on meanwhile.
    assert_eq!(next, Next::Scale(2));
    assert_eq!(status.old_in_flight, 2);
    let sick = app("/web-green", 1, &["g1"], false, 3);
    let (_, next) = decide(Some(&old), &sick, &[view(&[])], Mode::Whole, 0);
    assert!(
        matches!(next, Next::Wait(Why::NotReady { ready: 0, .. })),
        "{next:?}"
    );
    let down: Result<View, String> = Err("b: does not answer".into());
    let (_, next) = decide(Some(&old), &new, &[down], Mode::Whole, 0);
    assert!(matches!(next, Next::Wait(Why::Unanswered(_))), "{next:?}");
}

#[test]
fn a_whole_deployment_deletes_the_old_app_once_all_is_drained() {
    let old = app("/web-blue", 2, &["b1", "b2"], true, 3);
    let new = app("/web-green", 3, &["g1", "g2", "g3"], true, 3);
    let all = view(&[
        ("b1", true, 0),
        ("b2", true, 0),
        ("g1", false, 0),
        ("g2", false, 0),
        ("g3", false, 0),
    ]);
    assert_eq!(
        decide(Some(&old), &new, &[all], Mode::Whole, 0).1,
        Next::DeleteOld
    );
}

#[test]
fn a_split_stops_at_its_share() {
    let old = app(
        "/web-blue",
        9,
        &["b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"],
        true,
        10,
    );
    let new = app("/web-green", 2, &["g1", "g2"], true, 10);
    let mut entries: Vec<(&str, bool, usize)> = vec![("b1", true, 0), ("b2", true, 0)];
    entries.extend(["b3", "b4", "b5", "b6", "b7", "b8", "b9", "g1", "g2"].map(|t| (t, false, 0)));
    let mode = Mode::Split { new_instances: 2 };
    // Two drained, but only one may go: 8 old instances stay.
    let (_, next) = decide(Some(&old), &new, &[view(&entries)], mode, 0);
    assert_eq!(next, Next::Kill(vec!["b1".into()]));
    let old = app(
        "/web-blue",
        8,
        &["b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9"],
        true,
        10,
    );
    let (_, next) = decide(Some(&old), &new, &[view(&entries[1..])], mode, 0);
    assert_eq!(next, Next::Done);
}

#[test]
fn steps_grow_by_half_or_linearly() {
    assert_eq!(next_instances(1, 9, 10, Mode::Whole, 0), 2);
    assert_eq!(next_instances(2, 8, 10, Mode::Whole, 0), 3);
    assert_eq!(
        next_instances(5, 5, 10, Mode::Whole, 0),
        10,
        "would outnumber: the goal"
    );
    assert_eq!(
        next_instances(1, 9, 2, Mode::Split { new_instances: 2 }, 0),
        2
    );
    assert_eq!(next_instances(1, 3, 4, Mode::Whole, 1), 2);
    assert_eq!(next_instances(3, 1, 4, Mode::Whole, 5), 4);
    assert_eq!(
        next_instances(0, 3, 4, Mode::Whole, 0),
        1,
        "never stuck at 0"
    );
}
