//! Zero-downtime deployments (`HAPROXY_DEPLOYMENT_*`): apps sharing a deployment group merge
//! into one, and some of the old app's tasks are drained, as Marathon-LB's `get_apps` does.
//!
//! The merged app takes the group name as its id and the older app's definition (labels and
//! ports); its tasks are the old app's, then the new app's. Older means an earlier
//! `HAPROXY_DEPLOYMENT_STARTED_AT` (an app without one counts as oldest). When either app's
//! value is unreadable, the earlier `versionInfo.lastConfigChangeAt` is older (scaling, which
//! `zdd.py` does to the old app, leaves it alone); when that does not tell them apart either,
//! nothing is drained, so that a guess can never drain the new app. The number drained is
//! `min(#old tasks, healthy new, max(0, healthy new + old instances − target))`, lowest task id
//! first, where the target is `HAPROXY_DEPLOYMENT_TARGET_INSTANCES` when
//! `HAPROXY_DEPLOYMENT_NEW_INSTANCES` is set, else 1.

use std::borrow::Cow;
use std::cmp::Ordering;

use chrono::DateTime;
use smallvec::SmallVec;

use super::labels::{AppLabels, StartedAt};
use crate::marathon::wire;

/// An app as the rest of the model sees it: a plain app, or the merge of a deployment group.
#[derive(Debug, Clone)]
pub struct MergedApp<'a> {
    pub id: Cow<'a, str>,
    /// Whose labels, ports and health checks apply.
    pub definition: &'a wire::App,
    pub labels: AppLabels,
    /// Inline up to four: most apps run that many tasks or fewer.
    pub tasks: SmallVec<[MergedTask<'a>; 4]>,
    /// The ids of the apps merged into this one (empty for an app in no deployment group).
    pub members: Vec<&'a str>,
}

#[derive(Debug, Clone, Copy)]
pub struct MergedTask<'a> {
    pub task: &'a wire::Task,
    pub draining: bool,
}

impl<'a> MergedApp<'a> {
    /// An app in no deployment group: itself, with none of its tasks draining.
    pub fn plain(app: &'a wire::App, labels: AppLabels) -> MergedApp<'a> {
        MergedApp {
            id: Cow::Borrowed(&app.id),
            definition: app,
            labels,
            tasks: undrained(app),
            members: Vec::new(),
        }
    }
}

fn undrained(app: &wire::App) -> SmallVec<[MergedTask<'_>; 4]> {
    app.tasks
        .iter()
        .map(|task| MergedTask {
            task,
            draining: false,
        })
        .collect()
}

/// Merges deployment groups. `apps` must be sorted by id: the merge order, and so the result,
/// then does not depend on the order Marathon listed the apps in. Each app comes with its
/// place in that order, and each result with the place of its first app (a group takes the
/// place of its first member).
pub fn merge_at<'a>(
    apps: impl IntoIterator<Item = (usize, &'a wire::App, AppLabels)>,
) -> Vec<(usize, MergedApp<'a>)> {
    let apps = apps.into_iter();
    let mut out: Vec<(usize, MergedApp<'a>)> = Vec::with_capacity(apps.size_hint().0);
    let mut group_slot: std::collections::HashMap<String, usize> = Default::default();
    for (at, app, labels) in apps {
        let Some(group) = labels.deployment.as_ref().map(|d| d.group.clone()) else {
            out.push((at, MergedApp::plain(app, labels)));
            continue;
        };
        let current = MergedApp {
            id: Cow::Owned(group.clone()),
            definition: app,
            labels,
            tasks: undrained(app),
            members: vec![&app.id],
        };
        match group_slot.get(&group) {
            Some(&slot) => {
                let previous = out[slot].1.clone();
                out[slot].1 = merge_two(previous, current);
            }
            None => {
                group_slot.insert(group, out.len());
                out.push((at, current));
            }
        }
    }
    out
}

fn merge_two<'a>(previous: MergedApp<'a>, current: MergedApp<'a>) -> MergedApp<'a> {
    let age = age_order(&previous, &current);
    // Equal ages keep Marathon-LB's choice: the earlier app (by id) is the new one.
    let (mut old, mut new) = if age == Some(Ordering::Less) {
        (previous, current)
    } else {
        (current, previous)
    };
    let new_deployment = new.labels.deployment.clone();
    let target = match &new_deployment {
        // Old and new cannot be told apart: drain nothing rather than guess.
        _ if age.is_none() => None,
        Some(d) if d.has_new_instances => {
            let scaled = |m: &MergedApp<'_>| {
                m.definition
                    .version_info
                    .as_ref()
                    .and_then(|v| v.last_scaling_at.as_deref())
                    .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            };
            if scaled(&old) > scaled(&new) {
                std::mem::swap(&mut old, &mut new);
            }
            // An unreadable target drains nothing: every old task keeps serving.
            d.target_instances
        }
        _ => Some(1),
    };

    let healthy_new = if new.definition.health_checks.is_empty() {
        new.definition.instances as usize
    } else {
        new.tasks
            .iter()
            .filter(|t| {
                t.task
                    .health_check_results
                    .as_ref()
                    .is_some_and(|r| r.iter().any(|r| r.alive))
            })
            .count()
    };
    old.tasks.sort_by(|a, b| a.task.id.cmp(&b.task.id));
    let drain = match target {
        Some(target) => {
            let drainable =
                (healthy_new + old.definition.instances as usize).saturating_sub(target as usize);
            old.tasks.len().min(healthy_new).min(drainable)
        }
        None => 0,
    };
    for task in old.tasks.iter_mut().take(drain) {
        task.draining = true;
    }
    old.tasks.extend(new.tasks);
    old.members.extend(new.members);
    old.members.sort_unstable();
    old
}

/// How `a`'s deployment start compares with `b`'s; `None` when neither the labels nor the
/// apps' last configuration changes tell.
fn age_order(a: &MergedApp<'_>, b: &MergedApp<'_>) -> Option<Ordering> {
    let started = |m: &MergedApp<'_>| {
        m.labels
            .deployment
            .as_ref()
            .map_or(StartedAt::Missing, |d| d.started_at)
    };
    let (sa, sb) = (started(a), started(b));
    if sa != StartedAt::Unreadable && sb != StartedAt::Unreadable {
        return Some(sa.cmp(&sb));
    }
    let configured = |m: &MergedApp<'_>| {
        m.definition
            .version_info
            .as_ref()
            .and_then(|v| v.last_config_change_at.as_deref())
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    };
    match (configured(a), configured(b)) {
        (Some(ca), Some(cb)) if ca != cb => Some(ca.cmp(&cb)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(json: &str) -> wire::App {
        serde_json::from_str(json).unwrap()
    }

    fn merged(apps: &[wire::App]) -> Vec<MergedApp<'_>> {
        let labelled = apps
            .iter()
            .enumerate()
            .map(|(at, a)| (at, a, AppLabels::parse(&a.labels)));
        merge_at(labelled).into_iter().map(|(_, m)| m).collect()
    }

    fn drained<'a>(m: &MergedApp<'a>) -> Vec<&'a str> {
        m.tasks
            .iter()
            .filter(|t| t.draining)
            .map(|t| &*t.task.id)
            .collect()
    }

    const BLUE: &str = r#"{"id":"/web-blue","instances":3,
        "labels":{"HAPROXY_DEPLOYMENT_GROUP":"web","HAPROXY_DEPLOYMENT_STARTED_AT":"2021-01-01T00:00:00Z","HAPROXY_0_VHOST":"old.example"},
        "tasks":[{"id":"b3"},{"id":"b1"},{"id":"b2"}]}"#;

    #[test]
    fn merges_into_the_older_definition_and_drains_by_task_id() {
        let green = r#"{"id":"/web-green","instances":2,
            "labels":{"HAPROXY_DEPLOYMENT_GROUP":"web","HAPROXY_DEPLOYMENT_STARTED_AT":"2021-01-02T00:00:00Z",
                      "HAPROXY_DEPLOYMENT_TARGET_INSTANCES":"3","HAPROXY_DEPLOYMENT_NEW_INSTANCES":"2",
                      "HAPROXY_0_VHOST":"new.example"},
            "tasks":[{"id":"g1"},{"id":"g2"}]}"#;
        let apps = [app(BLUE), app(green)];
        let out = merged(&apps);
        assert_eq!(out.len(), 1);
        let m = &out[0];
        assert_eq!(m.id, "/web");
        assert_eq!(m.definition.id, "/web-blue", "older app's labels and ports");
        assert_eq!(m.members, ["/web-blue", "/web-green"]);
        // healthy new = 2 (no health checks: instances), drainable = 2 + 3 - 3 = 2.
        assert_eq!(drained(m), ["b1", "b2"]);
        assert_eq!(m.tasks.len(), 5);
    }

    #[test]
    fn without_new_instances_the_target_is_one() {
        let green = r#"{"id":"/web-green","instances":1,
            "labels":{"HAPROXY_DEPLOYMENT_GROUP":"/web","HAPROXY_DEPLOYMENT_STARTED_AT":"2021-01-02T00:00:00Z"},
            "tasks":[{"id":"g1"}]}"#;
        let apps = [app(green), app(BLUE)];
        let out = merged(&apps);
        // healthy new = 1, drainable = 1 + 3 - 1 = 3 → min(3, 1, 3) = 1.
        assert_eq!(drained(&out[0]), ["b1"]);
    }

    #[test]
    fn only_healthy_new_tasks_count_when_checked() {
        let green = r#"{"id":"/web-green","instances":2,"healthChecks":[{"protocol":"HTTP"}],
            "labels":{"HAPROXY_DEPLOYMENT_GROUP":"web","HAPROXY_DEPLOYMENT_STARTED_AT":"2021-01-02T00:00:00Z",
                      "HAPROXY_DEPLOYMENT_TARGET_INSTANCES":"3","HAPROXY_DEPLOYMENT_NEW_INSTANCES":"2"},
            "tasks":[{"id":"g1","healthCheckResults":[{"alive":true}]},{"id":"g2"}]}"#;
        let apps = [app(BLUE), app(green)];
        assert_eq!(drained(&merged(&apps)[0]), ["b1"]);
    }

    #[test]
    fn unreadable_target_drains_nothing() {
        let green = r#"{"id":"/web-green","instances":2,
            "labels":{"HAPROXY_DEPLOYMENT_GROUP":"web","HAPROXY_DEPLOYMENT_STARTED_AT":"2021-01-02T00:00:00Z",
                      "HAPROXY_DEPLOYMENT_TARGET_INSTANCES":"many","HAPROXY_DEPLOYMENT_NEW_INSTANCES":"2"},
            "tasks":[{"id":"g1"}]}"#;
        let apps = [app(BLUE), app(green)];
        let out = merged(&apps);
        assert!(drained(&out[0]).is_empty());
        assert!(
            out[0].labels.issues.is_empty(),
            "the issue is on the new app's labels"
        );
    }

    /// `zdd.py`'s labels, with `datetime.now().isoformat()` times.
    fn zdd_app(colour: &str, started_at: &str, config_changed: &str, tasks: &[&str]) -> String {
        let tasks: Vec<String> = tasks.iter().map(|t| format!(r#"{{"id":"{t}"}}"#)).collect();
        format!(
            r#"{{"id":"/web-{colour}","instances":{instances},
            "versionInfo":{{"lastConfigChangeAt":"{config_changed}","lastScalingAt":"2016-02-01T15:00:00.000Z"}},
            "labels":{{"HAPROXY_DEPLOYMENT_GROUP":"web","HAPROXY_DEPLOYMENT_STARTED_AT":"{started_at}",
                      "HAPROXY_DEPLOYMENT_TARGET_INSTANCES":"3","HAPROXY_APP_ID":"/web"}},
            "tasks":[{tasks}]}}"#,
            instances = tasks.len(),
            tasks = tasks.join(",")
        )
    }

    /// Whatever the colours' id order, the old app's tasks drain and its definition applies.
    fn assert_old_drains(old: &str, new: &str, old_id: &str) {
        let mut apps = [app(old), app(new)];
        apps.sort_by(|a, b| a.id.cmp(&b.id));
        let out = merged(&apps);
        assert_eq!(out[0].definition.id, old_id, "the old app's definition");
        assert_eq!(
            drained(&out[0]),
            ["o1"],
            "an old task drains, never a new one"
        );
    }

    #[test]
    fn zdd_py_s_naive_times_tell_old_from_new() {
        for (old, new) in [("blue", "green"), ("green", "blue")] {
            let o = zdd_app(
                old,
                "2016-02-01T14:13:42.499089",
                "2016-02-01T14:13:42Z",
                &["o1", "o2", "o3"],
            );
            let n = zdd_app(
                new,
                "2016-02-01T14:20:00.000001",
                "2016-02-01T14:20:00Z",
                &["n1"],
            );
            assert_old_drains(&o, &n, &format!("/web-{old}"));
        }
    }

    #[test]
    fn an_unreadable_start_falls_back_to_the_config_change_time() {
        // Both apps were scaled at the same time since (zdd.py scales both); only the config
        // change times tell them apart.
        for (old, new) in [("blue", "green"), ("green", "blue")] {
            let o = zdd_app(
                old,
                "2016-02-01T14:13:42.499089",
                "2016-02-01T14:13:42Z",
                &["o1", "o2", "o3"],
            );
            let n = zdd_app(new, "the day after", "2016-02-01T14:20:00Z", &["n1"]);
            assert_old_drains(&o, &n, &format!("/web-{old}"));
        }
        // Nothing tells them apart: nothing drains.
        let o = zdd_app(
            "blue",
            "2016-02-01T14:13:42.499089",
            "2016-02-01T14:13:42Z",
            &["o1", "o2"],
        );
        let n = zdd_app("green", "the day after", "2016-02-01T14:13:42Z", &["n1"]);
        let apps = [app(&o), app(&n)];
        assert!(drained(&merged(&apps)[0]).is_empty());
    }

    #[test]
    fn plain_apps_pass_through() {
        let apps = [app(r#"{"id":"/a","tasks":[{"id":"t"}]}"#)];
        let out = merged(&apps);
        assert_eq!(out[0].id, "/a");
        assert!(drained(&out[0]).is_empty());
    }
}
