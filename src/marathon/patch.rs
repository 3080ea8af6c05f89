//! What an event carries, applied to the last snapshot at once ("events patch, reads confirm"):
//! a task's new state, host, ports and addresses (`status_update_event`), a health verdict
//! (`health_status_changed_event`), an app's removal (`app_terminated_event`). A read of the
//! app follows every patch and wins where it disagrees. An event a patch cannot express
//! (a new app definition, instance events, deployments, one without the fields a patch needs)
//! patches nothing and is left to the read.

use std::sync::Arc;

use serde::Deserialize;

use super::wire::{AppsSnapshot, HealthCheckResult, Task, TaskIpAddress, TaskStatus};

/// One event's change to the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum EventPatch {
    /// A task of `app_id` as the event reports it: added, replaced, or (in a terminal state)
    /// removed.
    Task { app_id: String, task: TaskUpdate },
    /// A task's health check verdict.
    Health {
        app_id: String,
        task_id: String,
        alive: bool,
    },
    /// The app is gone.
    AppGone { app_id: String },
}

/// The fields of `status_update_event` a task needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskUpdate {
    pub id: Arc<str>,
    pub state: TaskStatus,
    pub host: Option<String>,
    pub ports: Vec<u32>,
    pub ip_addresses: Vec<TaskIpAddress>,
    pub version: Option<String>,
}

/// The patch an event carries, if it carries one.
pub fn patch_of(kind: &str, data: &str) -> Option<EventPatch> {
    match kind {
        "status_update_event" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Status {
                app_id: String,
                task_id: String,
                task_status: TaskStatus,
                #[serde(default)]
                host: Option<String>,
                #[serde(default)]
                ports: Option<Vec<u32>>,
                #[serde(default)]
                ip_addresses: Option<Vec<TaskIpAddress>>,
                #[serde(default)]
                version: Option<String>,
            }
            let s: Status = serde_json::from_str(data).ok()?;
            // Without ports a running task cannot be routed from the event alone.
            let ports = match (s.ports, s.task_status) {
                (Some(ports), _) => ports,
                (None, TaskStatus::Running) => return None,
                (None, _) => Vec::new(),
            };
            absolute(&s.app_id)?;
            Some(EventPatch::Task {
                app_id: s.app_id,
                task: TaskUpdate {
                    id: s.task_id.into(),
                    state: s.task_status,
                    host: s.host,
                    ports,
                    ip_addresses: s.ip_addresses.unwrap_or_default(),
                    version: s.version,
                },
            })
        }
        "health_status_changed_event" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Health {
                app_id: String,
                task_id: Option<String>,
                instance_id: Option<String>,
                alive: bool,
            }
            let h: Health = serde_json::from_str(data).ok()?;
            absolute(&h.app_id)?;
            // Marathon 1.4+ names the instance; its task ids differ: left to the read.
            Some(EventPatch::Health {
                app_id: h.app_id,
                task_id: h.task_id.filter(|_| h.instance_id.is_none())?,
                alive: h.alive,
            })
        }
        "app_terminated_event" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Gone {
                app_id: String,
            }
            let g: Gone = serde_json::from_str(data).ok()?;
            absolute(&g.app_id)?;
            Some(EventPatch::AppGone { app_id: g.app_id })
        }
        _ => None,
    }
}

fn absolute(id: &str) -> Option<()> {
    id.starts_with('/').then_some(())
}

impl EventPatch {
    pub fn app_id(&self) -> &str {
        match self {
            EventPatch::Task { app_id, .. }
            | EventPatch::Health { app_id, .. }
            | EventPatch::AppGone { app_id } => app_id,
        }
    }
}

impl AppsSnapshot {
    /// Applies an event's patch; whether the snapshot changed. An app the snapshot does not
    /// hold is left to its read (the event says too little to make one up).
    pub fn apply(&mut self, patch: &EventPatch) -> bool {
        match patch {
            EventPatch::AppGone { app_id } => self.patch(app_id, None),
            EventPatch::Task { app_id, task } => {
                let Some(app) = self.app_mut(app_id) else {
                    return false;
                };
                let at = app.tasks.iter().position(|t| t.id == task.id);
                if is_terminal(task.state) {
                    return match at {
                        Some(at) => {
                            app.tasks.remove(at);
                            true
                        }
                        None => false,
                    };
                }
                let health = at.and_then(|at| app.tasks[at].health_check_results.clone());
                let updated = Task {
                    id: task.id.clone(),
                    host: task.host.clone(),
                    state: Some(task.state),
                    ports: task.ports.clone(),
                    ip_addresses: task.ip_addresses.clone(),
                    // A task keeps the verdicts it had; a new one has none until its check runs.
                    health_check_results: health,
                    version: task.version.clone(),
                };
                match at {
                    Some(at) => app.tasks[at] = updated,
                    None => app.tasks.push(updated),
                }
                true
            }
            EventPatch::Health {
                app_id,
                task_id,
                alive,
            } => {
                let Some(app) = self.app_mut(app_id) else {
                    return false;
                };
                let Some(task) = app.tasks.iter_mut().find(|t| &*t.id == task_id) else {
                    return false;
                };
                task.health_check_results = Some(vec![HealthCheckResult { alive: *alive }]);
                true
            }
        }
    }

    fn app_mut(&mut self, id: &str) -> Option<&mut super::wire::App> {
        let at = self.position(id)?;
        Some(&mut self.apps[at])
    }
}

/// States after which a task never runs again: it leaves the app's task list.
fn is_terminal(state: TaskStatus) -> bool {
    !matches!(
        state,
        TaskStatus::Staging
            | TaskStatus::Starting
            | TaskStatus::Running
            | TaskStatus::Killing
            | TaskStatus::Lost
            | TaskStatus::Unreachable
            | TaskStatus::Unknown
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snapshot() -> AppsSnapshot {
        crate::marathon::parse_apps(
            br#"{"apps":[{"id":"/web","tasks":[{"id":"web.1","host":"10.0.0.1","state":"TASK_RUNNING","ports":[31000],
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
        let other = r#"{"appId":"/other","taskId":"o.1","taskStatus":"TASK_RUNNING","host":"h","ports":[1]}"#;
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
            // 1.4+ health events name instances, not tasks.
            (
                "health_status_changed_event",
                r#"{"appId":"/web","instanceId":"web.i1","alive":true}"#,
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
}
